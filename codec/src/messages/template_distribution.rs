//! Template Distribution protocol messages (spec §7, CATALOG §D.4), SetupConnection.protocol = 2.
//! None of them is a channel message.

use crate::types::{Seq0_255, Seq0_64K, Str0_255, B0_16M, B0_255, B0_64K, U256};

message! {
    CoinbaseOutputConstraints[] = { spec: "CoinbaseOutputConstraints", protocol: TemplateDistribution, extension_type: 0x0000, msg_type: 0x70, channel_msg: false }
    {
        coinbase_output_max_additional_size: u32,
        coinbase_output_max_additional_sigops: u16,
    }
}

message! {
    NewTemplate['a] = { spec: "NewTemplate", protocol: TemplateDistribution, extension_type: 0x0000, msg_type: 0x71, channel_msg: false }
    {
        template_id: u64,
        future_template: bool,
        version: u32,
        coinbase_tx_version: u32,
        coinbase_prefix: B0_255<'a>,
        coinbase_tx_input_sequence: u32,
        coinbase_tx_value_remaining: u64,
        coinbase_tx_outputs_count: u32,
        /// Concatenated outputs, NOT CompactSize-prefixed.
        coinbase_tx_outputs: B0_64K<'a>,
        coinbase_tx_locktime: u32,
        merkle_path: Seq0_255<U256>,
    }
}

message! {
    /// Template Distribution's SetNewPrevHash (0x72); JSON name "SetNewPrevHash" with protocol
    /// "TemplateDistribution".
    SetNewPrevHashTdp[] = { spec: "SetNewPrevHash", protocol: TemplateDistribution, extension_type: 0x0000, msg_type: 0x72, channel_msg: false }
    {
        template_id: u64,
        prev_hash: U256,
        header_timestamp: u32,
        #[serde(rename = "nBits")]
        n_bits: u32,
        target: U256,
    }
}

message! {
    RequestTransactionData[] = { spec: "RequestTransactionData", protocol: TemplateDistribution, extension_type: 0x0000, msg_type: 0x73, channel_msg: false }
    {
        template_id: u64,
    }
}

message! {
    RequestTransactionDataSuccess['a] = { spec: "RequestTransactionData.Success", protocol: TemplateDistribution, extension_type: 0x0000, msg_type: 0x74, channel_msg: false }
    {
        template_id: u64,
        excess_data: B0_64K<'a>,
        transaction_list: Seq0_64K<B0_16M<'a>>,
    }
}

message! {
    RequestTransactionDataError['a] = { spec: "RequestTransactionData.Error", protocol: TemplateDistribution, extension_type: 0x0000, msg_type: 0x75, channel_msg: false }
    {
        template_id: u64,
        error_code: Str0_255<'a>,
    }
}

message! {
    SubmitSolution['a] = { spec: "SubmitSolution", protocol: TemplateDistribution, extension_type: 0x0000, msg_type: 0x76, channel_msg: false }
    {
        template_id: u64,
        version: u32,
        header_timestamp: u32,
        header_nonce: u32,
        /// The full coinbase transaction, witness included.
        coinbase_tx: B0_64K<'a>,
    }
}
