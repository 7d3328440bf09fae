//! `sv2-probe keys`, run as the real binary.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use sv2_codec::noise::cert::{SignatureNoiseMessage, ValidityPolicy};
use sv2_codec::noise::keys::{AuthorityPublicKey, Keypair, SecretKey};

/// Spec §4.7.1 (CATALOG §G.1).
const SPEC_XONLY: &str = "76637000979c1c11af0c300bcd8c7fe48610fce9b9c11e3daee35ae0b08a7455";
const SPEC_BASE58: &str = "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh";

fn probe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args(args)
        .output()
        .expect("run sv2-probe")
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sv2-probe-keys-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn inspect_decodes_the_spec_vector() {
    let output = probe(&["keys", "inspect", SPEC_BASE58, "--json"]);
    assert!(output.status.success());
    let value = json_of(&output);
    assert_eq!(value["xonly_hex"], SPEC_XONLY);
    assert_eq!(value["public_key"], SPEC_BASE58);
    assert_eq!(value["valid"], true);

    let text = probe(&["keys", "inspect", SPEC_BASE58]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains(SPEC_XONLY));
}

#[test]
fn inspect_takes_a_url() {
    let url = format!("stratum2+tcp://127.0.0.1:34254/{SPEC_BASE58}");
    let value = json_of(&probe(&["keys", "inspect", &url, "--json"]));
    assert_eq!(value["host"], "127.0.0.1");
    assert_eq!(value["port"], 34254);
    assert_eq!(value["xonly_hex"], SPEC_XONLY);
}

#[test]
fn inspect_refuses_a_corrupt_key_with_exit_1() {
    let mut corrupt = SPEC_BASE58.to_owned();
    corrupt.replace_range(5..6, "z");
    let output = probe(&["keys", "inspect", &corrupt, "--json"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json_of(&output)["valid"], false);
    assert!(String::from_utf8_lossy(&output.stderr).contains("checksum"));
}

#[test]
fn inspect_warns_when_given_a_secret_key() {
    let output = probe(&[
        "keys",
        "inspect",
        "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("secret key"));
}

#[test]
fn generate_writes_a_private_secret_file_that_matches_the_public_key() {
    let dir = scratch_dir("generate");
    let secret_path = dir.join("authority.secret");
    let secret_arg = secret_path.to_str().unwrap();
    let output = probe(&["keys", "generate", "--secret-file", secret_arg, "--json"]);
    assert!(output.status.success(), "{output:?}");
    let value = json_of(&output);
    let public = AuthorityPublicKey::from_base58(value["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(value["xonly_hex"], hex::encode(public.xonly()));

    let text = std::fs::read_to_string(&secret_path).unwrap();
    let secret = SecretKey::from_base58(text.trim()).unwrap();
    assert_eq!(Keypair::from_secret(secret).public, public);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }

    // The secret file's public key, through inspect.
    let inspected = json_of(&probe(&[
        "keys",
        "inspect",
        "--secret-file",
        secret_arg,
        "--json",
    ]));
    assert_eq!(inspected["public_key"], public.to_base58());

    // A second generate does not overwrite the secret...
    let again = probe(&["keys", "generate", "--secret-file", secret_arg]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&secret_path).unwrap(), text);
    // ...unless forced.
    let forced = probe(&["keys", "generate", "--secret-file", secret_arg, "--force"]);
    assert!(forced.status.success());
    assert_ne!(std::fs::read_to_string(&secret_path).unwrap(), text);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn certify_issues_a_certificate_that_verifies() {
    let dir = scratch_dir("certify");
    let authority_path = dir.join("authority.secret");
    let authority_arg = authority_path.to_str().unwrap();
    let authority = json_of(&probe(&[
        "keys",
        "generate",
        "--secret-file",
        authority_arg,
        "--json",
    ]));
    let authority_key =
        AuthorityPublicKey::from_base58(authority["public_key"].as_str().unwrap()).unwrap();
    let server = Keypair::from_secret(SecretKey::from_bytes([0x42; 32]).unwrap());
    let server_hex = hex::encode(server.public.xonly());

    let output = probe(&[
        "keys",
        "certify",
        "--authority-secret-file",
        authority_arg,
        "--server-key",
        &server_hex,
        "--valid-from",
        "1700000000",
        "--not-valid-after",
        "1700003600",
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let value = json_of(&output);
    assert_eq!(value["valid_from"], 1700000000);
    assert_eq!(value["not_valid_after"], 1700003600);
    assert_eq!(value["valid_now"], false);
    let bytes = hex::decode(value["signature_noise_message"].as_str().unwrap()).unwrap();
    let cert = SignatureNoiseMessage::from_bytes(&bytes).unwrap();
    cert.verify(
        &server.public.xonly(),
        &authority_key,
        1700001000,
        &ValidityPolicy::default(),
    )
    .unwrap();
    // Signed for that server only.
    let other = SecretKey::from_bytes([0x43; 32]).unwrap().xonly_public();
    assert!(cert
        .verify(
            &other,
            &authority_key,
            1700001000,
            &ValidityPolicy::default()
        )
        .is_err());

    // The server key may also be given as base58check, and the window defaults to now + 1 h.
    let output = probe(&[
        "keys",
        "certify",
        "--authority-secret-file",
        authority_arg,
        "--server-key",
        &server.public.to_base58(),
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let value = json_of(&output);
    assert_eq!(value["valid_now"], true);
    assert_eq!(
        value["not_valid_after"].as_u64().unwrap() - value["valid_from"].as_u64().unwrap(),
        3600
    );

    // A window that ends before it starts is a usage error.
    let output = probe(&[
        "keys",
        "certify",
        "--authority-secret-file",
        authority_arg,
        "--server-key",
        &server_hex,
        "--valid-from",
        "10",
        "--not-valid-after",
        "9",
    ]);
    assert_eq!(output.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn inspect_takes_odd_but_valid_urls() {
    for (url, host, port) in [
        (
            format!("STRATUM2+TCP://[::1]:3333/{SPEC_BASE58}/"),
            "::1",
            3333,
        ),
        (
            format!("stratum2+tcp://localhost:65535/{SPEC_BASE58}"),
            "localhost",
            65535,
        ),
    ] {
        let output = probe(&["keys", "inspect", &url, "--json"]);
        assert!(output.status.success(), "{url}: {output:?}");
        let value = json_of(&output);
        assert_eq!(value["host"], host, "{url}");
        assert_eq!(value["port"], port, "{url}");
        assert_eq!(value["xonly_hex"], SPEC_XONLY, "{url}");
        assert_eq!(value["source"], "url");
    }
}

#[test]
fn inspect_refuses_bad_urls_and_keys_with_exit_1_and_a_reason() {
    let cases = [
        (format!("stratum2+tcp://127.0.0.1:0/{SPEC_BASE58}"), "port"),
        (
            format!("stratum2+tcp://127.0.0.1:+80/{SPEC_BASE58}"),
            "port",
        ),
        (
            format!("stratum2+tcp://[127.0.0.1]:1/{SPEC_BASE58}"),
            "IPv6",
        ),
        (
            "stratum2+tcp://127.0.0.1:34254".to_owned(),
            "no authority key",
        ),
        (format!("stratum+tcp://127.0.0.1:1/{SPEC_BASE58}"), "scheme"),
        (
            "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRX0".into(),
            "base58 character",
        ),
        ("".into(), "bytes"),
        // 64 hex digits that are not an x coordinate on the curve.
        (format!("{}05", "0".repeat(62)), "x-only"),
    ];
    for (text, reason) in cases {
        let output = probe(&["keys", "inspect", &text, "--json"]);
        assert_eq!(output.status.code(), Some(1), "{text:?}: {output:?}");
        let value = json_of(&output);
        assert_eq!(value["valid"], false, "{text:?}");
        let error = value["error"].as_str().unwrap();
        assert!(error.contains(reason), "{text:?}: {error}");
    }
}

#[test]
fn inspect_takes_xonly_hex_and_prints_the_base58check_form() {
    let value = json_of(&probe(&["keys", "inspect", SPEC_XONLY, "--json"]));
    assert_eq!(value["valid"], true);
    assert_eq!(value["source"], "hex");
    assert_eq!(value["public_key"], SPEC_BASE58);
    let upper = SPEC_XONLY.to_uppercase();
    let value = json_of(&probe(&["keys", "inspect", &upper, "--json"]));
    assert_eq!(value["public_key"], SPEC_BASE58);
    let text = probe(&["keys", "inspect", SPEC_XONLY]);
    assert!(text.status.success());
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains(SPEC_BASE58), "{stdout}");
    assert!(!stdout.contains("checksum ok"), "{stdout}");
}

#[cfg(unix)]
#[test]
fn generate_force_replaces_a_file_instead_of_writing_into_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir("force");
    // A world-readable file, held open by a reader: the new secret must not reach that reader.
    let path = dir.join("authority.secret");
    std::fs::write(&path, "old\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let reader = std::fs::File::open(&path).unwrap();
    let output = probe(&[
        "keys",
        "generate",
        "--secret-file",
        path.to_str().unwrap(),
        "--force",
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let mut old = String::new();
    std::io::Read::read_to_string(&mut &reader, &mut old).unwrap();
    assert_eq!(old, "old\n", "the open file still holds the old bytes only");
    let secret = SecretKey::from_base58(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
    let public = json_of(&output)["public_key"].as_str().unwrap().to_owned();
    assert_eq!(Keypair::from_secret(secret).public.to_base58(), public);

    // A symbolic link is replaced, not followed.
    let target = dir.join("elsewhere");
    std::fs::write(&target, "untouched\n").unwrap();
    let link = dir.join("link.secret");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let refused = probe(&["keys", "generate", "--secret-file", link.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("exists"));
    let forced = probe(&[
        "keys",
        "generate",
        "--secret-file",
        link.to_str().unwrap(),
        "--force",
    ]);
    assert!(forced.status.success(), "{forced:?}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched\n");
    assert!(!std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
