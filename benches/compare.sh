#!/usr/bin/env bash
# Runs a criterion bench (ours vs SRI) with short measurement times, then prints a table of mean times
# and ours/SRI throughput ratios from criterion's estimates.json files.
#
#   benches/compare.sh                       # the codec bench, 1 s warm-up, 3 s measurement
#   BENCH=noise benches/compare.sh           # the Noise bench (handshakes, transport)
#   WARMUP=2 MEASURE=10 benches/compare.sh   # longer, less noisy
#   benches/compare.sh mix                   # extra arguments go to criterion (here: a filter)
#   NO_RUN=1 benches/compare.sh              # only print the table from the last run's results
#   STRICT=1 benches/compare.sh              # exit 1 if a target on the mix is missed
#
# Targets: codec (on the mix) decode >= 3x and encode >= 2x SRI's throughput; noise: transport at 64 B
# >= 1.5x, handshakes >= 1x.
# Needs cargo and python3. Honours CARGO_TARGET_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
WARMUP="${WARMUP:-1}"
MEASURE="${MEASURE:-3}"
BENCH="${BENCH:-codec}"
target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
criterion_dir="$target_dir/criterion"

since=0
if [[ -z "${NO_RUN:-}" ]]; then
    since="$(date +%s)"
    cargo bench -p sv2-benches --bench "$BENCH" -- \
        --warm-up-time "$WARMUP" --measurement-time "$MEASURE" "$@" >&2
fi

echo
echo "host: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), warm-up ${WARMUP}s, measurement ${MEASURE}s"
python3 - "$criterion_dir" "$since" "$BENCH" <<'PY'
import json, os, sys

root, since, bench_name = sys.argv[1], float(sys.argv[2]), sys.argv[3]
TARGETS = {("encode", "mix"): 2.0, ("decode", "mix"): 3.0}
NOISE_TARGETS = {("noise_handshake", ""): 1.0, ("noise_transport", "64B"): 1.5}
GROUPS = ("noise_handshake", "noise_transport") if bench_name == "noise" else ("encode", "decode")

# (op, subject) -> {variant: ns per message}
results = {}
for dirpath, dirnames, filenames in os.walk(root):
    if os.path.basename(dirpath) != "new" or "estimates.json" not in filenames:
        continue
    est_path = os.path.join(dirpath, "estimates.json")
    if os.path.getmtime(est_path) < since:
        continue  # left over from an earlier run that did not include this benchmark
    with open(os.path.join(dirpath, "benchmark.json")) as f:
        bench = json.load(f)
    parts = (bench.get("group_id") or "").split("/")
    if parts[0] not in GROUPS:
        continue
    parts = (parts + [""])[:2]
    with open(est_path) as f:
        mean_ns = json.load(f)["mean"]["point_estimate"]
    throughput = bench.get("throughput") or {}
    elements = throughput.get("Elements") or 1
    results.setdefault(tuple(parts), {})[bench["function_id"]] = mean_ns / elements

if not results:
    sys.exit(f"no criterion results under {root}")

def order(key):
    op, subject = key
    return (op != "decode", subject != "mix", subject)

if bench_name == "noise":
    print()
    print("| benchmark | ours ns/op | SRI ns/op | ours/SRI throughput | target |")
    print("|---|---:|---:|---:|---|")
    missed = []
    for key in sorted(results):
        v = results[key]
        ours, sri = v.get("ours"), v.get("sri")
        target = NOISE_TARGETS.get(key)
        status = "-"
        if target is not None and ours and sri:
            ok = sri / ours >= target
            status = f">= {target:g}x {'ok' if ok else 'MISSED'}"
            if not ok:
                missed.append("/".join(k for k in key if k))
        name = "/".join(k for k in key if k)
        ratio_text = "-" if not (ours and sri) else f"{sri / ours:.2f}x"
        print(f"| {name} | {ours or 0:,.0f} | {sri or 0:,.0f} | {ratio_text} | {status} |")
    print()
    if missed:
        print("targets missed: " + ", ".join(missed))
        sys.exit(1 if os.environ.get("STRICT") else 0)
    sys.exit(0)

def fmt(ns):
    return "-" if ns is None else f"{ns:,.1f}"

def ratio(sri, ours):
    return "-" if sri is None or ours is None else f"{sri / ours:.2f}x"

print()
print("| op | message | ours ns/msg | SRI ns/msg | ours/SRI throughput | target | SRI via Encoder/Decoder ns/msg (ratio) | ours via FrameDecoder ns/msg | no-copy ours / SRI ns/msg (ratio) |")
print("|---|---|---:|---:|---:|---|---:|---:|---:|")
missed = []
for key in sorted(results, key=order):
    v = results[key]
    op, subject = key
    ours, sri = v.get("ours"), v.get("sri")
    ref = v.get("sri_encoder") if op == "encode" else v.get("sri_decoder")
    target = TARGETS.get(key)
    status = "-"
    if target is not None and ours is not None and sri is not None:
        ok = sri / ours >= target
        status = f">= {target:g}x {'ok' if ok else 'MISSED'}"
        if not ok:
            missed.append(f"{op}/{subject}")
    nocopy = "-"
    if "ours_nocopy" in v or "sri_nocopy" in v:
        nocopy = f"{fmt(v.get('ours_nocopy'))} / {fmt(v.get('sri_nocopy'))} ({ratio(v.get('sri_nocopy'), v.get('ours_nocopy'))})"
    print(f"| {op} | {subject} | {fmt(ours)} | {fmt(sri)} | {ratio(sri, ours)} | {status} "
          f"| {fmt(ref)} ({ratio(ref, ours)}) | {fmt(v.get('ours_decoder'))} | {nocopy} |")

print()
if missed:
    print("targets missed: " + ", ".join(missed))
    if os.environ.get("STRICT"):
        sys.exit(1)
elif all(k in results for k in TARGETS):
    print("targets met: decode/mix >= 3x, encode/mix >= 2x")
PY
