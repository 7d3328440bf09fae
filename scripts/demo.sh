#!/usr/bin/env bash
# The README's main job: the toolkit end to end on loopback, in one process (`sv2-probe demo`): a mock
# Template Provider feeds a mock pool over Noise, the probe checks the pool step by step and mines a share,
# which at regtest difficulty is a block that the TP validates. Then the conformance suite against a mock
# pool started on loopback, and a few one-liners: decoding a frame, the spec's authority-key vector, the
# test vectors, and the hashing engine's backends.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sv2-toolkit/target}"
cargo build --release --locked -q -p sv2-probe
probe="$CARGO_TARGET_DIR/release/sv2-probe"

echo "== sv2-probe demo: mock TP -> mock pool -> probe, all on 127.0.0.1"
"$probe" demo

echo; echo "== conformance: the Noise, setup and share checks and the monitor rules against a mock pool on 127.0.0.1"
work="$(mktemp -d)"
pool_pid=""
trap '[[ -n "$pool_pid" ]] && kill "$pool_pid" 2>/dev/null; rm -rf "$work"' EXIT
"$probe" keys generate --secret-file "$work/authority.secret" --json >"$work/key.json"
key="$(sed -E 's/.*"public_key":"([^"]+)".*/\1/' "$work/key.json")"
port=$(( 20000 + RANDOM % 20000 ))
printf 'listen = "127.0.0.1:%s"\nauthority_secret = "%s"\n' "$port" "$(cat "$work/authority.secret")" >"$work/pool.toml"
"$probe" mock pool --config "$work/pool.toml" >"$work/pool.log" 2>&1 &
pool_pid=$!
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
"$probe" conformance --role pool --target "stratum2+tcp://127.0.0.1:$port/$key" \
    --only noise,setup,shares.valid-accepted,shares.above-target,monitor --timeout 2 --junit "$work/junit.xml" 2>/dev/null
kill "$pool_pid" 2>/dev/null || true
pool_pid=""

echo; echo "== decode a frame (SubmitSharesStandard)"
"$probe" decode 00801a180000010000000200000003000000040000000500000000000020

echo; echo "== the spec's authority key vector (§4.7.1)"
"$probe" keys inspect 9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh

echo; echo "== the test vectors (vectors/data), verified"
"$probe" vectors verify | awk 'NR == 1; END { print }'

echo; echo "== hashrate: every sha256d backend of this CPU next to a naive baseline (1 thread, short run)"
"$probe" hashrate --seconds 0.5
