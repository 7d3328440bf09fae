//! Every file of scenarios/examples/ reads as a scenario, and the README's table names every action
//! the engine knows.

use sv2_scenario::Scenario;

#[test]
fn every_example_reads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples");
    let faults = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/faults");
    let clients = faults.join("clients");
    let mut read = 0;
    let entries = std::fs::read_dir(&dir)
        .unwrap()
        .chain(std::fs::read_dir(&faults).unwrap())
        .chain(std::fs::read_dir(&clients).unwrap());
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let scenario =
                Scenario::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!scenario.rules.is_empty(), "{}", path.display());
            assert!(!scenario.name.is_empty(), "{}", path.display());
            read += 1;
        }
    }
    // The four the proxy's documentation promises, and more.
    for name in [
        "drop-share-acks",
        "delay-new-prevhash",
        "flip-channel-bit",
        "truncate-setup",
    ] {
        assert!(dir.join(format!("{name}.toml")).is_file(), "{name}");
    }
    assert!(read >= 29, "{read}");
}

#[test]
fn the_readme_documents_every_action() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/README.md"),
    )
    .unwrap();
    for action in [
        "pass",
        "drop",
        "delay",
        "duplicate",
        "reorder",
        "replace",
        "inject-before",
        "inject-after",
        "corrupt",
        "split",
        "trickle",
        "close",
        "reset",
        "flip-bit",
        "truncate",
        "lie-length",
        "channel-bit",
        "break-mac",
    ] {
        assert!(
            readme.contains(&format!("`{action}`")) || readme.contains(&format!("\"{action}\"")),
            "{action}"
        );
        // And the engine knows it.
        let toml = match action {
            "flip-bit" | "truncate" | "lie-length" | "channel-bit" | "break-mac" => {
                format!("[[rule]]\nmessage = \"SetTarget\"\naction = \"corrupt\"\ncorrupt = \"{action}\"\n")
            }
            "corrupt" => continue,
            "delay" => "[[rule]]\naction = \"delay\"\nms = 1\n".into(),
            "replace" => "[[rule]]\nmessage = \"SetTarget\"\naction = \"replace\"\nset = { channel_id = 2 }\n".into(),
            "inject-before" | "inject-after" => format!("[[rule]]\naction = \"{action}\"\ninject = {{ message = \"SetTarget\", channel_id = 1, maximum_target = \"ff\" }}\n").replace("\"ff\"", &format!("\"{}\"", "ff".repeat(32))),
            _ => format!("[[rule]]\naction = \"{action}\"\n"),
        };
        Scenario::from_toml(&toml).unwrap_or_else(|e| panic!("{action}: {e}"));
    }
}
