//! `sv2-probe dissector`: the Wireshark Lua dissector, generated from the codec's message table
//! (`sv2_codec::messages::MESSAGE_TYPES`) so that it cannot drift from the codec. The committed copy is
//! `dissector/sv2.lua`; `sv2-probe/tests/dissector.rs` checks that regenerating gives exactly that file.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use sv2_codec::messages::{FieldInfo, MessageInfo, Protocol, MESSAGE_TYPES};

use crate::outcome::Outcome;

pub const LONG_ABOUT: &str = "\
Print the Wireshark Lua dissector for SV2 (every message and field of the codec, plain frames \
reassembled over TCP, Noise acts and encrypted frames labelled) and SV1 JSON-RPC lines, generated \
from the codec's message table. The repository keeps it as dissector/sv2.lua.

Install it by copying the file into ~/.local/lib/wireshark/plugins/, or load it for one run with \
`wireshark -X lua_script:dissector/sv2.lua` (or tshark).";

/// The hand-written part of the dissector; `--@MESSAGES@` is replaced by the generated table.
const TEMPLATE: &str = include_str!("dissector.lua");
const PLACEHOLDER: &str = "--@MESSAGES@\n";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the dissector to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> anyhow::Result<Outcome> {
    let lua = generate();
    match &args.out {
        Some(path) => {
            std::fs::write(path, lua).with_context(|| format!("writing {}", path.display()))?
        }
        None => out.write_all(lua.as_bytes())?,
    }
    Ok(Outcome::Pass)
}

/// The whole Lua file.
pub fn generate() -> String {
    let mut table = String::new();
    for m in MESSAGE_TYPES {
        message_entry(&mut table, m);
    }
    TEMPLATE.replacen(PLACEHOLDER, &table, 1)
}

fn protocol_abbrev(p: Protocol) -> &'static str {
    match p {
        Protocol::Common => "common",
        Protocol::Mining => "mining",
        Protocol::JobDeclaration => "job_declaration",
        Protocol::TemplateDistribution => "template_distribution",
        Protocol::ExtensionsNegotiation => "extensions",
    }
}

/// `SetupConnection.Success` -> `setup_connection_success`.
fn snake(name: &str) -> String {
    let mut s = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c == '.' {
            s.push('_');
            prev_lower = false;
        } else if c.is_ascii_uppercase() {
            if prev_lower {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            s.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    s
}

/// The field's name in the spec (and in the codec's JSON form): the Rust names of the spec's two
/// camel-case fields differ (codec/JSON.md). The tshark test compares these names with the JSON keys.
pub fn spec_field_name(f: &FieldInfo) -> &'static str {
    match f.name {
        "n_bits" => "nBits",
        "coinbase_tx_input_n_sequence" => "coinbase_tx_input_nSequence",
        other => other,
    }
}

/// The Wireshark field abbreviation of a message field: `sv2.<protocol>.<message>.<field>`.
pub fn field_abbrev(m: &MessageInfo, f: &FieldInfo) -> String {
    format!(
        "sv2.{}.{}.{}",
        protocol_abbrev(m.protocol),
        snake(m.name),
        spec_field_name(f)
    )
}

/// The element type of a field: `T` of `OPTION[T]` or `SEQ..[T]`, else the type itself.
fn element_type(sv2_type: &str) -> &str {
    match sv2_type.find('[') {
        Some(i) => &sv2_type[i + 1..sv2_type.len() - 1],
        None => sv2_type,
    }
}

fn proto_field(abbrev: &str, name: &str, sv2_type: &str, blurb: &str) -> String {
    let elem = element_type(sv2_type);
    let ctor = match elem {
        "U8" => "uint8",
        "U16" => "uint16",
        "U24" => "uint24",
        "U32" => "uint32",
        "U64" => "uint64",
        "BOOL" => return format!("ProtoField.bool({abbrev:?}, {name:?}, 8, nil, 0x01, {blurb:?})"),
        "F32" => return format!("ProtoField.float({abbrev:?}, {name:?}, nil, {blurb:?})"),
        "STR0_255" => {
            return format!("ProtoField.string({abbrev:?}, {name:?}, base.UNICODE, {blurb:?})")
        }
        _ => return format!("ProtoField.bytes({abbrev:?}, {name:?}, base.NONE, {blurb:?})"),
    };
    format!("ProtoField.{ctor}({abbrev:?}, {name:?}, base.DEC, nil, nil, {blurb:?})")
}

fn message_entry(out: &mut String, m: &MessageInfo) {
    let key = u32::from(m.extension_type) * 256 + u32::from(m.msg_type);
    let _ = writeln!(
        out,
        "MESSAGES[0x{key:06x}] = {{ -- extension_type 0x{:04x}, msg_type 0x{:02x}",
        m.extension_type, m.msg_type
    );
    let _ = writeln!(
        out,
        "    name = {:?}, protocol = {:?}, channel_msg = {},",
        m.name,
        format!("{:?}", m.protocol),
        m.channel_msg
    );
    let _ = writeln!(out, "    fields = {{");
    for f in m.fields {
        let ty = f.sv2_type();
        let name = spec_field_name(f);
        let blurb = format!("{} of {}", ty, m.name);
        let _ = writeln!(
            out,
            "        {{ name = {name:?}, type = {ty:?}, f = {} }},",
            proto_field(&field_abbrev(m, f), name, &ty, &blurb)
        );
    }
    let _ = writeln!(out, "    }},\n}}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names() {
        assert_eq!(snake("SetupConnection.Success"), "setup_connection_success");
        assert_eq!(snake("SetNewPrevHash"), "set_new_prev_hash");
        assert_eq!(snake("NewExtendedMiningJob"), "new_extended_mining_job");
    }

    #[test]
    fn every_type_has_a_field_constructor() {
        for m in MESSAGE_TYPES {
            for f in m.fields {
                let ty = f.sv2_type();
                let elem = element_type(&ty);
                assert!(
                    [
                        "U8",
                        "U16",
                        "U24",
                        "U32",
                        "U64",
                        "BOOL",
                        "F32",
                        "STR0_255",
                        "B0_32",
                        "B0_255",
                        "B0_64K",
                        "B0_16M",
                        "U256",
                        "PUBKEY",
                        "SIGNATURE"
                    ]
                    .contains(&elem),
                    "{}.{}: {ty}",
                    m.name,
                    f.name
                );
            }
        }
    }

    #[test]
    fn the_template_has_one_placeholder() {
        assert_eq!(TEMPLATE.matches(PLACEHOLDER).count(), 1);
    }
}
