//! TLV fields (spec §3.4.3, CATALOG §D.7): `extension_type U16 | field_type U8 | length U16 | value`,
//! all little-endian (CATALOG errata H.3: the spec's examples print big-endian).
//!
//! Any message may end in TLVs. Well-formed TLVs of unknown extensions are kept and reported; known ones
//! are checked against their extension's maximum length.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, ErrorKind};
use crate::types::{Bytes, Codec, IntoStatic, Reader, WarningKind};

/// Extension 0x0002, Worker-Specific Hashrate Tracking.
pub const EXT_WORKER_HASHRATE_TRACKING: u16 = 0x0002;
/// Its only field: `user_identity` on SubmitSharesExtended, UTF-8, at most 32 bytes.
pub const FIELD_USER_IDENTITY: u8 = 0x01;
pub const USER_IDENTITY_MAX: usize = 32;

const TLV_HEADER_LEN: usize = 5;

/// One TLV field.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tlv<'a> {
    pub extension_type: u16,
    pub field_type: u8,
    /// The value; JSON: hex.
    pub value: Bytes<'a, 2, 65535>,
}

impl fmt::Debug for Tlv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tlv({:#06x}/{:#04x}, {})",
            self.extension_type,
            self.field_type,
            hex::encode(self.value.as_bytes())
        )
    }
}

/// A TLV this codec knows how to interpret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownTlv<'a> {
    /// Extension 0x0002 field 0x01 on SubmitSharesExtended.
    UserIdentity(&'a [u8]),
}

impl<'a> Tlv<'a> {
    /// The ext 0x0002 `user_identity` TLV. Fails beyond 32 bytes.
    pub fn user_identity(identity: &'a str) -> Result<Self, crate::error::BoundsError> {
        if identity.len() > USER_IDENTITY_MAX {
            return Err(crate::error::BoundsError {
                type_name: "user_identity TLV",
                unit: "bytes",
                length: identity.len(),
                max: USER_IDENTITY_MAX,
            });
        }
        Ok(Tlv {
            extension_type: EXT_WORKER_HASHRATE_TRACKING,
            field_type: FIELD_USER_IDENTITY,
            value: Bytes::new(Cow::Borrowed(identity.as_bytes()))?,
        })
    }

    /// Its meaning, when the TLV is one this codec knows on the message `(extension_type, msg_type)`.
    pub fn known(&self, message: (u16, u8)) -> Option<KnownTlv<'_>> {
        match (message, self.extension_type, self.field_type) {
            ((0, 0x1b), EXT_WORKER_HASHRATE_TRACKING, FIELD_USER_IDENTITY) => {
                Some(KnownTlv::UserIdentity(self.value.as_bytes()))
            }
            _ => None,
        }
    }

    pub fn encoded_len(&self) -> usize {
        TLV_HEADER_LEN + self.value.len()
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.extension_type.to_le_bytes());
        out.push(self.field_type);
        self.value.encode(out);
    }
}

impl IntoStatic for Tlv<'_> {
    type Static = Tlv<'static>;
    fn into_static(self) -> Tlv<'static> {
        Tlv {
            extension_type: self.extension_type,
            field_type: self.field_type,
            value: self.value.into_static(),
        }
    }
}

/// The maximum value length of a known TLV on a message, if the TLV is known there.
fn known_max(message: (u16, u8), extension_type: u16, field_type: u8) -> Option<usize> {
    match (message, extension_type, field_type) {
        ((0, 0x1b), EXT_WORKER_HASHRATE_TRACKING, FIELD_USER_IDENTITY) => Some(USER_IDENTITY_MAX),
        _ => None,
    }
}

/// Decodes everything left in `r` as TLVs of the message `(extension_type, msg_type)`.
/// Bytes that do not form whole TLVs are an error; so is a known TLV over its maximum.
pub(crate) fn decode_trailing<'a>(
    r: &mut Reader<'a>,
    message: (u16, u8),
) -> Result<Vec<Tlv<'a>>, DecodeError> {
    let mut tlvs = Vec::new();
    while r.remaining() > 0 {
        r.field("tlv");
        let count = r.remaining();
        if count < TLV_HEADER_LEN {
            return Err(r.error(ErrorKind::TrailingBytes {
                count,
                reason: "fewer than the 5 bytes of a TLV header",
            }));
        }
        let head = r.take_array::<TLV_HEADER_LEN>()?;
        let extension_type = u16::from_le_bytes([head[0], head[1]]);
        let field_type = head[2];
        let length = u16::from_le_bytes([head[3], head[4]]) as usize;
        if length > r.remaining() {
            return Err(r.error(ErrorKind::TrailingBytes {
                count,
                reason: "a TLV length runs past the end of the payload",
            }));
        }
        if let Some(max) = known_max(message, extension_type, field_type) {
            if length > max {
                return Err(r.error(ErrorKind::TlvTooLong {
                    extension_type,
                    field_type,
                    length,
                    max,
                }));
            }
        } else {
            r.warn(WarningKind::UnknownTlv {
                extension_type,
                field_type,
            });
        }
        let value = r.take(length)?;
        if (extension_type, field_type) == (EXT_WORKER_HASHRATE_TRACKING, FIELD_USER_IDENTITY)
            && message == (0, 0x1b)
            && std::str::from_utf8(value).is_err()
        {
            r.warn(WarningKind::NotUtf8);
        }
        tlvs.push(Tlv {
            extension_type,
            field_type,
            // A U16 length is at most 65535, the bound of the value's type.
            value: Bytes::borrowed_within_bound(value),
        });
    }
    Ok(tlvs)
}
