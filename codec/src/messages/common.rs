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

/// SetupConnection.protocol: the sub-protocol a connection speaks (§3.6.1).
pub mod protocol {
    pub const MINING: u8 = 0;
    pub const JOB_DECLARATION: u8 = 1;
    pub const TEMPLATE_DISTRIBUTION: u8 = 2;

    /// The protocol's name, `None` for a number the spec does not define.
    pub fn name(protocol: u8) -> Option<&'static str> {
        match protocol {
            MINING => Some("Mining"),
            JOB_DECLARATION => Some("Job Declaration"),
            TEMPLATE_DISTRIBUTION => Some("Template Distribution"),
            _ => None,
        }
    }
}

/// The feature flags of SetupConnection, .Success and .Error (a U32, bit 0 the least significant),
/// per protocol (§5.3.1 Mining, §6.1 Job Declaration; Template Distribution defines none; CATALOG §E).
pub mod flags {
    /// Mining, SetupConnection and .Error: the client understands only standard jobs.
    pub const REQUIRES_STANDARD_JOBS: u32 = 1 << 0;
    /// Mining, SetupConnection and .Error: the client will send SetCustomMiningJob.
    pub const REQUIRES_WORK_SELECTION: u32 = 1 << 1;
    /// Mining, SetupConnection and .Error: the server MUST NOT send jobs that forbid version rolling.
    pub const REQUIRES_VERSION_ROLLING: u32 = 1 << 2;
    /// Mining, SetupConnection.Success: the version may not change (MUST NOT be set when the client
    /// set REQUIRES_VERSION_ROLLING).
    pub const REQUIRES_FIXED_VERSION: u32 = 1 << 0;
    /// Mining, SetupConnection.Success: the server refuses standard channels.
    pub const REQUIRES_EXTENDED_CHANNELS: u32 = 1 << 1;
    /// Job Declaration, SetupConnection: the client reveals the transaction data (full template).
    pub const DECLARE_TX_DATA: u32 = 1 << 0;

    /// Mining SetupConnection (and .Error) flag names, by bit.
    pub const MINING_SETUP: &[&str] = &[
        "REQUIRES_STANDARD_JOBS",
        "REQUIRES_WORK_SELECTION",
        "REQUIRES_VERSION_ROLLING",
    ];
    /// Mining SetupConnection.Success flag names, by bit.
    pub const MINING_SUCCESS: &[&str] = &["REQUIRES_FIXED_VERSION", "REQUIRES_EXTENDED_CHANNELS"];
    /// Job Declaration SetupConnection flag names, by bit.
    pub const JOB_DECLARATION_SETUP: &[&str] = &["DECLARE_TX_DATA"];

    /// The names of the bits set in `flags`, from `names` (one of the tables above); a bit the table
    /// does not name is `bitN`.
    pub fn names(flags: u32, names: &[&str]) -> Vec<String> {
        (0..32)
            .filter(|bit| flags & (1 << bit) != 0)
            .map(|bit| {
                names
                    .get(bit)
                    .map_or(format!("bit{bit}"), |name| (*name).to_owned())
            })
            .collect()
    }

    /// `0x4 (REQUIRES_VERSION_ROLLING)`, `0x82 (REQUIRES_EXTENDED_CHANNELS, bit7)`, `0x0 (none)`.
    pub fn describe(flags: u32, table: &[&str]) -> String {
        let list = names(flags, table);
        if list.is_empty() {
            format!("{flags:#x} (none)")
        } else {
            format!("{flags:#x} ({})", list.join(", "))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn flags_are_named_by_bit() {
            assert_eq!(describe(0, MINING_SETUP), "0x0 (none)");
            assert_eq!(
                describe(0b110, MINING_SETUP),
                "0x6 (REQUIRES_WORK_SELECTION, REQUIRES_VERSION_ROLLING)"
            );
            assert_eq!(
                describe(0b10 | 1 << 7, MINING_SUCCESS),
                "0x82 (REQUIRES_EXTENDED_CHANNELS, bit7)"
            );
            assert_eq!(MINING_SETUP[2], "REQUIRES_VERSION_ROLLING");
            assert_eq!(REQUIRES_VERSION_ROLLING, 4);
        }
    }
}
