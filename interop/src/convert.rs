//! Field-by-field conversions between `sv2_codec::Message` and SRI's `parsers_sv2::AnyMessage`, for
//! all 44 message types.
//!
//! [`to_sri`] borrows: the SRI message points into the bytes of our message. [`from_sri`] copies: the
//! result owns its bytes. Both directions keep every bit (F32 fields are carried as their bits).

use std::borrow::Cow;
use std::fmt;

use binary_sv2::{Seq0255, Seq064K, Str0255, Sv2Option, B016M, B0255, B032, B064K};
use common_messages_sv2 as cm;
use extensions_sv2 as ex;
use job_declaration_sv2 as jd;
use mining_sv2 as mi;
use parsers_sv2::{
    AnyMessage, CommonMessages, Extensions, ExtensionsNegotiation, JobDeclaration, Mining,
    TemplateDistribution,
};
use sv2_codec::messages::{self as ours, Message};
use sv2_codec::types::{Bytes, Seq, Str0_255, U256};
use template_distribution_sv2 as td;

/// Why one of our messages has no SRI counterpart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertError {
    /// SetupConnection.protocol is a U8 in the spec (and in ours); SRI's `Protocol` enum only has 0, 1
    /// and 2, so any other value cannot be represented.
    ProtocolOutOfRange(u8),
    /// A frame of an extension neither codec defines messages for (`Message::Raw`): SRI has no type
    /// for it.
    RawFrame { extension_type: u16, msg_type: u8 },
    /// An SRI constructor refused a value our type holds (would mean the two disagree on a bound).
    SriRejected(String),
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvertError::ProtocolOutOfRange(p) => write!(
                f,
                "SetupConnection.protocol {p} has no SRI Protocol variant (0..=2)"
            ),
            ConvertError::RawFrame {
                extension_type,
                msg_type,
            } => write!(
                f,
                "raw frame {extension_type:#06x}/{msg_type:#04x} has no SRI message type"
            ),
            ConvertError::SriRejected(why) => write!(f, "SRI refused a value: {why}"),
        }
    }
}

impl std::error::Error for ConvertError {}

type R<T> = Result<T, ConvertError>;

fn sri_err(e: binary_sv2::Error) -> ConvertError {
    ConvertError::SriRejected(format!("{e:?}"))
}

// ---- ours -> SRI (borrowing) ----

fn s255<'a>(s: &'a Str0_255<'_>) -> R<Str0255<'a>> {
    Str0255::try_from(s.as_bytes()).map_err(sri_err)
}

fn b32<'a>(b: &'a Bytes<'_, 1, 32>) -> R<B032<'a>> {
    B032::try_from(b.as_bytes()).map_err(sri_err)
}

fn b255<'a>(b: &'a Bytes<'_, 1, 255>) -> R<B0255<'a>> {
    B0255::try_from(b.as_bytes()).map_err(sri_err)
}

fn b64k<'a>(b: &'a Bytes<'_, 2, 65535>) -> R<B064K<'a>> {
    B064K::try_from(b.as_bytes()).map_err(sri_err)
}

fn u256(u: &U256) -> binary_sv2::U256<'_> {
    binary_sv2::U256::from(&u.0)
}

fn path(p: &Seq<U256, 1, 255>) -> R<Seq0255<'_, binary_sv2::U256<'_>>> {
    Seq0255::new(p.iter().map(u256).collect()).map_err(sri_err)
}

fn seq_u256(p: &Seq<U256, 2, 65535>) -> R<Seq064K<'_, binary_sv2::U256<'_>>> {
    Seq064K::new(p.iter().map(u256).collect()).map_err(sri_err)
}

fn seq_u16<'a>(p: &Seq<u16, 2, 65535>) -> R<Seq064K<'a, u16>> {
    Seq064K::new(p.as_slice().to_vec()).map_err(sri_err)
}

fn seq_u32<'a>(p: &Seq<u32, 2, 65535>) -> R<Seq064K<'a, u32>> {
    Seq064K::new(p.as_slice().to_vec()).map_err(sri_err)
}

fn seq_b16m<'a>(p: &'a Seq<Bytes<'_, 3, 16_777_215>, 2, 65535>) -> R<Seq064K<'a, B016M<'a>>> {
    let items = p
        .iter()
        .map(|b| B016M::try_from(b.as_bytes()).map_err(sri_err))
        .collect::<R<Vec<_>>>()?;
    Seq064K::new(items).map_err(sri_err)
}

fn opt<'a>(o: &Option<u32>) -> Sv2Option<'a, u32> {
    Sv2Option::new(*o)
}

/// Our message as SRI's, borrowing its bytes. Fails for `SetupConnection.protocol > 2` and for raw
/// frames, which SRI cannot represent.
pub fn to_sri<'a>(message: &'a Message<'_>) -> Result<AnyMessage<'a>, ConvertError> {
    use AnyMessage as A;
    Ok(match message {
        // ---- Common
        Message::SetupConnection(m) => {
            let protocol = cm::Protocol::try_from(m.protocol)
                .map_err(|()| ConvertError::ProtocolOutOfRange(m.protocol))?;
            A::Common(CommonMessages::SetupConnection(cm::SetupConnection {
                protocol,
                min_version: m.min_version,
                max_version: m.max_version,
                flags: m.flags,
                endpoint_host: s255(&m.endpoint_host)?,
                endpoint_port: m.endpoint_port,
                vendor: s255(&m.vendor)?,
                hardware_version: s255(&m.hardware_version)?,
                firmware: s255(&m.firmware)?,
                device_id: s255(&m.device_id)?,
            }))
        }
        Message::SetupConnectionSuccess(m) => A::Common(CommonMessages::SetupConnectionSuccess(
            cm::SetupConnectionSuccess {
                used_version: m.used_version,
                flags: m.flags,
            },
        )),
        Message::SetupConnectionError(m) => A::Common(CommonMessages::SetupConnectionError(
            cm::SetupConnectionError {
                flags: m.flags,
                error_code: s255(&m.error_code)?,
            },
        )),
        Message::ChannelEndpointChanged(m) => A::Common(CommonMessages::ChannelEndpointChanged(
            cm::ChannelEndpointChanged {
                channel_id: m.channel_id,
            },
        )),
        Message::Reconnect(m) => A::Common(CommonMessages::Reconnect(cm::Reconnect {
            new_host: s255(&m.new_host)?,
            new_port: m.new_port,
        })),
        // ---- Mining
        Message::OpenStandardMiningChannel(m) => A::Mining(Mining::OpenStandardMiningChannel(
            mi::OpenStandardMiningChannel {
                request_id: m.request_id,
                user_identity: s255(&m.user_identity)?,
                nominal_hash_rate: m.nominal_hash_rate,
                max_target: u256(&m.max_target),
            },
        )),
        Message::OpenStandardMiningChannelSuccess(m) => A::Mining(
            Mining::OpenStandardMiningChannelSuccess(mi::OpenStandardMiningChannelSuccess {
                request_id: m.request_id,
                channel_id: m.channel_id,
                target: u256(&m.target),
                extranonce_prefix: b32(&m.extranonce_prefix)?,
                group_channel_id: m.group_channel_id,
            }),
        ),
        Message::OpenMiningChannelError(m) => {
            A::Mining(Mining::OpenMiningChannelError(mi::OpenMiningChannelError {
                request_id: m.request_id,
                error_code: s255(&m.error_code)?,
            }))
        }
        Message::OpenExtendedMiningChannel(m) => A::Mining(Mining::OpenExtendedMiningChannel(
            mi::OpenExtendedMiningChannel {
                request_id: m.request_id,
                user_identity: s255(&m.user_identity)?,
                nominal_hash_rate: m.nominal_hash_rate,
                max_target: u256(&m.max_target),
                min_extranonce_size: m.min_extranonce_size,
            },
        )),
        Message::OpenExtendedMiningChannelSuccess(m) => A::Mining(
            Mining::OpenExtendedMiningChannelSuccess(mi::OpenExtendedMiningChannelSuccess {
                request_id: m.request_id,
                channel_id: m.channel_id,
                target: u256(&m.target),
                extranonce_size: m.extranonce_size,
                extranonce_prefix: b32(&m.extranonce_prefix)?,
                group_channel_id: m.group_channel_id,
            }),
        ),
        Message::NewMiningJob(m) => A::Mining(Mining::NewMiningJob(mi::NewMiningJob {
            channel_id: m.channel_id,
            job_id: m.job_id,
            min_ntime: opt(&m.min_ntime),
            version: m.version,
            merkle_root: u256(&m.merkle_root),
        })),
        Message::UpdateChannel(m) => A::Mining(Mining::UpdateChannel(mi::UpdateChannel {
            channel_id: m.channel_id,
            nominal_hash_rate: m.nominal_hash_rate,
            maximum_target: u256(&m.maximum_target),
        })),
        Message::UpdateChannelError(m) => {
            A::Mining(Mining::UpdateChannelError(mi::UpdateChannelError {
                channel_id: m.channel_id,
                error_code: s255(&m.error_code)?,
            }))
        }
        Message::CloseChannel(m) => A::Mining(Mining::CloseChannel(mi::CloseChannel {
            channel_id: m.channel_id,
            reason_code: s255(&m.reason_code)?,
        })),
        Message::SetExtranoncePrefix(m) => {
            A::Mining(Mining::SetExtranoncePrefix(mi::SetExtranoncePrefix {
                channel_id: m.channel_id,
                extranonce_prefix: b32(&m.extranonce_prefix)?,
            }))
        }
        Message::SubmitSharesStandard(m) => {
            A::Mining(Mining::SubmitSharesStandard(mi::SubmitSharesStandard {
                channel_id: m.channel_id,
                sequence_number: m.sequence_number,
                job_id: m.job_id,
                nonce: m.nonce,
                ntime: m.ntime,
                version: m.version,
            }))
        }
        Message::SubmitSharesExtended(m) => {
            A::Mining(Mining::SubmitSharesExtended(mi::SubmitSharesExtended {
                channel_id: m.channel_id,
                sequence_number: m.sequence_number,
                job_id: m.job_id,
                nonce: m.nonce,
                ntime: m.ntime,
                version: m.version,
                extranonce: b32(&m.extranonce)?,
            }))
        }
        Message::SubmitSharesSuccess(m) => {
            A::Mining(Mining::SubmitSharesSuccess(mi::SubmitSharesSuccess {
                channel_id: m.channel_id,
                last_sequence_number: m.last_sequence_number,
                new_submits_accepted_count: m.new_submits_accepted_count,
                new_shares_sum: m.new_shares_sum,
            }))
        }
        Message::SubmitSharesError(m) => {
            A::Mining(Mining::SubmitSharesError(mi::SubmitSharesError {
                channel_id: m.channel_id,
                sequence_number: m.sequence_number,
                error_code: s255(&m.error_code)?,
            }))
        }
        Message::NewExtendedMiningJob(m) => {
            A::Mining(Mining::NewExtendedMiningJob(mi::NewExtendedMiningJob {
                channel_id: m.channel_id,
                job_id: m.job_id,
                min_ntime: opt(&m.min_ntime),
                version: m.version,
                version_rolling_allowed: m.version_rolling_allowed,
                merkle_path: path(&m.merkle_path)?,
                coinbase_tx_prefix: b64k(&m.coinbase_tx_prefix)?,
                coinbase_tx_suffix: b64k(&m.coinbase_tx_suffix)?,
            }))
        }
        Message::SetNewPrevHash(m) => A::Mining(Mining::SetNewPrevHash(mi::SetNewPrevHash {
            channel_id: m.channel_id,
            job_id: m.job_id,
            prev_hash: u256(&m.prev_hash),
            min_ntime: m.min_ntime,
            nbits: m.nbits,
        })),
        Message::SetTarget(m) => A::Mining(Mining::SetTarget(mi::SetTarget {
            channel_id: m.channel_id,
            maximum_target: u256(&m.maximum_target),
        })),
        Message::SetCustomMiningJob(m) => {
            A::Mining(Mining::SetCustomMiningJob(mi::SetCustomMiningJob {
                channel_id: m.channel_id,
                request_id: m.request_id,
                token: b255(&m.mining_job_token)?,
                version: m.version,
                prev_hash: u256(&m.prev_hash),
                min_ntime: m.min_ntime,
                nbits: m.nbits,
                coinbase_tx_version: m.coinbase_tx_version,
                coinbase_prefix: b255(&m.coinbase_prefix)?,
                coinbase_tx_input_n_sequence: m.coinbase_tx_input_n_sequence,
                coinbase_tx_outputs: b64k(&m.coinbase_tx_outputs)?,
                coinbase_tx_locktime: m.coinbase_tx_locktime,
                merkle_path: path(&m.merkle_path)?,
            }))
        }
        Message::SetCustomMiningJobSuccess(m) => A::Mining(Mining::SetCustomMiningJobSuccess(
            mi::SetCustomMiningJobSuccess {
                channel_id: m.channel_id,
                request_id: m.request_id,
                job_id: m.job_id,
            },
        )),
        Message::SetCustomMiningJobError(m) => A::Mining(Mining::SetCustomMiningJobError(
            mi::SetCustomMiningJobError {
                channel_id: m.channel_id,
                request_id: m.request_id,
                error_code: s255(&m.error_code)?,
            },
        )),
        Message::SetGroupChannel(m) => A::Mining(Mining::SetGroupChannel(mi::SetGroupChannel {
            group_channel_id: m.group_channel_id,
            channel_ids: seq_u32(&m.channel_ids)?,
        })),
        // ---- Job Declaration
        Message::AllocateMiningJobToken(m) => A::JobDeclaration(
            JobDeclaration::AllocateMiningJobToken(jd::AllocateMiningJobToken {
                user_identifier: s255(&m.user_identifier)?,
                request_id: m.request_id,
            }),
        ),
        Message::AllocateMiningJobTokenSuccess(m) => A::JobDeclaration(
            JobDeclaration::AllocateMiningJobTokenSuccess(jd::AllocateMiningJobTokenSuccess {
                request_id: m.request_id,
                mining_job_token: b255(&m.mining_job_token)?,
                coinbase_outputs: b64k(&m.coinbase_tx_outputs)?,
            }),
        ),
        Message::ProvideMissingTransactions(m) => A::JobDeclaration(
            JobDeclaration::ProvideMissingTransactions(jd::ProvideMissingTransactions {
                request_id: m.request_id,
                unknown_tx_position_list: seq_u16(&m.unknown_tx_position_list)?,
            }),
        ),
        Message::ProvideMissingTransactionsSuccess(m) => {
            A::JobDeclaration(JobDeclaration::ProvideMissingTransactionsSuccess(
                jd::ProvideMissingTransactionsSuccess {
                    request_id: m.request_id,
                    transaction_list: seq_b16m(&m.transaction_list)?,
                },
            ))
        }
        Message::DeclareMiningJob(m) => {
            A::JobDeclaration(JobDeclaration::DeclareMiningJob(jd::DeclareMiningJob {
                request_id: m.request_id,
                mining_job_token: b255(&m.mining_job_token)?,
                version: m.version,
                coinbase_tx_prefix: b64k(&m.coinbase_tx_prefix)?,
                coinbase_tx_suffix: b64k(&m.coinbase_tx_suffix)?,
                wtxid_list: seq_u256(&m.wtxid_list)?,
                excess_data: b64k(&m.excess_data)?,
            }))
        }
        Message::DeclareMiningJobSuccess(m) => A::JobDeclaration(
            JobDeclaration::DeclareMiningJobSuccess(jd::DeclareMiningJobSuccess {
                request_id: m.request_id,
                new_mining_job_token: b255(&m.new_mining_job_token)?,
            }),
        ),
        Message::DeclareMiningJobError(m) => A::JobDeclaration(
            JobDeclaration::DeclareMiningJobError(jd::DeclareMiningJobError {
                request_id: m.request_id,
                error_code: s255(&m.error_code)?,
                error_details: b64k(&m.error_details)?,
            }),
        ),
        Message::PushSolution(m) => {
            A::JobDeclaration(JobDeclaration::PushSolution(jd::PushSolution {
                extranonce: b32(&m.extranonce)?,
                prev_hash: u256(&m.prev_hash),
                nonce: m.nonce,
                ntime: m.ntime,
                nbits: m.nbits,
                version: m.version,
            }))
        }
        // ---- Template Distribution
        Message::CoinbaseOutputConstraints(m) => A::TemplateDistribution(
            TemplateDistribution::CoinbaseOutputConstraints(td::CoinbaseOutputConstraints {
                coinbase_output_max_additional_size: m.coinbase_output_max_additional_size,
                coinbase_output_max_additional_sigops: m.coinbase_output_max_additional_sigops,
            }),
        ),
        Message::NewTemplate(m) => {
            A::TemplateDistribution(TemplateDistribution::NewTemplate(td::NewTemplate {
                template_id: m.template_id,
                future_template: m.future_template,
                version: m.version,
                coinbase_tx_version: m.coinbase_tx_version,
                coinbase_prefix: b255(&m.coinbase_prefix)?,
                coinbase_tx_input_sequence: m.coinbase_tx_input_sequence,
                coinbase_tx_value_remaining: m.coinbase_tx_value_remaining,
                coinbase_tx_outputs_count: m.coinbase_tx_outputs_count,
                coinbase_tx_outputs: b64k(&m.coinbase_tx_outputs)?,
                coinbase_tx_locktime: m.coinbase_tx_locktime,
                merkle_path: path(&m.merkle_path)?,
            }))
        }
        Message::SetNewPrevHashTdp(m) => {
            A::TemplateDistribution(TemplateDistribution::SetNewPrevHash(td::SetNewPrevHash {
                template_id: m.template_id,
                prev_hash: u256(&m.prev_hash),
                header_timestamp: m.header_timestamp,
                n_bits: m.n_bits,
                target: u256(&m.target),
            }))
        }
        Message::RequestTransactionData(m) => A::TemplateDistribution(
            TemplateDistribution::RequestTransactionData(td::RequestTransactionData {
                template_id: m.template_id,
            }),
        ),
        Message::RequestTransactionDataSuccess(m) => {
            A::TemplateDistribution(TemplateDistribution::RequestTransactionDataSuccess(
                td::RequestTransactionDataSuccess {
                    template_id: m.template_id,
                    excess_data: b64k(&m.excess_data)?,
                    transaction_list: seq_b16m(&m.transaction_list)?,
                },
            ))
        }
        Message::RequestTransactionDataError(m) => A::TemplateDistribution(
            TemplateDistribution::RequestTransactionDataError(td::RequestTransactionDataError {
                template_id: m.template_id,
                error_code: s255(&m.error_code)?,
            }),
        ),
        Message::SubmitSolution(m) => {
            A::TemplateDistribution(TemplateDistribution::SubmitSolution(td::SubmitSolution {
                template_id: m.template_id,
                version: m.version,
                header_timestamp: m.header_timestamp,
                header_nonce: m.header_nonce,
                coinbase_tx: b64k(&m.coinbase_tx)?,
            }))
        }
        // ---- Extension 0x0001
        Message::RequestExtensions(m) => A::Extensions(Extensions::ExtensionsNegotiation(
            ExtensionsNegotiation::RequestExtensions(ex::RequestExtensions {
                request_id: m.request_id,
                requested_extensions: seq_u16(&m.requested_extensions)?,
            }),
        )),
        Message::RequestExtensionsSuccess(m) => A::Extensions(Extensions::ExtensionsNegotiation(
            ExtensionsNegotiation::RequestExtensionsSuccess(ex::RequestExtensionsSuccess {
                request_id: m.request_id,
                supported_extensions: seq_u16(&m.supported_extensions)?,
            }),
        )),
        Message::RequestExtensionsError(m) => A::Extensions(Extensions::ExtensionsNegotiation(
            ExtensionsNegotiation::RequestExtensionsError(ex::RequestExtensionsError {
                request_id: m.request_id,
                unsupported_extensions: seq_u16(&m.unsupported_extensions)?,
                required_extensions: seq_u16(&m.required_extensions)?,
            }),
        )),
        Message::Raw(raw) => {
            return Err(ConvertError::RawFrame {
                extension_type: raw.extension_type,
                msg_type: raw.msg_type,
            })
        }
    })
}

// ---- SRI -> ours (copying) ----
//
// SRI's byte and sequence types enforce the same bounds as ours (checked when they are built or
// decoded), so the constructors below cannot fail on a value SRI holds; if one does, SRI broke its own
// bound, which the tests must hear about loudly.

fn bytes<const P: usize, const M: usize>(what: &str, b: &[u8]) -> Bytes<'static, P, M> {
    Bytes::new(Cow::Owned(b.to_vec()))
        .unwrap_or_else(|e| panic!("SRI {what} holds more than its bound: {e}"))
}

fn o_s255(s: &Str0255<'_>) -> Str0_255<'static> {
    Str0_255::new(s.as_bytes().to_vec())
        .unwrap_or_else(|e| panic!("SRI Str0255 holds more than its bound: {e}"))
}

fn o_u256(u: &binary_sv2::U256<'_>) -> U256 {
    U256(u.to_array())
}

fn o_seq<T, U, const P: usize, const M: usize>(
    what: &str,
    items: impl Iterator<Item = T>,
    f: impl Fn(T) -> U,
) -> Seq<U, P, M> {
    Seq::new(items.map(f).collect())
        .unwrap_or_else(|e| panic!("SRI {what} holds more than its bound: {e}"))
}

fn o_opt(o: &Sv2Option<'_, u32>) -> Option<u32> {
    o.as_ref().copied()
}

/// SRI's message as ours, owning its bytes. Every SRI message has a counterpart.
pub fn from_sri(message: &AnyMessage<'_>) -> Message<'static> {
    use AnyMessage as A;
    match message {
        A::Common(c) => match c {
            CommonMessages::SetupConnection(m) => Message::SetupConnection(ours::SetupConnection {
                protocol: m.protocol as u8,
                min_version: m.min_version,
                max_version: m.max_version,
                flags: m.flags,
                endpoint_host: o_s255(&m.endpoint_host),
                endpoint_port: m.endpoint_port,
                vendor: o_s255(&m.vendor),
                hardware_version: o_s255(&m.hardware_version),
                firmware: o_s255(&m.firmware),
                device_id: o_s255(&m.device_id),
            }),
            CommonMessages::SetupConnectionSuccess(m) => {
                Message::SetupConnectionSuccess(ours::SetupConnectionSuccess {
                    used_version: m.used_version,
                    flags: m.flags,
                })
            }
            CommonMessages::SetupConnectionError(m) => {
                Message::SetupConnectionError(ours::SetupConnectionError {
                    flags: m.flags,
                    error_code: o_s255(&m.error_code),
                })
            }
            CommonMessages::ChannelEndpointChanged(m) => {
                Message::ChannelEndpointChanged(ours::ChannelEndpointChanged {
                    channel_id: m.channel_id,
                })
            }
            CommonMessages::Reconnect(m) => Message::Reconnect(ours::Reconnect {
                new_host: o_s255(&m.new_host),
                new_port: m.new_port,
            }),
        },
        A::Mining(mm) => match mm {
            Mining::OpenStandardMiningChannel(m) => {
                Message::OpenStandardMiningChannel(ours::OpenStandardMiningChannel {
                    request_id: m.request_id,
                    user_identity: o_s255(&m.user_identity),
                    nominal_hash_rate: m.nominal_hash_rate,
                    max_target: o_u256(&m.max_target),
                })
            }
            Mining::OpenStandardMiningChannelSuccess(m) => {
                Message::OpenStandardMiningChannelSuccess(ours::OpenStandardMiningChannelSuccess {
                    request_id: m.request_id,
                    channel_id: m.channel_id,
                    target: o_u256(&m.target),
                    extranonce_prefix: bytes("B032", m.extranonce_prefix.as_bytes()),
                    group_channel_id: m.group_channel_id,
                })
            }
            Mining::OpenMiningChannelError(m) => {
                Message::OpenMiningChannelError(ours::OpenMiningChannelError {
                    request_id: m.request_id,
                    error_code: o_s255(&m.error_code),
                })
            }
            Mining::OpenExtendedMiningChannel(m) => {
                Message::OpenExtendedMiningChannel(ours::OpenExtendedMiningChannel {
                    request_id: m.request_id,
                    user_identity: o_s255(&m.user_identity),
                    nominal_hash_rate: m.nominal_hash_rate,
                    max_target: o_u256(&m.max_target),
                    min_extranonce_size: m.min_extranonce_size,
                })
            }
            Mining::OpenExtendedMiningChannelSuccess(m) => {
                Message::OpenExtendedMiningChannelSuccess(ours::OpenExtendedMiningChannelSuccess {
                    request_id: m.request_id,
                    channel_id: m.channel_id,
                    target: o_u256(&m.target),
                    extranonce_size: m.extranonce_size,
                    extranonce_prefix: bytes("B032", m.extranonce_prefix.as_bytes()),
                    group_channel_id: m.group_channel_id,
                })
            }
            Mining::NewMiningJob(m) => Message::NewMiningJob(ours::NewMiningJob {
                channel_id: m.channel_id,
                job_id: m.job_id,
                min_ntime: o_opt(&m.min_ntime),
                version: m.version,
                merkle_root: o_u256(&m.merkle_root),
            }),
            Mining::UpdateChannel(m) => Message::UpdateChannel(ours::UpdateChannel {
                channel_id: m.channel_id,
                nominal_hash_rate: m.nominal_hash_rate,
                maximum_target: o_u256(&m.maximum_target),
            }),
            Mining::UpdateChannelError(m) => {
                Message::UpdateChannelError(ours::UpdateChannelError {
                    channel_id: m.channel_id,
                    error_code: o_s255(&m.error_code),
                })
            }
            Mining::CloseChannel(m) => Message::CloseChannel(ours::CloseChannel {
                channel_id: m.channel_id,
                reason_code: o_s255(&m.reason_code),
            }),
            Mining::SetExtranoncePrefix(m) => {
                Message::SetExtranoncePrefix(ours::SetExtranoncePrefix {
                    channel_id: m.channel_id,
                    extranonce_prefix: bytes("B032", m.extranonce_prefix.as_bytes()),
                })
            }
            Mining::SubmitSharesStandard(m) => {
                Message::SubmitSharesStandard(ours::SubmitSharesStandard {
                    channel_id: m.channel_id,
                    sequence_number: m.sequence_number,
                    job_id: m.job_id,
                    nonce: m.nonce,
                    ntime: m.ntime,
                    version: m.version,
                })
            }
            Mining::SubmitSharesExtended(m) => {
                Message::SubmitSharesExtended(ours::SubmitSharesExtended {
                    channel_id: m.channel_id,
                    sequence_number: m.sequence_number,
                    job_id: m.job_id,
                    nonce: m.nonce,
                    ntime: m.ntime,
                    version: m.version,
                    extranonce: bytes("B032", m.extranonce.as_bytes()),
                })
            }
            Mining::SubmitSharesSuccess(m) => {
                Message::SubmitSharesSuccess(ours::SubmitSharesSuccess {
                    channel_id: m.channel_id,
                    last_sequence_number: m.last_sequence_number,
                    new_submits_accepted_count: m.new_submits_accepted_count,
                    new_shares_sum: m.new_shares_sum,
                })
            }
            Mining::SubmitSharesError(m) => Message::SubmitSharesError(ours::SubmitSharesError {
                channel_id: m.channel_id,
                sequence_number: m.sequence_number,
                error_code: o_s255(&m.error_code),
            }),
            Mining::NewExtendedMiningJob(m) => {
                Message::NewExtendedMiningJob(ours::NewExtendedMiningJob {
                    channel_id: m.channel_id,
                    job_id: m.job_id,
                    min_ntime: o_opt(&m.min_ntime),
                    version: m.version,
                    version_rolling_allowed: m.version_rolling_allowed,
                    merkle_path: o_seq("Seq0255<U256>", m.merkle_path.iter(), o_u256),
                    coinbase_tx_prefix: bytes("B064K", m.coinbase_tx_prefix.as_bytes()),
                    coinbase_tx_suffix: bytes("B064K", m.coinbase_tx_suffix.as_bytes()),
                })
            }
            Mining::SetNewPrevHash(m) => Message::SetNewPrevHash(ours::SetNewPrevHash {
                channel_id: m.channel_id,
                job_id: m.job_id,
                prev_hash: o_u256(&m.prev_hash),
                min_ntime: m.min_ntime,
                nbits: m.nbits,
            }),
            Mining::SetTarget(m) => Message::SetTarget(ours::SetTarget {
                channel_id: m.channel_id,
                maximum_target: o_u256(&m.maximum_target),
            }),
            Mining::SetCustomMiningJob(m) => {
                Message::SetCustomMiningJob(ours::SetCustomMiningJob {
                    channel_id: m.channel_id,
                    request_id: m.request_id,
                    mining_job_token: bytes("B0255", m.token.as_bytes()),
                    version: m.version,
                    prev_hash: o_u256(&m.prev_hash),
                    min_ntime: m.min_ntime,
                    nbits: m.nbits,
                    coinbase_tx_version: m.coinbase_tx_version,
                    coinbase_prefix: bytes("B0255", m.coinbase_prefix.as_bytes()),
                    coinbase_tx_input_n_sequence: m.coinbase_tx_input_n_sequence,
                    coinbase_tx_outputs: bytes("B064K", m.coinbase_tx_outputs.as_bytes()),
                    coinbase_tx_locktime: m.coinbase_tx_locktime,
                    merkle_path: o_seq("Seq0255<U256>", m.merkle_path.iter(), o_u256),
                })
            }
            Mining::SetCustomMiningJobSuccess(m) => {
                Message::SetCustomMiningJobSuccess(ours::SetCustomMiningJobSuccess {
                    channel_id: m.channel_id,
                    request_id: m.request_id,
                    job_id: m.job_id,
                })
            }
            Mining::SetCustomMiningJobError(m) => {
                Message::SetCustomMiningJobError(ours::SetCustomMiningJobError {
                    channel_id: m.channel_id,
                    request_id: m.request_id,
                    error_code: o_s255(&m.error_code),
                })
            }
            Mining::SetGroupChannel(m) => Message::SetGroupChannel(ours::SetGroupChannel {
                group_channel_id: m.group_channel_id,
                channel_ids: o_seq("Seq064K<u32>", m.channel_ids.iter(), |x| *x),
            }),
        },
        A::JobDeclaration(j) => match j {
            JobDeclaration::AllocateMiningJobToken(m) => {
                Message::AllocateMiningJobToken(ours::AllocateMiningJobToken {
                    user_identifier: o_s255(&m.user_identifier),
                    request_id: m.request_id,
                })
            }
            JobDeclaration::AllocateMiningJobTokenSuccess(m) => {
                Message::AllocateMiningJobTokenSuccess(ours::AllocateMiningJobTokenSuccess {
                    request_id: m.request_id,
                    mining_job_token: bytes("B0255", m.mining_job_token.as_bytes()),
                    coinbase_tx_outputs: bytes("B064K", m.coinbase_outputs.as_bytes()),
                })
            }
            JobDeclaration::ProvideMissingTransactions(m) => {
                Message::ProvideMissingTransactions(ours::ProvideMissingTransactions {
                    request_id: m.request_id,
                    unknown_tx_position_list: o_seq(
                        "Seq064K<u16>",
                        m.unknown_tx_position_list.iter(),
                        |x| *x,
                    ),
                })
            }
            JobDeclaration::ProvideMissingTransactionsSuccess(m) => {
                Message::ProvideMissingTransactionsSuccess(
                    ours::ProvideMissingTransactionsSuccess {
                        request_id: m.request_id,
                        transaction_list: o_seq("Seq064K<B016M>", m.transaction_list.iter(), |t| {
                            bytes("B016M", t.as_bytes())
                        }),
                    },
                )
            }
            JobDeclaration::DeclareMiningJob(m) => {
                Message::DeclareMiningJob(ours::DeclareMiningJob {
                    request_id: m.request_id,
                    mining_job_token: bytes("B0255", m.mining_job_token.as_bytes()),
                    version: m.version,
                    coinbase_tx_prefix: bytes("B064K", m.coinbase_tx_prefix.as_bytes()),
                    coinbase_tx_suffix: bytes("B064K", m.coinbase_tx_suffix.as_bytes()),
                    wtxid_list: o_seq("Seq064K<U256>", m.wtxid_list.iter(), o_u256),
                    excess_data: bytes("B064K", m.excess_data.as_bytes()),
                })
            }
            JobDeclaration::DeclareMiningJobSuccess(m) => {
                Message::DeclareMiningJobSuccess(ours::DeclareMiningJobSuccess {
                    request_id: m.request_id,
                    new_mining_job_token: bytes("B0255", m.new_mining_job_token.as_bytes()),
                })
            }
            JobDeclaration::DeclareMiningJobError(m) => {
                Message::DeclareMiningJobError(ours::DeclareMiningJobError {
                    request_id: m.request_id,
                    error_code: o_s255(&m.error_code),
                    error_details: bytes("B064K", m.error_details.as_bytes()),
                })
            }
            JobDeclaration::PushSolution(m) => Message::PushSolution(ours::PushSolution {
                extranonce: bytes("B032", m.extranonce.as_bytes()),
                prev_hash: o_u256(&m.prev_hash),
                nonce: m.nonce,
                ntime: m.ntime,
                nbits: m.nbits,
                version: m.version,
            }),
        },
        A::TemplateDistribution(t) => match t {
            TemplateDistribution::CoinbaseOutputConstraints(m) => {
                Message::CoinbaseOutputConstraints(ours::CoinbaseOutputConstraints {
                    coinbase_output_max_additional_size: m.coinbase_output_max_additional_size,
                    coinbase_output_max_additional_sigops: m.coinbase_output_max_additional_sigops,
                })
            }
            TemplateDistribution::NewTemplate(m) => Message::NewTemplate(ours::NewTemplate {
                template_id: m.template_id,
                future_template: m.future_template,
                version: m.version,
                coinbase_tx_version: m.coinbase_tx_version,
                coinbase_prefix: bytes("B0255", m.coinbase_prefix.as_bytes()),
                coinbase_tx_input_sequence: m.coinbase_tx_input_sequence,
                coinbase_tx_value_remaining: m.coinbase_tx_value_remaining,
                coinbase_tx_outputs_count: m.coinbase_tx_outputs_count,
                coinbase_tx_outputs: bytes("B064K", m.coinbase_tx_outputs.as_bytes()),
                coinbase_tx_locktime: m.coinbase_tx_locktime,
                merkle_path: o_seq("Seq0255<U256>", m.merkle_path.iter(), o_u256),
            }),
            TemplateDistribution::SetNewPrevHash(m) => {
                Message::SetNewPrevHashTdp(ours::SetNewPrevHashTdp {
                    template_id: m.template_id,
                    prev_hash: o_u256(&m.prev_hash),
                    header_timestamp: m.header_timestamp,
                    n_bits: m.n_bits,
                    target: o_u256(&m.target),
                })
            }
            TemplateDistribution::RequestTransactionData(m) => {
                Message::RequestTransactionData(ours::RequestTransactionData {
                    template_id: m.template_id,
                })
            }
            TemplateDistribution::RequestTransactionDataSuccess(m) => {
                Message::RequestTransactionDataSuccess(ours::RequestTransactionDataSuccess {
                    template_id: m.template_id,
                    excess_data: bytes("B064K", m.excess_data.as_bytes()),
                    transaction_list: o_seq("Seq064K<B016M>", m.transaction_list.iter(), |t| {
                        bytes("B016M", t.as_bytes())
                    }),
                })
            }
            TemplateDistribution::RequestTransactionDataError(m) => {
                Message::RequestTransactionDataError(ours::RequestTransactionDataError {
                    template_id: m.template_id,
                    error_code: o_s255(&m.error_code),
                })
            }
            TemplateDistribution::SubmitSolution(m) => {
                Message::SubmitSolution(ours::SubmitSolution {
                    template_id: m.template_id,
                    version: m.version,
                    header_timestamp: m.header_timestamp,
                    header_nonce: m.header_nonce,
                    coinbase_tx: bytes("B064K", m.coinbase_tx.as_bytes()),
                })
            }
        },
        A::Extensions(Extensions::ExtensionsNegotiation(e)) => match e {
            ExtensionsNegotiation::RequestExtensions(m) => {
                Message::RequestExtensions(ours::RequestExtensions {
                    request_id: m.request_id,
                    requested_extensions: o_seq(
                        "Seq064K<u16>",
                        m.requested_extensions.iter(),
                        |x| *x,
                    ),
                })
            }
            ExtensionsNegotiation::RequestExtensionsSuccess(m) => {
                Message::RequestExtensionsSuccess(ours::RequestExtensionsSuccess {
                    request_id: m.request_id,
                    supported_extensions: o_seq(
                        "Seq064K<u16>",
                        m.supported_extensions.iter(),
                        |x| *x,
                    ),
                })
            }
            ExtensionsNegotiation::RequestExtensionsError(m) => {
                Message::RequestExtensionsError(ours::RequestExtensionsError {
                    request_id: m.request_id,
                    unsupported_extensions: o_seq(
                        "Seq064K<u16>",
                        m.unsupported_extensions.iter(),
                        |x| *x,
                    ),
                    required_extensions: o_seq("Seq064K<u16>", m.required_extensions.iter(), |x| {
                        *x
                    }),
                })
            }
        },
    }
}

/// Whether two of our messages are the same, comparing F32 fields by their bits (so NaN equals the
/// same NaN and 0.0 differs from -0.0): the field encoding is injective, so equal encodings are equal
/// values.
pub fn same_message(a: &Message<'_>, b: &Message<'_>) -> bool {
    let mut ea = Vec::with_capacity(a.encoded_len());
    let mut eb = Vec::with_capacity(b.encoded_len());
    a.encode_fields(&mut ea);
    b.encode_fields(&mut eb);
    a.id() == b.id() && a.channel_msg() == b.channel_msg() && ea == eb
}
