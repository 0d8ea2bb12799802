#!/usr/bin/env bash
# Two builds of tagcached side by side: throughput and latency of the same
# workload against each, in alternating runs, so a change that should cost
# nothing (issue 11: recording /metrics) is measured rather than assumed.
#
# Each binary runs as its own daemon (--threads N, loopback); every round
# runs each workload on "before" then "after", or the reverse on even
# rounds, and the figures are the medians over the rounds. Besides the
# generator's throughput and latency, it reports the daemon's own CPU time
# per request (user + system, from /proc/<pid>/stat, over the measured run
# and its prefill): on a machine where the generator, not the daemon, is
# the bottleneck, that is where a cost on the request path shows. Workload: 50
# connections, 32-byte keys (100,000), 100-byte values, 90% GET / 10% SET,
# --prefill, at each pipeline depth asked.
#
# Usage: benches/before_after.sh --before DIR --after DIR --bench-bin FILE
#            [--threads N] [--bench-threads N] [--duration SECS]
#            [--rounds N] [--pipelines 1,16] [--no-shard-aware]
#   DIR/tagcached is each daemon; FILE is the load generator
#   (tagcached-bench). Prints a markdown table. --no-shard-aware passes
#   the flag of that name to the generator, so requests hop between
#   shards as a client written from protocol.md alone starts out.
# Environment: BEFORE_AFTER_PORT (default 23391; "after" uses the next).
set -euo pipefail

BEFORE=""
AFTER=""
BENCH=""
THREADS=1
BENCH_THREADS=1
DURATION=5
ROUNDS=5
PIPELINES="1,16"
AWARE=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --before) BEFORE="$2"; shift 2 ;;
        --after) AFTER="$2"; shift 2 ;;
        --bench-bin) BENCH="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --bench-threads) BENCH_THREADS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --pipelines) PIPELINES="$2"; shift 2 ;;
        --no-shard-aware) AWARE="--no-shard-aware"; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "before_after.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [[ -z "$BEFORE" || -z "$AFTER" || -z "$BENCH" ]]; then
    echo "before_after.sh: --before, --after and --bench-bin are required" >&2
    exit 2
fi

PORT="${BEFORE_AFTER_PORT:-23391}"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

start() { # name dir port
    "$2/tagcached" --port "$3" --bind 127.0.0.1 --threads "$THREADS" --memory 512MiB \
        --log-level warn 2>"$WORK/$1.log" &
    PIDS+=($!)
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "before_after.sh: $1 did not start" >&2
    cat "$WORK/$1.log" >&2
    exit 1
}
start before "$BEFORE" "$PORT"
start after "$AFTER" "$((PORT + 1))"
declare -A PID_OF=([before]="${PIDS[0]}" [after]="${PIDS[1]}")
TICKS="$(getconf CLK_TCK)"
cpu_ticks() { # pid: user + system clock ticks so far
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

IFS=',' read -r -a DEPTHS <<<"$PIPELINES"
for round in $(seq "$ROUNDS"); do
    order=(before after)
    if ((round % 2 == 0)); then order=(after before); fi
    for depth in "${DEPTHS[@]}"; do
        for name in "${order[@]}"; do
            port="$PORT"
            [[ "$name" == after ]] && port="$((PORT + 1))"
            echo "before_after.sh: round $round/$ROUNDS p$depth on $name" >&2
            cpu_before="$(cpu_ticks "${PID_OF[$name]}")"
            "$BENCH" --server "127.0.0.1:$port" --duration "$DURATION" --threads "$BENCH_THREADS" \
                --json --quiet --connections 50 --pipeline "$depth" --keys 100000 \
                --key-size 32 --value-size 100 --get-ratio 0.9 --set-ratio 0.1 --prefill $AWARE \
                >"$WORK/$name-p$depth-$round.json"
            cpu_after="$(cpu_ticks "${PID_OF[$name]}")"
            echo "$(((cpu_after - cpu_before))) $TICKS" >"$WORK/$name-p$depth-$round.cpu"
        done
    done
done

python3 - "$WORK" "$ROUNDS" "${DEPTHS[@]}" <<'PY'
import json, statistics, sys
work, rounds, depths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def runs(name, depth):
    out = []
    for r in range(1, rounds + 1):
        m = json.load(open(f"{work}/{name}-p{depth}-{r}.json"))
        ticks, per_second = map(int, open(f"{work}/{name}-p{depth}-{r}.cpu").read().split())
        # The prefill's requests ran on the daemon too: one SET per key.
        requests = m["ops"] + 100000
        m["cpu_us_per_op"] = ticks / per_second * 1e6 / requests
        out.append(m)
    return out
print("| workload | build | ops/s (median) | ops/s per round | p50 µs | p99 µs | daemon CPU µs/request |")
print("|---|---|---:|---|---:|---:|---:|")
for depth in depths:
    base = None
    for name in ("before", "after"):
        ms = runs(name, depth)
        ops = statistics.median(m["ops_per_sec"] for m in ms)
        p50 = statistics.median(m["latency_us"]["p50"] for m in ms)
        p99 = statistics.median(m["latency_us"]["p99"] for m in ms)
        each = ", ".join(f"{m['ops_per_sec'] / 1000:.0f}k" for m in ms)
        cpu = statistics.median(m["cpu_us_per_op"] for m in ms)
        change = "" if base is None else f" ({(ops / base[0] - 1) * 100:+.1f}%)"
        cpu_change = "" if base is None else f" ({(cpu / base[1] - 1) * 100:+.1f}%)"
        base = (ops, cpu) if base is None else base
        print(f"| p{depth} | {name} | {ops:,.0f}{change} | {each} | {p50:.0f} | {p99:.0f} | {cpu:.3f}{cpu_change} |")
PY
