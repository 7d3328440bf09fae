#!/usr/bin/env bash
# The README's main job. Today: build sv2-probe, encode messages from JSON, decode frames back,
# show a strict-decode rejection, keys and certificates, and the hashing engine. (The loopback mock-pool
# demo replaces this when the mock roles land.)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sv2-toolkit/target}"
cargo build --release --locked -q -p sv2-probe
probe="$CARGO_TARGET_DIR/release/sv2-probe"

echo "== encode: a SubmitSharesStandard from JSON"
share=$("$probe" encode '{"message":"SubmitSharesStandard","channel_id":1,"sequence_number":2,"job_id":3,"nonce":4,"ntime":5,"version":536870912}')
echo "$share"

echo; echo "== decode it back (text, then JSON)"
"$probe" decode "$share"
"$probe" decode --json "$share"

echo; echo "== a SubmitSharesExtended carrying extension 0x0002's user_identity TLV"
ext=$("$probe" encode '{"message":{"message":"SubmitSharesExtended","channel_id":1,"sequence_number":7,"job_id":3,"nonce":4,"ntime":5,"version":536870912,"extranonce":"0011223344556677"},"tlvs":[{"extension_type":2,"field_type":1,"value":"576f726b65725f303031"}]}')
"$probe" decode "$ext"

echo; echo "== strict decoding: a SetExtranoncePrefix whose B0_32 claims 33 bytes is rejected"
# header 0080 19 260000 | channel_id 01000000 | length 0x21 (33) | 33 bytes
bad="00801926000001000000""21""$(printf 'aa%.0s' $(seq 33))"
if "$probe" decode "$bad"; then
  echo "unexpected: accepted"; exit 1
else
  echo "(rejected, exit code $?)"
fi

echo; echo "== keys: the spec's authority key vector (§4.7.1), then a fresh key pair and a certificate"
"$probe" keys inspect 9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh
demo_dir="$(mktemp -d)"
trap 'rm -rf "$demo_dir"' EXIT
"$probe" keys generate --secret-file "$demo_dir/authority.secret"
"$probe" keys certify --authority-secret-file "$demo_dir/authority.secret" \
  --server-key 9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh --valid-for 86400

echo; echo "== hashrate: every sha256d backend of this CPU next to a naive baseline (1 thread, short run)"
"$probe" hashrate --seconds 0.5
