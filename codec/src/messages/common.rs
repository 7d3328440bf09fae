//! Common messages (spec §3.6, CATALOG §D.1), used by every sub-protocol.

use crate::types::Str0_255;

message! {
    /// Opens a connection: protocol, version range, feature flags and who the client is.
    SetupConnection['a] = { spec: "SetupConnection", protocol: Common, extension_type: 0x0000, msg_type: 0x00, channel_msg: false }
    {
        /// 0 Mining, 1 Job Declaration, 2 Template Distribution.
        protocol: u8,
        min_version: u16,
        max_version: u16,
        flags: u32,
        endpoint_host: Str0_255<'a>,
        endpoint_port: u16,
        vendor: Str0_255<'a>,
        hardware_version: Str0_255<'a>,
        firmware: Str0_255<'a>,
        device_id: Str0_255<'a>,
    }
}

message! {
    SetupConnectionSuccess[] = { spec: "SetupConnection.Success", protocol: Common, extension_type: 0x0000, msg_type: 0x01, channel_msg: false }
    {
        used_version: u16,
        flags: u32,
    }
}

message! {
    SetupConnectionError['a] = { spec: "SetupConnection.Error", protocol: Common, extension_type: 0x0000, msg_type: 0x02, channel_msg: false }
    {
        /// Every unsupported flag; 0 when the error is not about flags.
        flags: u32,
        error_code: Str0_255<'a>,
    }
}

message! {
    ChannelEndpointChanged[] = { spec: "ChannelEndpointChanged", protocol: Common, extension_type: 0x0000, msg_type: 0x03, channel_msg: true }
    {
        channel_id: u32,
    }
}

message! {
    Reconnect['a] = { spec: "Reconnect", protocol: Common, extension_type: 0x0000, msg_type: 0x04, channel_msg: false }
    {
        /// Empty means the current host.
        new_host: Str0_255<'a>,
        /// 0 means the current port.
        new_port: u16,
    }
}
