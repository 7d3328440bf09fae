#!/usr/bin/env bash
# Network fuzzing campaigns (`sv2-probe fuzz`) of SECONDS each, one after another, against our mock
# roles and the reference implementation's binaries (when installed); not run by CI (CI runs short
# ones: scenario/tests/fuzz*.rs, interop/tests/fuzz_*.rs).
#
#   scripts/fuzz-network.sh [SECONDS [NAME...]]     default 1200 s, every campaign
#
# Campaigns (NAME): mock-pool, mock-tp, mock-proxy (its downstream side, served as a pool), the
# clients mock-device and mock-proxy-upstream (`--listen`, started by the fuzzer), and
# pool_sv2, jd_client_sv2 (servers, started again after each crash), translator_sv2-client,
# pool_sv2-client, jd_client_sv2-client (clients: Template Distribution for the last two).
# Reports and findings: target/fuzz-reports/<NAME>/ (report.txt, report.json, findings/).
# Environment: SEED (default 20261207), JOBS for servers (default 4). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
SECS="${1:-1200}"
shift || true
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(mock-pool mock-tp mock-proxy mock-device mock-proxy-upstream
    pool_sv2 jd_client_sv2 translator_sv2-client pool_sv2-client jd_client_sv2-client)
SEED="${SEED:-20261207}"
JOBS="${JOBS:-4}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sv2-toolkit/target}"
cargo build --release -q -p sv2-probe
P="$CARGO_TARGET_DIR/release/sv2-probe"
OUT="$ROOT/target/fuzz-reports"
WORK="$(mktemp -d /tmp/sv2-fuzz-network.XXXXXX)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A key pair for a mock role the fuzzer starts: $WORK/NAME.secret, its public key printed.
keypair() {
    "$P" keys generate --secret-file "$WORK/$1.secret" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["public_key"])'
}

# A mock role's TOML configuration with its key and address.
config() { # NAME PORT
    printf 'listen = "127.0.0.1:%s"\nauthority_secret = "%s"\n' "$2" "$(cat "$WORK/$1.secret")" >"$WORK/$1.toml"
}

server() { # NAME ROLE COMMAND-WITH-CONFIG
    local name="$1" role="$2" command="$3" port key
    port=$(free_port)
    key=$(keypair "$name")
    config "$name" "$port"
    echo "==> $name: sv2-probe fuzz --target (the server started by the fuzzer), $SECS s"
    "$P" fuzz --target "stratum2+tcp://127.0.0.1:$port/$key" --role "$role" \
        --spawn "$command --config $WORK/$name.toml" --seconds "$SECS" --jobs "$JOBS" \
        --seed "$SEED" --out "$OUT/$name" --max-rss-growth 64 >/dev/null || true
    sed -n '1,40p' "$OUT/$name/report.txt"
}

client() { # NAME ROLE COMMAND
    local name="$1" role="$2" command="$3"
    echo "==> $name: sv2-probe fuzz --listen (the client started by the fuzzer), $SECS s"
    "$P" fuzz --listen 127.0.0.1:0 --role "$role" --spawn "$command" --seconds "$SECS" \
        --seed "$SEED" --out "$OUT/$name" >/dev/null || true
    sed -n '1,40p' "$OUT/$name/report.txt"
}

reference() { # NAME TEST-BINARY FILTER
    local name="$1" test="$2" filter="$3"
    echo "==> $name (interop/tests/$test.rs), $SECS s"
    SV2_FUZZ_SECONDS="$SECS" SV2_FUZZ_SEED="$SEED" SV2_FUZZ_JOBS="$JOBS" \
        cargo test -q -p sv2-interop --test "$test" "$filter" -- --nocapture \
        >"$WORK/$name.log" 2>&1 || echo "(the test judged it against interop/FUZZING.md: see $WORK/$name.log)"
    sed -n '1,40p' "$OUT/$name/report.txt" 2>/dev/null || tail -n 30 "$WORK/$name.log"
}

for name in "${NAMES[@]}"; do
    case "$name" in
    mock-pool) server mock-pool pool "$P mock pool" ;;
    mock-tp) server mock-tp tp "$P mock tp" ;;
    mock-proxy)
        # Its upstream: a mock pool of its own, running for the whole campaign.
        pool_port=$(free_port)
        pool_key=$(keypair mock-proxy-pool)
        config mock-proxy-pool "$pool_port"
        "$P" mock pool --config "$WORK/mock-proxy-pool.toml" -q >/dev/null 2>&1 &
        server mock-proxy proxy "$P mock proxy --upstream stratum2+tcp://127.0.0.1:$pool_port/$pool_key"
        kill %1 2>/dev/null || true
        ;;
    mock-device) client mock-device device "$P mine {url} --threads 1" ;;
    mock-proxy-upstream)
        client mock-proxy-upstream proxy "$P mock proxy --upstream {url} --listen 127.0.0.1:0 -q"
        ;;
    pool_sv2) reference pool_sv2 fuzz_pool a_short_campaign_against_pool_sv2 ;;
    jd_client_sv2) reference jd_client_sv2 fuzz_pool a_short_campaign_against_jd_client_sv2 ;;
    translator_sv2-client) reference translator_sv2-client fuzz_clients translator ;;
    pool_sv2-client) reference pool_sv2-client fuzz_clients pool_sv2_as ;;
    jd_client_sv2-client) reference jd_client_sv2-client fuzz_clients jd_client_sv2_as ;;
    *) echo "unknown campaign: $name" >&2; exit 2 ;;
    esac
done
