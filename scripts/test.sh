#!/usr/bin/env bash
# The project's test command (README, and CI through .ci/run). Works on a fresh machine: it needs only
# the Rust toolchain; crates come from crates.io. Set CARGO_TARGET_DIR to share a build cache; by default
# it lives under ~/.cache so that repeated runs (and CI on a warm machine) are fast.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sv2-toolkit/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

# Golden-file update variables turn comparisons into writes: a run of the test command with one set
# would pass whatever the code does.
for var in SV2_UPDATE_EXPECTED SV2_VECTORS_REGENERATE; do
    if [[ -n "${!var:-}" ]]; then
        echo "error: $var is set: it rewrites the files the tests compare against; unset it to test" >&2
        exit 2
    fi
done
# Tests that skip list themselves here, printed at the end: for a missing or wrong-version reference
# binary (with SV2_REQUIRE_PEERS=1 they fail instead), or engine backends this CPU lacks.
rm -f target/test-skips.txt

# The reference implementation's binaries, for the end-to-end tests (interop/tests/e2e_*.rs), pinned as in
# ../shared/peers/PEERS.md. `cargo install` skips a binary already installed at that version, so this is
# cheap on a warm machine; cold, it builds for about 11 minutes on 2 cores. pool_sv2 and jd_client_sv2
# need capnproto to build. The tests fail, rather than skip, when a binary is missing while SV2_REQUIRE_PEERS=1.
step "reference binaries (pool_sv2 0.7.0, translator_sv2 0.6.0, jd_client_sv2 0.6.0)"
install_peer() {
    local name="$1" version="$2"
    if "$name" --version 2>/dev/null | grep -qx "$name $version" ||
        cargo install --list | grep -q "^$name v$version:"; then
        echo "$name $version: installed"
        return
    fi
    if ! command -v capnp >/dev/null; then
        local sudo=""
        [[ "$(id -u)" != 0 ]] && sudo="sudo"
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq capnproto libcapnp-dev
    fi
    CARGO_TARGET_DIR="$HOME/.cache/sv2-toolkit/target-peers" \
        cargo install --locked "$name" --version "$version"
}
install_peer pool_sv2 0.7.0
install_peer translator_sv2 0.6.0
install_peer jd_client_sv2 0.6.0
export SV2_REQUIRE_PEERS=1

# tshark (Debian package) for the Wireshark dissector's test (sv2-probe/tests/dissector.rs), which fails
# rather than skips without it while SV2_REQUIRE_TSHARK=1. The debconf answer keeps the install
# non-interactive (no setuid dumpcap).
step "tshark (the dissector's test)"
if ! command -v tshark >/dev/null; then
    sudo=""
    [[ "$(id -u)" != 0 ]] && sudo="sudo"
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark
fi
tshark -v | head -n 1
export SV2_REQUIRE_TSHARK=1

# tcpdump (Debian package) captures the real traffic of interop/tests/e2e_translator.rs on lo, which
# sv2_wire::capture then decodes (the links decrypted with the roles' key logs). Capturing needs
# CAP_NET_RAW: where a short trial capture works the tests fail without a capture, otherwise they say
# they did not capture.
step "tcpdump (real captures in the end-to-end tests)"
if ! command -v tcpdump >/dev/null && [[ ! -x /usr/sbin/tcpdump ]]; then
    sudo=""
    [[ "$(id -u)" != 0 ]] && sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcpdump
fi
# Required only where it can capture here (root with CAP_NET_RAW on lo): checked with a short run.
tcpdump_bin="$(command -v tcpdump || echo /usr/sbin/tcpdump)"
trial="$(timeout 2 "$tcpdump_bin" -i lo -c 1 -w /dev/null 'tcp port 9' 2>&1 || true)"
if [[ "$trial" == *"listening on"* ]]; then
    export SV2_REQUIRE_TCPDUMP=1
    echo "tcpdump captures on lo: the end-to-end captures are required"
else
    echo "tcpdump cannot capture on lo here: the end-to-end tests say so and go on without a capture"
fi

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (codec, CLI, differential tests against the reference implementation's crates)"
cargo test --workspace --locked

# interop/tests/conformance_pool.rs ran the conformance suite against SRI's pool_sv2 and compared the
# verdicts with conformance/expected/pool_sv2.txt; its reports (text, JSON with every frame, JUnit) stay in
# target/conformance-reports/pool_sv2/. The failures are findings about that pool.
step "conformance report of SRI's pool_sv2 (also kept, with JSON and JUnit, in target/conformance-reports/pool_sv2/)"
report=target/conformance-reports/pool_sv2/report.txt
if [[ -f "$report" ]]; then
    cat "$report"
fi

# interop/tests/conformance_translator.rs ran the translator suite (the device checks of its upstream
# side, and its own) against SRI's translator_sv2 and compared the verdicts with
# conformance/expected/translator_sv2.txt.
step "translator conformance report of SRI's translator_sv2 (also in target/conformance-reports/translator_sv2/)"
report=target/conformance-reports/translator_sv2/report.txt
if [[ -f "$report" ]]; then
    cat "$report"
fi

step "benchmarks run once each (criterion test mode; timings are not asserted)"
cargo test -p sv2-benches --benches --locked

# Every fuzz target built with nightly cargo-fuzz and run for a few seconds from the seed corpora
# (scripts/fuzz.sh; its own build cache under ~/.cache). Fails on any crash. About a minute warm, three
# to four minutes cold (nightly toolchain and cargo-fuzz are installed when missing).
step "fuzz smoke (scripts/fuzz.sh smoke: every target, 5 s each)"
scripts/fuzz.sh smoke 5

if [[ -s target/test-skips.txt ]]; then
    step "SKIPPED: what this machine could not test"
    cat target/test-skips.txt
fi

step "ok"
