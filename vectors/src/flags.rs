//! Every flag a vector may carry: `(name, bugType, description)`. A file's `notes` lists the flags its
//! tests use.

pub const FLAGS: &[(&str, &str, &str)] = &[
    // Coverage
    ("Minimal", "BASIC", "Every field at its smallest: integers 0, empty strings, byte strings and sequences, OPTION None, BOOL false."),
    ("Typical", "BASIC", "Realistic values, as a pool, proxy, miner, job declarator or template provider would send them."),
    ("Maximal", "EDGE_CASE", "Integers at their maximum, F32 at its largest finite value, BOOL true, OPTION Some; 1-byte-prefixed fields (STR0_255, B0_32, B0_255, SEQ0_255) at their maximum length; 2- and 3-byte-prefixed fields at 256 bytes or elements (the first size that needs the second prefix byte)."),
    ("LargeField", "EDGE_CASE", "A 2- or 3-byte-prefixed field at or past 65535 bytes or elements: B0_64K of 65535 bytes, SEQ0_64K of 65535 elements, a B0_16M element of 65536 bytes."),
    ("SpecExample", "BASIC", "The bytes of an example printed in the spec or computed in the spec digest (CATALOG §G); hosts in examples are replaced by 127.0.0.1."),
    ("EdgeValue", "EDGE_CASE", "A value at the edge of its type's range."),
    ("OptionNone", "BASIC", "OPTION[T] absent (prefix 0x00)."),
    ("OptionSome", "BASIC", "OPTION[T] present (prefix 0x01, then T)."),
    ("NonCanonicalBool", "EDGE_CASE", "A BOOL byte with bits other than the LSB set. Spec §3.1: recipients MUST NOT interpret them, so the value is the LSB and the frame is valid (a codec rejecting it is non-conformant). It re-encodes canonically (00/01): see `reencoded`."),
    ("F32Special", "EDGE_CASE", "An F32 that is NaN, infinite, negative zero or subnormal. F32 is not defined in spec §3.1 (CATALOG H.4); IEEE-754 binary32 little-endian, every bit kept. JSON: non-finite values are {\"bits\": \"<8 hex digits, big-endian u32>\"}."),
    ("NonUtf8String", "EDGE_CASE", "A STR0_255 whose bytes are not UTF-8. The spec mandates no encoding: valid; JSON {\"hex\": ...}."),
    ("UndefinedProtocolValue", "AMBIGUOUS", "SetupConnection.protocol outside 0..=2. The field is a U8; the value names no sub-protocol. A decoder may accept it (and the server answer SetupConnection.Error) or refuse it while decoding (the reference implementation does)."),
    ("UnknownExtension", "FUNCTIONALITY", "A frame of an extension without messages in this codec. It frames fine and is kept raw; spec §3.4: discard it (channel_msg 0) or forward it to the channel's owner (channel_msg 1)."),
    ("ChannelMsgBitErratum", "SPEC_ERRATUM", "channel_msg is bit 15 of the U16 extension_type (mask 0x8000, the second byte on the wire), not the least significant bit as §3.2.1 words it (CATALOG H.2)."),
    ("ChannelMsgBit", "STRICTNESS", "The channel_msg bit differs from the one spec §8 assigns to the message (§3.2, CATALOG F.5)."),
    ("UnknownMessageType", "AMBIGUOUS", "A msg_type that extension 0x0000 (or 0x0001) does not define. The spec does not say whether to drop the frame or close the connection (CATALOG H.14); either way it cannot be decoded."),
    ("TrailingByte", "STRICTNESS", "Bytes after the message's last field that do not form a well-formed TLV (§3.4.3: only TLVs may follow)."),
    ("Truncated", "MALFORMED", "The payload ends inside a field (msg_length agrees with the bytes present)."),
    ("LengthMismatch", "MALFORMED", "The bytes after the header are fewer or more than msg_length. A stream decoder would wait for more bytes or take the next frame's bytes; as a standalone frame it is malformed."),
    ("IncompleteHeader", "MALFORMED", "Fewer than the 6 bytes of a frame header."),
    ("B0_32Bound", "STRICTNESS", "A B0_32 length prefix above 32 (spec §3.1)."),
    ("OptionPrefix", "STRICTNESS", "An OPTION[T] prefix other than 0x00 or 0x01 (OPTION = SEQ0_1, spec §3.1)."),
    ("CountPastEnd", "MALFORMED", "A length or element count larger than the bytes present (a decoder must not allocate from it)."),
    ("UserIdentityTlv", "FUNCTIONALITY", "Extension 0x0002's user_identity TLV (type 0x0002/0x01, at most 32 bytes, UTF-8) on SubmitSharesExtended."),
    ("TlvTooLong", "STRICTNESS", "A known TLV longer than its extension allows: §3.4.3 says the recipient MUST reject the message."),
    ("UnknownTlv", "FUNCTIONALITY", "A well-formed TLV of an extension the receiver does not know or did not negotiate: ignored (§3.4.3, ext 0x0002 §1.3), the message is valid."),
    ("TlvOrder", "AMBIGUOUS", "TLVs not ordered by extension_type. §3.4.3 says they MUST be ordered; ext 0x0002 §1.3 says the order is not relevant (CATALOG H.6)."),
    ("TlvEndiannessErratum", "SPEC_ERRATUM", "The spec prints TLV Type and Length big-endian (`00 02 01 00 0A ...`); they are U16 and §3.1 makes every U16 little-endian (CATALOG H.3)."),
    ("MalformedTlv", "MALFORMED", "A TLV whose length runs past the payload, or fewer than 5 bytes after a TLV."),
    ("NonUtf8Tlv", "AMBIGUOUS", "A user_identity TLV that is not UTF-8: ext 0x0002 says the value is UTF-8 but sets no rule for receivers."),
    ("FrameHeader", "BASIC", "The 6-byte plain frame header (§3.2)."),
    ("U24Max", "EDGE_CASE", "A U24 at 2^24 - 1, the largest msg_length and B0_16M length."),
    // Noise, certificates, keys
    ("FixedKeys", "BASIC", "A handshake run from fixed secrets and fixed ElligatorSwift aux bytes, with every intermediate h, ck and k."),
    ("ClockSkew", "AMBIGUOUS", "`now` is outside [valid_from, not_valid_after] by at most 10 s. The spec gives no skew rule (CATALOG H.11); sv2-codec and the reference implementation allow 10 s, so they accept."),
    ("ValidityWindowEdge", "EDGE_CASE", "`now` exactly at valid_from or not_valid_after (the window is inclusive)."),
    ("Expired", "FUNCTIONALITY", "now > not_valid_after + skew."),
    ("NotYetValid", "FUNCTIONALITY", "now + skew < valid_from."),
    ("BadSignature", "FUNCTIONALITY", "The certificate's signature does not verify (a bit flipped, or over other fields)."),
    ("WrongAuthority", "FUNCTIONALITY", "The certificate is validly signed, but by another authority key than the initiator's."),
    ("CertificateVersion", "AMBIGUOUS", "A certificate version other than 0. The spec defines no value (CATALOG H.11); sv2-codec accepts any, the reference implementation refuses all but 0."),
    ("TamperedAct2", "MALFORMED", "Act 2 changed in transit: a MAC fails, the session MUST be terminated (§4.5)."),
    ("WrongLength", "MALFORMED", "A handshake message of the wrong size (act 1 is 64 bytes, act 2 234; the spec's '170' is an erratum, CATALOG H.1)."),
    ("SpecVector", "BASIC", "The spec's own test vector (§4.7.1, CATALOG §G.1)."),
    ("BadChecksum", "MALFORMED", "A base58check string whose checksum does not match."),
    ("BadCharacter", "MALFORMED", "A character outside Bitcoin's base58 alphabet (0, O, I, l)."),
    ("BadVersion", "MALFORMED", "An authority key whose version prefix is not [0x01, 0x00]."),
    ("BadLength", "MALFORMED", "A base58check payload of the wrong length."),
    ("NotOnCurve", "MALFORMED", "32 bytes that are not the x coordinate of a secp256k1 point."),
    ("InvalidSecret", "MALFORMED", "A secret key that is zero or not below the curve order."),
    ("Url", "FUNCTIONALITY", "A stratum2+tcp://host:port/<authority key> URL (§4.7)."),
    // Encrypted framing
    ("ChunkBoundary", "EDGE_CASE", "A payload length at a chunk boundary: 65519 bytes fill one 65535-byte block (§4.6, CATALOG B.2)."),
    ("EmptyPayload", "EDGE_CASE", "An empty payload: the 22-byte encrypted header and no block at all, not even a MAC."),
    ("MaxPayload", "EDGE_CASE", "A payload of 2^24 - 1 bytes, the largest msg_length."),
    ("NonceStart", "EDGE_CASE", "The direction's nonce counter does not start at 0 (a later frame of the session); nonce = 4 zero bytes || U64 LE counter."),
    ("SessionFrame", "BASIC", "A real message encrypted with a traffic key of a handshake vector (noise_handshake.json)."),
    ("TamperedCiphertext", "MALFORMED", "One byte of the encrypted frame flipped: the MAC of that header or block fails and the session MUST be terminated (§4.5)."),
    ("NonceExhausted", "EDGE_CASE", "The frame would use nonce 2^64 - 1, which Noise reserves (Noise §5.1); the spec defines no rekey, the session must end."),
];

pub fn lookup(name: &str) -> Option<(&'static str, &'static str)> {
    FLAGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, bug, desc)| (*bug, *desc))
}
