#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: every cargo-fuzz target of fuzz/ into $OUT, each with its seed corpus
# (<target>_seed_corpus.zip) and libFuzzer options (<target>.options, the flags scripts/fuzz.sh uses).
# The base image sets RUSTFLAGS/CFLAGS for the sanitizer and coverage builds; cargo fuzz adds the rest.
cd "$SRC/sv2-toolkit"

cargo fuzz build -O --debug-assertions
build_dir="fuzz/target/x86_64-unknown-linux-gnu/release"
targets=$(cargo fuzz list)
for target in $targets; do
    cp "$build_dir/$target" "$OUT/"
    cat >"$OUT/$target.options" <<OPTIONS
[libfuzzer]
max_len = 8192
malloc_limit_mb = 8
OPTIONS
done

# Seeds: vectors/data/*.json frames, generated messages and saved regressions, in each target's input
# format (codec/examples/fuzz_seeds.rs). A plain build: no sanitizer flags for this helper.
(
    unset RUSTFLAGS CFLAGS CXXFLAGS LIB_FUZZING_ENGINE
    CARGO_TARGET_DIR="$WORK/seeds-target" cargo run -q -p sv2-codec --example fuzz_seeds -- \
        "$WORK/corpus" vectors/data fuzz/regressions
)
for target in $targets; do
    if [ -d "$WORK/corpus/$target" ]; then
        (cd "$WORK/corpus/$target" && zip -q -r "$OUT/${target}_seed_corpus.zip" .)
    fi
done
