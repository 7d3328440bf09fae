//! Extension 0x0001, Extensions Negotiation (CATALOG §D.5). Its msg_types 0x00-0x02 collide with
//! SetupConnection's: the extension_type tells them apart.

use crate::types::Seq0_64K;

message! {
    RequestExtensions[] = { spec: "RequestExtensions", protocol: ExtensionsNegotiation, extension_type: 0x0001, msg_type: 0x00, channel_msg: false }
    {
        request_id: u16,
        requested_extensions: Seq0_64K<u16>,
    }
}

message! {
    RequestExtensionsSuccess[] = { spec: "RequestExtensions.Success", protocol: ExtensionsNegotiation, extension_type: 0x0001, msg_type: 0x01, channel_msg: false }
    {
        request_id: u16,
        supported_extensions: Seq0_64K<u16>,
    }
}

message! {
    /// The spec's prose calls the second list `requested_extensions`; the table says `required_extensions`
    /// (CATALOG errata H.5).
    RequestExtensionsError[] = { spec: "RequestExtensions.Error", protocol: ExtensionsNegotiation, extension_type: 0x0001, msg_type: 0x02, channel_msg: false }
    {
        request_id: u16,
        unsupported_extensions: Seq0_64K<u16>,
        required_extensions: Seq0_64K<u16>,
    }
}
