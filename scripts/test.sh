#!/usr/bin/env bash
# The project's test command (README, and CI through .ci/run). Works on a fresh machine: it needs only
# the Rust toolchain; crates come from crates.io. Set CARGO_TARGET_DIR to share a build cache; by default
# it lives under ~/.cache so that repeated runs (and CI on a warm machine) are fast.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sv2-toolkit/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (codec, CLI, differential tests against the reference implementation's crates)"
cargo test --workspace --locked

step "benchmarks run once each (criterion test mode; timings are not asserted)"
cargo test -p sv2-benches --benches --locked

step "ok"
