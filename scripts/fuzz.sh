#!/usr/bin/env bash
# Fuzzing: the cargo-fuzz targets in fuzz/ (nightly; outside the stable workspace).
#
#   scripts/fuzz.sh smoke [SECONDS]             build every target, run each SECONDS (default 5); exit 1 on
#                                               any crash. CI runs this (scripts/test.sh).
#   scripts/fuzz.sh campaign [SECONDS [JOBS]]   per target: SECONDS (default 1200) with JOBS libFuzzer
#                                               workers (-fork, default: number of CPUs); summary to
#                                               fuzz/results/campaign-<time>.md; crashes minimized
#                                               (cargo fuzz tmin) into fuzz/regressions/<target>/.
#   scripts/fuzz.sh seeds                       (re)generate fuzz/corpus/<target>/ from vectors/data/*.json
#                                               and generated messages (cargo run --example fuzz_seeds).
#   scripts/fuzz.sh build                       build the targets only.
#
# Environment: TARGETS="messages transport" limits the targets; FUZZ_TARGET_DIR (default
# ~/.cache/sv2-toolkit/target-fuzz) is the build cache. Needs only rustup: the nightly toolchain and
# cargo-fuzz are installed when missing.
#
# Properties are checked inside the targets (fuzz-checks/src/lib.rs, interop/src/differential.rs); the flags
# below add bounded memory: no single allocation of 8 MiB or more (a claimed length of up to 16 MiB
# must never be allocated before the bytes arrive), and an RSS limit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/sv2-toolkit/target-fuzz}"
ALL_TARGETS=(frame_splits messages noise_responder noise_initiator transport capture differential)
read -r -a TARGETS <<<"${TARGETS:-${ALL_TARGETS[*]}}"
LIBFUZZER_FLAGS=(-max_len=8192 -malloc_limit_mb=8 -rss_limit_mb=2560 -timeout=20 -print_final_stats=1)

step() { printf '\n==> %s\n' "$*"; }

ensure_tools() {
    if ! cargo +nightly --version >/dev/null 2>&1; then
        rustup toolchain install nightly --profile minimal
    fi
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        cargo +nightly install cargo-fuzz --locked
    fi
}

fuzz() {
    (cd fuzz && cargo +nightly fuzz "$@")
}

build() {
    step "build fuzz targets (cargo +nightly fuzz build -O, debug assertions on)"
    # cargo fuzz has no --locked: check first that fuzz/Cargo.lock is current (fails if it would change).
    (cd fuzz && cargo +nightly metadata --locked --format-version 1 >/dev/null)
    fuzz build -O --debug-assertions --target-dir "$FUZZ_TARGET_DIR"
}

seeds() {
    step "seed corpora (vectors/data/*.json, generated messages) -> fuzz/corpus/<target>/"
    CARGO_TARGET_DIR="$FUZZ_TARGET_DIR" cargo +nightly run -q -p sv2-codec --example fuzz_seeds -- \
        fuzz/corpus vectors/data fuzz/regressions
}

# Sums the differential target's per-process counts (class TAB count) in DIR.
diff_counts() {
    local dir="$1"
    find "$dir" -name '*.tsv' -exec cat {} + 2>/dev/null |
        awk -F'\t' '{n[$1] += $2} END {for (c in n) printf "%s\t%d\n", c, n[c]}' | sort || true
}

# run TARGET SECONDS LOG [extra libFuzzer flags...]: runs one target on its corpus; returns libFuzzer's
# status. Crash files go to fuzz/artifacts/<target>/.
run_target() {
    local target="$1" seconds="$2" log="$3"
    shift 3
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    fuzz run -O --debug-assertions --target-dir "$FUZZ_TARGET_DIR" "$target" "corpus/$target" -- \
        "${LIBFUZZER_FLAGS[@]}" -max_total_time="$seconds" "$@" >"$log" 2>&1
}

# Figures from a libFuzzer log: "execs exec/s cov ft corpus".
figures() {
    local log="$1"
    local last
    last="$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)"
    local execs cov ft corp secs rate
    execs="$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")"
    cov="$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")"
    ft="$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")"
    corp="$(sed -nE 's/.*corp: ([0-9]+).*/\1/p' <<<"$last")"
    # Fork mode prints "time: Ns"; a single process prints "Done N runs in S second(s)".
    secs="$(sed -nE 's/.*time: ([0-9]+)s.*/\1/p' <<<"$last")"
    [[ -z "$secs" ]] && secs="$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$log" | tail -n 1)"
    rate="$(grep -E '^stat::average_exec_per_sec:' "$log" | awk '{print $2}' | tail -n 1)"
    if [[ -z "$rate" && -n "$execs" && -n "$secs" && "$secs" -gt 0 ]]; then
        rate=$((execs / secs))
    fi
    echo "${execs:-?} ${rate:-?} ${cov:-?} ${ft:-?} ${corp:-?}"
}

smoke() {
    local seconds="${1:-5}"
    ensure_tools
    build
    seeds
    local logs="$FUZZ_TARGET_DIR/smoke-logs"
    local stats="$logs/diff-stats"
    rm -rf "$logs"
    mkdir -p "$stats"
    local failed=()
    step "smoke: each target for ${seconds}s"
    printf '%-16s %10s %8s %6s %6s %6s\n' target execs exec/s cov ft corpus
    for target in "${TARGETS[@]}"; do
        local log="$logs/$target.log"
        if SV2_DIFF_STATS="$stats" run_target "$target" "$seconds" "$log"; then
            read -r execs rate cov ft corp <<<"$(figures "$log")"
            printf '%-16s %10s %8s %6s %6s %6s\n' "$target" "$execs" "$rate" "$cov" "$ft" "$corp"
        else
            failed+=("$target")
            printf '%-16s CRASHED (log: %s)\n' "$target" "$log"
            grep -E 'panicked|ERROR|SUMMARY|Test unit written|Failing input' "$log" | head -n 20 || true
        fi
    done
    if [[ " ${TARGETS[*]} " == *" differential "* ]]; then
        step "differential: outcomes by class (counts are approximate: written every 2 s)"
        diff_counts "$stats"
    fi
    if ((${#failed[@]})); then
        echo "fuzz smoke: crashes in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
        exit 1
    fi
    echo "fuzz smoke: ok"
}

campaign() {
    local seconds="${1:-1200}" jobs="${2:-$(nproc)}"
    ensure_tools
    build
    seeds
    local stamp
    stamp="$(date -u +%Y%m%dT%H%M%SZ)"
    # Absolute: the targets run from fuzz/.
    local out="$ROOT/fuzz/results/campaign-$stamp"
    local results="$ROOT/fuzz/results/campaign-$stamp.md"
    mkdir -p "$out"
    {
        echo "# Fuzzing campaign $stamp"
        echo
        echo "${seconds}s per target, ${jobs} libFuzzer workers (-fork=${jobs}), commit $(git rev-parse --short HEAD)," \
            "$(cargo +nightly --version), flags: ${LIBFUZZER_FLAGS[*]}."
        echo
        echo "| target | execs | exec/s | cov | ft | corpus | crashes | new regressions |"
        echo "|---|---|---|---|---|---|---|---|"
    } >"$results"
    local crashed=0
    for target in "${TARGETS[@]}"; do
        step "campaign: $target, ${seconds}s, ${jobs} workers"
        local log="$out/$target.log"
        local before
        before="$(find "fuzz/artifacts/$target" -type f 2>/dev/null | sort || true)"
        mkdir -p "fuzz/artifacts/$target"
        SV2_DIFF_STATS="$out/diff-stats" SV2_DIFF_FINDINGS="$out/diff-findings" \
            run_target "$target" "$seconds" "$log" \
            -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 || true
        read -r execs rate cov ft corp <<<"$(figures "$log")"
        corp="$(find "fuzz/corpus/$target" -type f | wc -l)"
        local crashes=() new=0
        while IFS= read -r file; do
            [[ -n "$file" ]] && ! grep -qxF "$file" <<<"$before" && crashes+=("$file")
        done < <(find "fuzz/artifacts/$target" -type f \( -name 'crash-*' -o -name 'oom-*' \
            -o -name 'timeout-*' -o -name 'leak-*' \) | sort)
        for crash in "${crashes[@]}"; do
            local marker
            marker="$out/tmin-$(basename "$crash")"
            touch "$marker"
            fuzz tmin -O --debug-assertions --target-dir "$FUZZ_TARGET_DIR" "$target" \
                "$ROOT/$crash" -- -runs=2000 >"$marker.log" 2>&1 || true
            # tmin writes minimized-from-* after each step; the newest is the smallest.
            local minimized keep name
            minimized="$(find "fuzz/artifacts/$target" -name 'minimized-from-*' -newer "$marker" \
                -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)"
            keep="${minimized:-$crash}"
            # Named by content, so that workers finding the same minimized input keep one file.
            name="$(sha1sum "$keep" | cut -c1-16)"
            mkdir -p "fuzz/regressions/$target"
            [[ -e "fuzz/regressions/$target/$name" ]] && continue
            cp "$keep" "fuzz/regressions/$target/$name"
            new=$((new + 1))
        done
        crashed=$((crashed + ${#crashes[@]}))
        echo "| $target | $execs | $rate | $cov | $ft | $corp | ${#crashes[@]} | $new |" >>"$results"
    done
    if [[ " ${TARGETS[*]} " == *" differential "* ]]; then
        {
            echo
            echo "## Differential outcomes by class"
            echo
            echo "Counts over all workers (approximate: each worker writes its counts every 2 s). Inputs of"
            echo "every class that is not an agreement: $out/diff-findings/."
            echo
            echo '```'
            diff_counts "$out/diff-stats"
            echo '```'
        } >>"$results"
    fi
    step "results: $results"
    cat "$results"
    if ((crashed)); then
        echo "campaign: $crashed crash(es); minimized inputs copied to fuzz/regressions/<target>/" >&2
        echo "replay them on stable: cargo test -p sv2-codec --test fuzz_regressions;" \
            "cargo test -p sv2-interop --test fuzz_regressions" >&2
        exit 1
    fi
}

mode="${1:-smoke}"
shift || true
case "$mode" in
smoke) smoke "$@" ;;
campaign) campaign "$@" ;;
seeds) ensure_tools && seeds ;;
build) ensure_tools && build ;;
*)
    echo "usage: $0 smoke [SECONDS] | campaign [SECONDS [JOBS]] | seeds | build" >&2
    exit 2
    ;;
esac
