//! A reference binary is used only at the version the tests are written against: another one is
//! reported (a skip listed for the test command's summary, or a failure under SV2_REQUIRE_PEERS=1),
//! never run unknowingly.

use std::os::unix::fs::PermissionsExt;

use sv2_interop::peers::{check_version, PINNED};

/// A stand-in binary that prints `version_line` for `--version`.
fn fake(name: &str, version_line: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sv2-peer-versions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{}", version_line.replace(' ', "_")));
    std::fs::write(&path, format!("#!/bin/sh\necho '{version_line}'\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn only_the_pinned_version_is_accepted() {
    assert_eq!(PINNED.len(), 3);
    for (name, version) in PINNED {
        let right = fake(name, &format!("{name} {version}"));
        assert_eq!(check_version(name, &right), Ok(()), "{name}");
        let wrong = fake(name, &format!("{name} 9.9.9"));
        let why = check_version(name, &wrong).unwrap_err();
        assert!(why.contains("9.9.9") && why.contains(version), "{why}");
        // A prefix of the version is not the version.
        let near = fake(name, &format!("{name} {version}1"));
        assert!(check_version(name, &near).is_err(), "{name} {version}1");
    }
}
