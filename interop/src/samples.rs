//! SRI-native sample messages, one of each of the 44 types, built with SRI's own types (not converted
//! from ours), at three extents: all zero/empty, typical, and maximal.

use binary_sv2::{Seq0255, Seq064K, Str0255, Sv2Option, B016M, B0255, B032, B064K, U256};
use common_messages_sv2 as cm;
use extensions_sv2 as ex;
use job_declaration_sv2 as jd;
use mining_sv2 as mi;
use parsers_sv2::{
    AnyMessage, CommonMessages, Extensions, ExtensionsNegotiation, JobDeclaration, Mining,
    TemplateDistribution,
};
use template_distribution_sv2 as td;

/// The largest frame payload (U24 msg_length).
pub const MAX_PAYLOAD: usize = (1 << 24) - 1;

/// How big the sample values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// Every integer 0, every byte field and sequence empty, OPTION None, BOOL false, F32 0.0,
    /// protocol 0.
    Min,
    /// Small realistic values.
    Typical,
    /// Every integer at its maximum, F32 with all bits set, U256 all 0xff, every byte field and
    /// sequence at its maximum length (B0_32 32, B0_255/STR0_255 255, B0_64K 65535, SEQ0_255 255,
    /// SEQ0_64K 65535), and each SEQ0_64K[B0_16M] holding one transaction as large as the U24 frame
    /// length allows, so that those two frames are exactly 2^24 - 1 payload bytes.
    Max,
}

/// The bytes the samples borrow.
#[derive(Debug, Clone)]
pub struct SampleData {
    pub extent: Extent,
    u16v: u16,
    u32v: u32,
    u64v: u64,
    f32v: f32,
    flag: bool,
    opt: Option<u32>,
    protocol: cm::Protocol,
    hash: [u8; 32],
    text: Vec<u8>,
    b32: Vec<u8>,
    b255: Vec<u8>,
    b64k: Vec<u8>,
    path: Vec<[u8; 32]>,
    wtxids: Vec<[u8; 32]>,
    u16s: Vec<u16>,
    u32s: Vec<u32>,
    /// ProvideMissingTransactions.Success.transaction_list
    pmts_txs: Vec<Vec<u8>>,
    /// RequestTransactionData.Success.transaction_list
    rtds_txs: Vec<Vec<u8>>,
}

/// Payload bytes of ProvideMissingTransactions.Success around its one transaction:
/// request_id 4, count 2, tx length prefix 3.
const PMTS_OVERHEAD: usize = 4 + 2 + 3;
/// RequestTransactionData.Success around its one transaction, with a full excess_data:
/// template_id 8, excess_data 2 + 65535, count 2, tx length prefix 3.
const RTDS_OVERHEAD: usize = 8 + 2 + 65535 + 2 + 3;

impl SampleData {
    pub fn new(extent: Extent) -> Self {
        match extent {
            Extent::Min => SampleData {
                extent,
                u16v: 0,
                u32v: 0,
                u64v: 0,
                f32v: 0.0,
                flag: false,
                opt: None,
                protocol: cm::Protocol::MiningProtocol,
                hash: [0; 32],
                text: vec![],
                b32: vec![],
                b255: vec![],
                b64k: vec![],
                path: vec![],
                wtxids: vec![],
                u16s: vec![],
                u32s: vec![],
                pmts_txs: vec![],
                rtds_txs: vec![],
            },
            Extent::Typical => SampleData {
                extent,
                u16v: 3333,
                u32v: 0x2000_0000,
                u64v: 5_000_000_000,
                f32v: 1.5e12,
                flag: true,
                opt: Some(1_700_000_000),
                protocol: cm::Protocol::JobDeclarationProtocol,
                hash: core::array::from_fn(|i| i as u8),
                text: b"pool.example.com".to_vec(),
                b32: vec![0xee; 8],
                b255: vec![3, 1, 2, 3],
                b64k: (0..90u8).collect(),
                path: vec![[0x11; 32], [0x22; 32], [0x33; 32]],
                wtxids: vec![[0x44; 32], [0x55; 32]],
                u16s: vec![2, 0x4001],
                u32s: vec![1, 2, 3],
                pmts_txs: vec![vec![1, 2, 3], vec![4; 10]],
                rtds_txs: vec![vec![5; 60]],
            },
            Extent::Max => SampleData {
                extent,
                u16v: u16::MAX,
                u32v: u32::MAX,
                u64v: u64::MAX,
                f32v: f32::from_bits(u32::MAX),
                flag: true,
                opt: Some(u32::MAX),
                protocol: cm::Protocol::TemplateDistributionProtocol,
                hash: [0xff; 32],
                text: vec![b'z'; 255],
                b32: vec![0xff; 32],
                b255: vec![0xff; 255],
                b64k: vec![0xff; 65535],
                path: vec![[0xff; 32]; 255],
                wtxids: vec![[0xff; 32]; 65535],
                u16s: vec![u16::MAX; 65535],
                u32s: vec![u32::MAX; 65535],
                pmts_txs: vec![vec![0xff; MAX_PAYLOAD - PMTS_OVERHEAD]],
                rtds_txs: vec![vec![0xff; MAX_PAYLOAD - RTDS_OVERHEAD]],
            },
        }
    }

    fn s(&self) -> Str0255<'_> {
        Str0255::try_from(&self.text[..]).expect("text within STR0_255")
    }
    fn b32(&self) -> B032<'_> {
        B032::try_from(&self.b32[..]).expect("within B0_32")
    }
    fn b255(&self) -> B0255<'_> {
        B0255::try_from(&self.b255[..]).expect("within B0_255")
    }
    fn b64k(&self) -> B064K<'_> {
        B064K::try_from(&self.b64k[..]).expect("within B0_64K")
    }
    fn u256(&self) -> U256<'_> {
        U256::from(&self.hash)
    }
    fn path(&self) -> Seq0255<'_, U256<'_>> {
        Seq0255::new(self.path.iter().map(U256::from).collect()).expect("at most 255")
    }
    fn wtxids(&self) -> Seq064K<'_, U256<'_>> {
        Seq064K::new(self.wtxids.iter().map(U256::from).collect()).expect("at most 65535")
    }
    fn u16s(&self) -> Seq064K<'_, u16> {
        Seq064K::new(self.u16s.clone()).expect("at most 65535")
    }
    fn u32s(&self) -> Seq064K<'_, u32> {
        Seq064K::new(self.u32s.clone()).expect("at most 65535")
    }
    fn txs<'a>(txs: &'a [Vec<u8>]) -> Seq064K<'a, B016M<'a>> {
        Seq064K::new(
            txs.iter()
                .map(|t| B016M::try_from(&t[..]).expect("within B0_16M"))
                .collect(),
        )
        .expect("at most 65535")
    }
    fn opt(&self) -> Sv2Option<'_, u32> {
        Sv2Option::new(self.opt)
    }

    /// One message of each of the 44 types, in catalogue order.
    pub fn messages(&self) -> Vec<AnyMessage<'_>> {
        use AnyMessage as A;
        let (u16v, u32v, u64v) = (self.u16v, self.u32v, self.u64v);
        vec![
            // ---- Common
            A::Common(CommonMessages::SetupConnection(cm::SetupConnection {
                protocol: self.protocol,
                min_version: u16v,
                max_version: u16v,
                flags: u32v,
                endpoint_host: self.s(),
                endpoint_port: u16v,
                vendor: self.s(),
                hardware_version: self.s(),
                firmware: self.s(),
                device_id: self.s(),
            })),
            A::Common(CommonMessages::SetupConnectionSuccess(
                cm::SetupConnectionSuccess {
                    used_version: u16v,
                    flags: u32v,
                },
            )),
            A::Common(CommonMessages::SetupConnectionError(
                cm::SetupConnectionError {
                    flags: u32v,
                    error_code: self.s(),
                },
            )),
            A::Common(CommonMessages::ChannelEndpointChanged(
                cm::ChannelEndpointChanged { channel_id: u32v },
            )),
            A::Common(CommonMessages::Reconnect(cm::Reconnect {
                new_host: self.s(),
                new_port: u16v,
            })),
            // ---- Mining
            A::Mining(Mining::OpenStandardMiningChannel(
                mi::OpenStandardMiningChannel {
                    request_id: u32v,
                    user_identity: self.s(),
                    nominal_hash_rate: self.f32v,
                    max_target: self.u256(),
                },
            )),
            A::Mining(Mining::OpenStandardMiningChannelSuccess(
                mi::OpenStandardMiningChannelSuccess {
                    request_id: u32v,
                    channel_id: u32v,
                    target: self.u256(),
                    extranonce_prefix: self.b32(),
                    group_channel_id: u32v,
                },
            )),
            A::Mining(Mining::OpenMiningChannelError(mi::OpenMiningChannelError {
                request_id: u32v,
                error_code: self.s(),
            })),
            A::Mining(Mining::OpenExtendedMiningChannel(
                mi::OpenExtendedMiningChannel {
                    request_id: u32v,
                    user_identity: self.s(),
                    nominal_hash_rate: self.f32v,
                    max_target: self.u256(),
                    min_extranonce_size: u16v,
                },
            )),
            A::Mining(Mining::OpenExtendedMiningChannelSuccess(
                mi::OpenExtendedMiningChannelSuccess {
                    request_id: u32v,
                    channel_id: u32v,
                    target: self.u256(),
                    extranonce_size: u16v,
                    extranonce_prefix: self.b32(),
                    group_channel_id: u32v,
                },
            )),
            A::Mining(Mining::NewMiningJob(mi::NewMiningJob {
                channel_id: u32v,
                job_id: u32v,
                min_ntime: self.opt(),
                version: u32v,
                merkle_root: self.u256(),
            })),
            A::Mining(Mining::UpdateChannel(mi::UpdateChannel {
                channel_id: u32v,
                nominal_hash_rate: self.f32v,
                maximum_target: self.u256(),
            })),
            A::Mining(Mining::UpdateChannelError(mi::UpdateChannelError {
                channel_id: u32v,
                error_code: self.s(),
            })),
            A::Mining(Mining::CloseChannel(mi::CloseChannel {
                channel_id: u32v,
                reason_code: self.s(),
            })),
            A::Mining(Mining::SetExtranoncePrefix(mi::SetExtranoncePrefix {
                channel_id: u32v,
                extranonce_prefix: self.b32(),
            })),
            A::Mining(Mining::SubmitSharesStandard(mi::SubmitSharesStandard {
                channel_id: u32v,
                sequence_number: u32v,
                job_id: u32v,
                nonce: u32v,
                ntime: u32v,
                version: u32v,
            })),
            A::Mining(Mining::SubmitSharesExtended(mi::SubmitSharesExtended {
                channel_id: u32v,
                sequence_number: u32v,
                job_id: u32v,
                nonce: u32v,
                ntime: u32v,
                version: u32v,
                extranonce: self.b32(),
            })),
            A::Mining(Mining::SubmitSharesSuccess(mi::SubmitSharesSuccess {
                channel_id: u32v,
                last_sequence_number: u32v,
                new_submits_accepted_count: u32v,
                new_shares_sum: u64v,
            })),
            A::Mining(Mining::SubmitSharesError(mi::SubmitSharesError {
                channel_id: u32v,
                sequence_number: u32v,
                error_code: self.s(),
            })),
            A::Mining(Mining::NewExtendedMiningJob(mi::NewExtendedMiningJob {
                channel_id: u32v,
                job_id: u32v,
                min_ntime: self.opt(),
                version: u32v,
                version_rolling_allowed: self.flag,
                merkle_path: self.path(),
                coinbase_tx_prefix: self.b64k(),
                coinbase_tx_suffix: self.b64k(),
            })),
            A::Mining(Mining::SetNewPrevHash(mi::SetNewPrevHash {
                channel_id: u32v,
                job_id: u32v,
                prev_hash: self.u256(),
                min_ntime: u32v,
                nbits: u32v,
            })),
            A::Mining(Mining::SetTarget(mi::SetTarget {
                channel_id: u32v,
                maximum_target: self.u256(),
            })),
            A::Mining(Mining::SetCustomMiningJob(mi::SetCustomMiningJob {
                channel_id: u32v,
                request_id: u32v,
                token: self.b255(),
                version: u32v,
                prev_hash: self.u256(),
                min_ntime: u32v,
                nbits: u32v,
                coinbase_tx_version: u32v,
                coinbase_prefix: self.b255(),
                coinbase_tx_input_n_sequence: u32v,
                coinbase_tx_outputs: self.b64k(),
                coinbase_tx_locktime: u32v,
                merkle_path: self.path(),
            })),
            A::Mining(Mining::SetCustomMiningJobSuccess(
                mi::SetCustomMiningJobSuccess {
                    channel_id: u32v,
                    request_id: u32v,
                    job_id: u32v,
                },
            )),
            A::Mining(Mining::SetCustomMiningJobError(
                mi::SetCustomMiningJobError {
                    channel_id: u32v,
                    request_id: u32v,
                    error_code: self.s(),
                },
            )),
            A::Mining(Mining::SetGroupChannel(mi::SetGroupChannel {
                group_channel_id: u32v,
                channel_ids: self.u32s(),
            })),
            // ---- Job Declaration
            A::JobDeclaration(JobDeclaration::AllocateMiningJobToken(
                jd::AllocateMiningJobToken {
                    user_identifier: self.s(),
                    request_id: u32v,
                },
            )),
            A::JobDeclaration(JobDeclaration::AllocateMiningJobTokenSuccess(
                jd::AllocateMiningJobTokenSuccess {
                    request_id: u32v,
                    mining_job_token: self.b255(),
                    coinbase_outputs: self.b64k(),
                },
            )),
            A::JobDeclaration(JobDeclaration::ProvideMissingTransactions(
                jd::ProvideMissingTransactions {
                    request_id: u32v,
                    unknown_tx_position_list: self.u16s(),
                },
            )),
            A::JobDeclaration(JobDeclaration::ProvideMissingTransactionsSuccess(
                jd::ProvideMissingTransactionsSuccess {
                    request_id: u32v,
                    transaction_list: Self::txs(&self.pmts_txs),
                },
            )),
            A::JobDeclaration(JobDeclaration::DeclareMiningJob(jd::DeclareMiningJob {
                request_id: u32v,
                mining_job_token: self.b255(),
                version: u32v,
                coinbase_tx_prefix: self.b64k(),
                coinbase_tx_suffix: self.b64k(),
                wtxid_list: self.wtxids(),
                excess_data: self.b64k(),
            })),
            A::JobDeclaration(JobDeclaration::DeclareMiningJobSuccess(
                jd::DeclareMiningJobSuccess {
                    request_id: u32v,
                    new_mining_job_token: self.b255(),
                },
            )),
            A::JobDeclaration(JobDeclaration::DeclareMiningJobError(
                jd::DeclareMiningJobError {
                    request_id: u32v,
                    error_code: self.s(),
                    error_details: self.b64k(),
                },
            )),
            A::JobDeclaration(JobDeclaration::PushSolution(jd::PushSolution {
                extranonce: self.b32(),
                prev_hash: self.u256(),
                nonce: u32v,
                ntime: u32v,
                nbits: u32v,
                version: u32v,
            })),
            // ---- Template Distribution
            A::TemplateDistribution(TemplateDistribution::CoinbaseOutputConstraints(
                td::CoinbaseOutputConstraints {
                    coinbase_output_max_additional_size: u32v,
                    coinbase_output_max_additional_sigops: u16v,
                },
            )),
            A::TemplateDistribution(TemplateDistribution::NewTemplate(td::NewTemplate {
                template_id: u64v,
                future_template: self.flag,
                version: u32v,
                coinbase_tx_version: u32v,
                coinbase_prefix: self.b255(),
                coinbase_tx_input_sequence: u32v,
                coinbase_tx_value_remaining: u64v,
                coinbase_tx_outputs_count: u32v,
                coinbase_tx_outputs: self.b64k(),
                coinbase_tx_locktime: u32v,
                merkle_path: self.path(),
            })),
            A::TemplateDistribution(TemplateDistribution::SetNewPrevHash(td::SetNewPrevHash {
                template_id: u64v,
                prev_hash: self.u256(),
                header_timestamp: u32v,
                n_bits: u32v,
                target: self.u256(),
            })),
            A::TemplateDistribution(TemplateDistribution::RequestTransactionData(
                td::RequestTransactionData { template_id: u64v },
            )),
            A::TemplateDistribution(TemplateDistribution::RequestTransactionDataSuccess(
                td::RequestTransactionDataSuccess {
                    template_id: u64v,
                    excess_data: self.b64k(),
                    transaction_list: Self::txs(&self.rtds_txs),
                },
            )),
            A::TemplateDistribution(TemplateDistribution::RequestTransactionDataError(
                td::RequestTransactionDataError {
                    template_id: u64v,
                    error_code: self.s(),
                },
            )),
            A::TemplateDistribution(TemplateDistribution::SubmitSolution(td::SubmitSolution {
                template_id: u64v,
                version: u32v,
                header_timestamp: u32v,
                header_nonce: u32v,
                coinbase_tx: self.b64k(),
            })),
            // ---- Extension 0x0001 (request_id is a U16 there)
            A::Extensions(Extensions::ExtensionsNegotiation(
                ExtensionsNegotiation::RequestExtensions(ex::RequestExtensions {
                    request_id: u16v,
                    requested_extensions: self.u16s(),
                }),
            )),
            A::Extensions(Extensions::ExtensionsNegotiation(
                ExtensionsNegotiation::RequestExtensionsSuccess(ex::RequestExtensionsSuccess {
                    request_id: u16v,
                    supported_extensions: self.u16s(),
                }),
            )),
            A::Extensions(Extensions::ExtensionsNegotiation(
                ExtensionsNegotiation::RequestExtensionsError(ex::RequestExtensionsError {
                    request_id: u16v,
                    unsupported_extensions: self.u16s(),
                    required_extensions: self.u16s(),
                }),
            )),
        ]
    }
}
