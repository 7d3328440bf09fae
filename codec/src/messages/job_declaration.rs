//! Job Declaration protocol messages (spec §6.4, CATALOG §D.3), SetupConnection.protocol = 1.
//! None of them is a channel message.

use crate::types::{Seq0_64K, Str0_255, B0_16M, B0_255, B0_32, B0_64K, U256};

message! {
    /// Note the order: the string comes before request_id.
    AllocateMiningJobToken['a] = { spec: "AllocateMiningJobToken", protocol: JobDeclaration, extension_type: 0x0000, msg_type: 0x50, channel_msg: false }
    {
        user_identifier: Str0_255<'a>,
        request_id: u32,
    }
}

message! {
    AllocateMiningJobTokenSuccess['a] = { spec: "AllocateMiningJobToken.Success", protocol: JobDeclaration, extension_type: 0x0000, msg_type: 0x51, channel_msg: false }
    {
        request_id: u32,
        mining_job_token: B0_255<'a>,
        /// A CompactSize-prefixed array of outputs; the first is the pool's, with amount 0.
        coinbase_tx_outputs: B0_64K<'a>,
    }
}

message! {
    ProvideMissingTransactions[] = { spec: "ProvideMissingTransactions", protocol: JobDeclaration, extension_type: 0x0000, msg_type: 0x55, channel_msg: false }
    {
        request_id: u32,
        /// 0-indexed positions in the declared wtxid_list (coinbase excluded).
        unknown_tx_position_list: Seq0_64K<u16>,
    }
}

message! {
    ProvideMissingTransactionsSuccess['a] = { spec: "ProvideMissingTransactions.Success", protocol: JobDeclaration, extension_type: 0x0000, msg_type: 0x56, channel_msg: false }
    {
        request_id: u32,
        transaction_list: Seq0_64K<B0_16M<'a>>,
    }
}

message! {
    DeclareMiningJob['a] = { spec: "DeclareMiningJob", protocol: JobDeclaration, extension_type: 0x0000, msg_type: 0x57, channel_msg: false }
    {
        request_id: u32,
        mining_job_token: B0_255<'a>,
        version: u32,
        coinbase_tx_prefix: B0_64K<'a>,
        coinbase_tx_suffix: B0_64K<'a>,
        wtxid_list: Seq0_64K<U256>,
        excess_data: B0_64K<'a>,
    }
}

message! {
    DeclareMiningJobSuccess['a] = { spec: "DeclareMiningJob.Success", protocol: JobDeclaration, extension_type: 0x0000, msg_type: 0x58, channel_msg: false }
    {
        request_id: u32,
        new_mining_job_token: B0_255<'a>,
    }
}

message! {
    DeclareMiningJobError['a] = { spec: "DeclareMiningJob.Error", protocol: JobDeclaration, extension_type: 0x0000, msg_type: 0x59, channel_msg: false }
    {
        request_id: u32,
        error_code: Str0_255<'a>,
        error_details: B0_64K<'a>,
    }
}

message! {
    PushSolution['a] = { spec: "PushSolution", protocol: JobDeclaration, extension_type: 0x0000, msg_type: 0x60, channel_msg: false }
    {
        /// The full extranonce.
        extranonce: B0_32<'a>,
        prev_hash: U256,
        nonce: u32,
        ntime: u32,
        nbits: u32,
        version: u32,
    }
}
