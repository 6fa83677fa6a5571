#!/bin/sh
# Real-mode loopback benchmark: 3 node processes per protocol, closed loop with no think time,
# 1/16/64/256 clients, fsync on and off. Prints a markdown table (docs/PERFORMANCE.md).
# Usage: realnet/bench/real-bench.sh [QUORUMLAB_BINARY] [OUT_DIR]
set -eu
QL=${1:-target/release/quorumlab}
OUT=${2:-runs/real-bench}
DUR=${DUR:-4}
mkdir -p "$OUT"
echo "| protocol | fsync | clients | ok/s | p50 ms | p99 ms | ok fraction | linearizable |"
echo "|---|---|---|---|---|---|---|---|"
for p in ${PROTOCOLS:-single raft ensemble}; do
  for fs in on off; do
    for c in ${CLIENTS:-1 16 64 256}; do
      d="$OUT/$p-fsync$fs-c$c"
      flag=""; [ "$fs" = off ] && flag="--no-fsync"
      "$QL" real --protocol "$p" --nodes 3 --out "$d" $flag \
        --set workload.clients=$c --set workload.think_ms=0 --set workload.keys=1000 \
        --set workload.warmup_s=1 --set workload.duration_s=$DUR --set 'faults=[]' >/dev/null 2>"$d.err" || true
      python3 - "$d/summary.json" "$p" "$fs" "$c" <<'PY'
import json, sys
f, p, fs, c = sys.argv[1:]
try:
    s = json.load(open(f))
except Exception as e:
    print(f"| {p} | {fs} | {c} | failed | | | | |"); sys.exit()
a = s["latency_us"]["all"]
print(f"| {p} | {fs} | {c} | {s['throughput_ok_per_s']:.0f} | {a['p50']/1000:.2f} | {a['p99']/1000:.2f} | {s['availability']['ok_fraction']:.3f} | {s['linearizable']} |")
PY
    done
  done
done
