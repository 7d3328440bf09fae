#!/usr/bin/env bash
# The README's main job: the toolkit end to end on loopback, in one process (`sv2-probe demo`): a mock
# Template Provider feeds a mock pool over Noise, the probe checks the pool step by step and mines a share,
# which at regtest difficulty is a block that the TP validates. Then a few one-liners: decoding a frame,
# the spec's authority-key vector, and the hashing engine's backends.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sv2-toolkit/target}"
cargo build --release --locked -q -p sv2-probe
probe="$CARGO_TARGET_DIR/release/sv2-probe"

echo "== sv2-probe demo: mock TP -> mock pool -> probe, all on 127.0.0.1"
"$probe" demo

echo; echo "== decode a frame (SubmitSharesStandard)"
"$probe" decode 00801a180000010000000200000003000000040000000500000000000020

echo; echo "== the spec's authority key vector (§4.7.1)"
"$probe" keys inspect 9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh

echo; echo "== hashrate: every sha256d backend of this CPU next to a naive baseline (1 thread, short run)"
"$probe" hashrate --seconds 0.5
