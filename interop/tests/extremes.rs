//! Frames SRI produces for every message type, built with SRI's own types at minimal (all zero and
//! empty), typical and maximal extents, decode in ours to equal values, with no TLVs and no warnings,
//! and re-encode in ours to the same bytes.

use std::collections::HashSet;

use sv2_codec::messages::MESSAGE_TYPES;
use sv2_codec::{decode_frame, to_frame_bytes, EncodeError, Frame, FrameDecoder, Message};
use sv2_interop::samples::{Extent, SampleData, MAX_PAYLOAD};
use sv2_interop::*;

/// Checks every sample of one extent; returns the payload length of each, by message name.
fn check_extent(extent: Extent) -> Vec<(&'static str, usize)> {
    let data = SampleData::new(extent);
    let samples = data.messages();
    assert_eq!(samples.len(), 44);
    let mut ids = HashSet::new();
    let mut sizes = Vec::new();
    for any in samples {
        let expected = from_sri(&any);
        let name = expected.name();
        let bytes = sri_encode_any(any).unwrap_or_else(|e| panic!("{extent:?} {name}: {e}"));
        let (frame, used) =
            Frame::parse(&bytes).unwrap_or_else(|e| panic!("{extent:?} {name}: {e}"));
        assert_eq!(used, bytes.len(), "{extent:?} {name}");
        let decoded = decode_frame(&frame)
            .unwrap_or_else(|e| panic!("{extent:?} {name}: ours refused SRI's frame: {e}"));
        assert!(
            same_message(&decoded.message, &expected),
            "{extent:?} {name}: ours decoded a different value"
        );
        assert!(decoded.tlvs.is_empty(), "{extent:?} {name}: TLVs");
        assert!(decoded.warnings.is_empty(), "{extent:?} {name}: warnings");
        assert!(
            to_frame_bytes(&decoded.message, &[]).unwrap() == bytes,
            "{extent:?} {name}: ours re-encodes differently"
        );
        assert!(ids.insert(decoded.message.id()), "{extent:?} {name} twice");
        sizes.push((name, frame.payload.len()));
    }
    for info in MESSAGE_TYPES {
        assert!(
            ids.contains(&(info.extension_type, info.msg_type)),
            "{extent:?}: no sample of {}",
            info.name
        );
    }
    sizes
}

#[test]
fn minimal_sri_frames_decode_equal_in_ours() {
    let sizes = check_extent(Extent::Min);
    // Spot checks that the samples really are minimal: a SubmitSharesStandard is 24 bytes of zeros,
    // a SetupConnection is 11 bytes of integers plus five empty strings.
    assert!(sizes.contains(&("SubmitSharesStandard", 24)));
    assert!(sizes.contains(&("SetupConnection", 16)));
    assert!(sizes.contains(&("NewExtendedMiningJob", 19)));
}

#[test]
fn typical_sri_frames_decode_equal_in_ours() {
    check_extent(Extent::Typical);
}

#[test]
fn maximal_sri_frames_decode_equal_in_ours() {
    let sizes = check_extent(Extent::Max);
    let size = |name: &str| {
        sizes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
            .unwrap()
    };
    // The two transaction lists fill the U24 msg_length exactly.
    assert_eq!(size("ProvideMissingTransactions.Success"), MAX_PAYLOAD);
    assert_eq!(size("RequestTransactionData.Success"), MAX_PAYLOAD);
    // 255-element merkle paths, 65535-element SEQ0_64K, 65535-byte B0_64K.
    assert_eq!(
        size("NewExtendedMiningJob"),
        4 + 4 + 5 + 4 + 1 + (1 + 255 * 32) + 2 * 65537
    );
    assert_eq!(size("SetGroupChannel"), 4 + 2 + 65535 * 4);
    assert_eq!(
        size("DeclareMiningJob"),
        4 + 256 + 4 + 3 * 65537 + (2 + 65535 * 32)
    );
    assert_eq!(size("SetupConnection"), 11 + 5 * 256);
}

/// SEQ0_64K[B0_16M] at its maximum count (65535 empty transactions), and one byte past the U24
/// frame limit, which both encoders refuse.
#[test]
fn transaction_lists_at_maximum_count_and_past_the_frame_limit() {
    use binary_sv2::{Seq064K, B016M, B064K};
    use parsers_sv2::{AnyMessage, JobDeclaration, TemplateDistribution};

    let empty: Vec<u8> = vec![];
    let many = || Seq064K::new(vec![B016M::try_from(&empty[..]).unwrap(); 65535]).unwrap();
    for any in [
        AnyMessage::JobDeclaration(JobDeclaration::ProvideMissingTransactionsSuccess(
            job_declaration_sv2::ProvideMissingTransactionsSuccess {
                request_id: 1,
                transaction_list: many(),
            },
        )),
        AnyMessage::TemplateDistribution(TemplateDistribution::RequestTransactionDataSuccess(
            template_distribution_sv2::RequestTransactionDataSuccess {
                template_id: 1,
                excess_data: B064K::try_from(&empty[..]).unwrap(),
                transaction_list: many(),
            },
        )),
    ] {
        let expected = from_sri(&any);
        let bytes = sri_encode_any(any).unwrap();
        let (frame, _) = Frame::parse(&bytes).unwrap();
        let decoded = decode_frame(&frame).unwrap();
        assert!(same_message(&decoded.message, &expected));
        assert_eq!(to_frame_bytes(&decoded.message, &[]).unwrap(), bytes);
        // The incremental decoder cuts the same frame out of a stream split in odd chunks.
        let mut dec = FrameDecoder::default();
        let mut frames = Vec::new();
        for chunk in bytes.chunks(65_521) {
            frames.extend(dec.push_all(chunk).unwrap());
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].payload, frame.payload);
    }

    // One byte past the limit: ProvideMissingTransactions.Success with a 2^24 - 1 - 8 byte transaction.
    let tx = vec![0u8; MAX_PAYLOAD - 8];
    let any = AnyMessage::JobDeclaration(JobDeclaration::ProvideMissingTransactionsSuccess(
        job_declaration_sv2::ProvideMissingTransactionsSuccess {
            request_id: 1,
            transaction_list: Seq064K::new(vec![B016M::try_from(&tx[..]).unwrap()]).unwrap(),
        },
    ));
    let ours: Message<'_> = from_sri(&any);
    let err = sri_encode_any(any).unwrap_err();
    assert!(
        matches!(&err, SriError::Encode(e) if e.contains("PayloadTooLong")),
        "{err}"
    );
    assert_eq!(
        to_frame_bytes(&ours, &[]).unwrap_err(),
        EncodeError::PayloadTooLarge(MAX_PAYLOAD + 1)
    );
}
