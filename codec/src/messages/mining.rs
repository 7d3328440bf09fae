//! Mining protocol messages (spec §5.3, CATALOG §D.2), SetupConnection.protocol = 0.

use crate::types::{f32_json, Seq0_255, Seq0_64K, Str0_255, B0_255, B0_32, B0_64K, U256};

message! {
    OpenStandardMiningChannel['a] = { spec: "OpenStandardMiningChannel", protocol: Mining, extension_type: 0x0000, msg_type: 0x10, channel_msg: false }
    {
        request_id: u32,
        user_identity: Str0_255<'a>,
        #[serde(with = "f32_json")]
        nominal_hash_rate: f32,
        max_target: U256,
    }
}

message! {
    OpenStandardMiningChannelSuccess['a] = { spec: "OpenStandardMiningChannel.Success", protocol: Mining, extension_type: 0x0000, msg_type: 0x11, channel_msg: false }
    {
        request_id: u32,
        channel_id: u32,
        target: U256,
        extranonce_prefix: B0_32<'a>,
        group_channel_id: u32,
    }
}

message! {
    OpenMiningChannelError['a] = { spec: "OpenMiningChannel.Error", protocol: Mining, extension_type: 0x0000, msg_type: 0x12, channel_msg: false }
    {
        request_id: u32,
        error_code: Str0_255<'a>,
    }
}

message! {
    OpenExtendedMiningChannel['a] = { spec: "OpenExtendedMiningChannel", protocol: Mining, extension_type: 0x0000, msg_type: 0x13, channel_msg: false }
    {
        request_id: u32,
        user_identity: Str0_255<'a>,
        #[serde(with = "f32_json")]
        nominal_hash_rate: f32,
        max_target: U256,
        min_extranonce_size: u16,
    }
}

message! {
    OpenExtendedMiningChannelSuccess['a] = { spec: "OpenExtendedMiningChannel.Success", protocol: Mining, extension_type: 0x0000, msg_type: 0x14, channel_msg: false }
    {
        request_id: u32,
        channel_id: u32,
        target: U256,
        extranonce_size: u16,
        extranonce_prefix: B0_32<'a>,
        group_channel_id: u32,
    }
}

message! {
    NewMiningJob[] = { spec: "NewMiningJob", protocol: Mining, extension_type: 0x0000, msg_type: 0x15, channel_msg: true }
    {
        channel_id: u32,
        job_id: u32,
        /// None: a future job; Some: the job is for the current prev hash, from this ntime on.
        min_ntime: Option<u32>,
        version: u32,
        merkle_root: U256,
    }
}

message! {
    UpdateChannel[] = { spec: "UpdateChannel", protocol: Mining, extension_type: 0x0000, msg_type: 0x16, channel_msg: true }
    {
        channel_id: u32,
        #[serde(with = "f32_json")]
        nominal_hash_rate: f32,
        maximum_target: U256,
    }
}

message! {
    UpdateChannelError['a] = { spec: "UpdateChannel.Error", protocol: Mining, extension_type: 0x0000, msg_type: 0x17, channel_msg: true }
    {
        channel_id: u32,
        error_code: Str0_255<'a>,
    }
}

message! {
    CloseChannel['a] = { spec: "CloseChannel", protocol: Mining, extension_type: 0x0000, msg_type: 0x18, channel_msg: true }
    {
        channel_id: u32,
        reason_code: Str0_255<'a>,
    }
}

message! {
    SetExtranoncePrefix['a] = { spec: "SetExtranoncePrefix", protocol: Mining, extension_type: 0x0000, msg_type: 0x19, channel_msg: true }
    {
        channel_id: u32,
        extranonce_prefix: B0_32<'a>,
    }
}

message! {
    SubmitSharesStandard[] = { spec: "SubmitSharesStandard", protocol: Mining, extension_type: 0x0000, msg_type: 0x1a, channel_msg: true }
    {
        channel_id: u32,
        sequence_number: u32,
        job_id: u32,
        nonce: u32,
        ntime: u32,
        version: u32,
    }
}

message! {
    /// May be followed by TLVs, e.g. extension 0x0002's `user_identity`.
    SubmitSharesExtended['a] = { spec: "SubmitSharesExtended", protocol: Mining, extension_type: 0x0000, msg_type: 0x1b, channel_msg: true }
    {
        channel_id: u32,
        sequence_number: u32,
        job_id: u32,
        nonce: u32,
        ntime: u32,
        version: u32,
        /// Its length must equal the channel's negotiated extranonce_size (a channel rule, not a codec one).
        extranonce: B0_32<'a>,
    }
}

message! {
    SubmitSharesSuccess[] = { spec: "SubmitShares.Success", protocol: Mining, extension_type: 0x0000, msg_type: 0x1c, channel_msg: true }
    {
        channel_id: u32,
        last_sequence_number: u32,
        new_submits_accepted_count: u32,
        new_shares_sum: u64,
    }
}

message! {
    SubmitSharesError['a] = { spec: "SubmitShares.Error", protocol: Mining, extension_type: 0x0000, msg_type: 0x1d, channel_msg: true }
    {
        channel_id: u32,
        sequence_number: u32,
        error_code: Str0_255<'a>,
    }
}

message! {
    NewExtendedMiningJob['a] = { spec: "NewExtendedMiningJob", protocol: Mining, extension_type: 0x0000, msg_type: 0x1f, channel_msg: true }
    {
        /// An extended or a group channel.
        channel_id: u32,
        job_id: u32,
        min_ntime: Option<u32>,
        version: u32,
        version_rolling_allowed: bool,
        merkle_path: Seq0_255<U256>,
        coinbase_tx_prefix: B0_64K<'a>,
        coinbase_tx_suffix: B0_64K<'a>,
    }
}

message! {
    /// Mining's SetNewPrevHash (0x20); Template Distribution has its own (0x72).
    SetNewPrevHash[] = { spec: "SetNewPrevHash", protocol: Mining, extension_type: 0x0000, msg_type: 0x20, channel_msg: true }
    {
        channel_id: u32,
        job_id: u32,
        prev_hash: U256,
        min_ntime: u32,
        nbits: u32,
    }
}

message! {
    SetTarget[] = { spec: "SetTarget", protocol: Mining, extension_type: 0x0000, msg_type: 0x21, channel_msg: true }
    {
        channel_id: u32,
        maximum_target: U256,
    }
}

message! {
    SetCustomMiningJob['a] = { spec: "SetCustomMiningJob", protocol: Mining, extension_type: 0x0000, msg_type: 0x22, channel_msg: true }
    {
        channel_id: u32,
        request_id: u32,
        mining_job_token: B0_255<'a>,
        version: u32,
        prev_hash: U256,
        min_ntime: u32,
        nbits: u32,
        coinbase_tx_version: u32,
        coinbase_prefix: B0_255<'a>,
        #[serde(rename = "coinbase_tx_input_nSequence")]
        coinbase_tx_input_n_sequence: u32,
        /// A CompactSize-prefixed array of outputs.
        coinbase_tx_outputs: B0_64K<'a>,
        coinbase_tx_locktime: u32,
        merkle_path: Seq0_255<U256>,
    }
}

message! {
    SetCustomMiningJobSuccess[] = { spec: "SetCustomMiningJob.Success", protocol: Mining, extension_type: 0x0000, msg_type: 0x23, channel_msg: true }
    {
        channel_id: u32,
        request_id: u32,
        job_id: u32,
    }
}

message! {
    SetCustomMiningJobError['a] = { spec: "SetCustomMiningJob.Error", protocol: Mining, extension_type: 0x0000, msg_type: 0x24, channel_msg: true }
    {
        channel_id: u32,
        request_id: u32,
        error_code: Str0_255<'a>,
    }
}

message! {
    SetGroupChannel[] = { spec: "SetGroupChannel", protocol: Mining, extension_type: 0x0000, msg_type: 0x25, channel_msg: false }
    {
        group_channel_id: u32,
        channel_ids: Seq0_64K<u32>,
    }
}
