#!/usr/bin/env bash
# Instructions the daemon executes per request, counted by callgrind: the
# same count for the same binary and workload however busy the machine is,
# so a change of a few percent in the request path's own code shows, where
# throughput on a shared two-core machine moves by 2-9% from run to run.
# It counts user-space instructions only: not the kernel's work (system
# calls, the scheduler), nor cache misses, so it complements
# before_after.sh, it does not replace it.
#
# Each build runs under valgrind --tool=callgrind with --threads N on
# loopback; the keys are stored first (--prefill), the counters zeroed,
# then --requests requests run (50 connections, or --connections; 32-byte
# keys over --keys, 100-byte values, 90% GET / 10% SET, pipeline depth
# --pipeline) and the counters dumped. Reported per request: the request
# path, and apart the background sweep, which runs every 10 ms of wall
# time and so costs far more per request under valgrind (30-50 times
# slower) than outside it.
#
# Usage: benches/instructions.sh --bench-bin FILE [--threads 1,2]
#            [--pipeline N] [--requests N] [--connections N] [--keys N]
#            [--no-shard-aware] NAME=DIR...
#   DIR/tagcached is each build, NAME its label in the table. Needs
#   valgrind and python3. Prints a markdown table.
# Environment: INSTRUCTIONS_PORT (default 23491).
set -euo pipefail

BENCH=""
THREADS="1,2"
PIPELINE=1
REQUESTS=20000
CONNECTIONS=50
KEYS=1000
AWARE=""
BUILDS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bench-bin) BENCH="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --pipeline) PIPELINE="$2"; shift 2 ;;
        --requests) REQUESTS="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        --keys) KEYS="$2"; shift 2 ;;
        --no-shard-aware) AWARE="--no-shard-aware"; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *=*) BUILDS+=("$1"); shift ;;
        *) echo "instructions.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [[ -z "$BENCH" || ${#BUILDS[@]} -eq 0 ]]; then
    echo "instructions.sh: --bench-bin and at least one NAME=DIR are required" >&2
    exit 2
fi
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind" >&2; exit 2; }

PORT="${INSTRUCTIONS_PORT:-23491}"
WORK="$(mktemp -d)"
DAEMON=""
cleanup() {
    [[ -n "$DAEMON" ]] && kill "$DAEMON" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

workload() { # port, then extra flags
    local port="$1"
    shift
    "$BENCH" --server "127.0.0.1:$port" --quiet --threads 1 --connections "$CONNECTIONS" \
        --keys "$KEYS" --key-size 32 --value-size 100 --get-ratio 0.9 --set-ratio 0.1 "$@" \
        >/dev/null
}

IFS=',' read -r -a THREAD_COUNTS <<<"$THREADS"
for build in "${BUILDS[@]}"; do
    name="${build%%=*}"
    dir="${build#*=}"
    for threads in "${THREAD_COUNTS[@]}"; do
        echo "instructions.sh: $name, --threads $threads" >&2
        out="$WORK/$name-t$threads"
        valgrind --tool=callgrind --callgrind-out-file="$out.cg" --compress-strings=no \
            --compress-pos=no "$dir/tagcached" --port "$PORT" --bind 127.0.0.1 \
            --threads "$threads" --memory 512MiB --log-level warn 2>"$out.log" &
        DAEMON=$!
        started=""
        for _ in $(seq 200); do
            (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && started=yes && break
            sleep 0.1
        done
        if [[ -z "$started" ]]; then
            echo "instructions.sh: $name did not start under valgrind" >&2
            cat "$out.log" >&2
            exit 1
        fi
        workload "$PORT" --prefill --requests 0
        # Two runs, of N and 3N requests, each counted on its own (dumps
        # .1 and .2): their difference is 2N requests' worth, without what
        # a run costs whatever its length (50 connections and their HELLO).
        for requests in "$REQUESTS" "$((3 * REQUESTS))"; do
            callgrind_control --zero "$DAEMON" >/dev/null 2>&1
            workload "$PORT" --requests "$requests" --pipeline "$PIPELINE" $AWARE
            callgrind_control --dump "$DAEMON" >/dev/null 2>&1
        done
        kill "$DAEMON"
        wait "$DAEMON" 2>/dev/null || true
        DAEMON=""
    done
done

python3 - "$WORK" "$REQUESTS" "$THREADS" "${BUILDS[@]}" <<'PY'
import sys
work, requests, threads, builds = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4:]

def is_sweep(function):
    # The worker's sweep task, or the shard's sweep where a build did not
    # inline it there (fat LTO does).
    return "worker::sweep" in function or "Shard>::sweep" in function

def counts(path):
    """Total instructions, and those spent inside the shard's sweep."""
    total = sweep = 0
    function = callee = None
    after_call = False
    for line in open(path):
        if line.startswith("summary:"):
            total = int(line.split()[1])
        elif line.startswith("fn="):
            function = line[3:].strip()
        elif line.startswith("cfn="):
            callee = line[4:].strip()
        elif line.startswith("calls="):
            after_call = True
        elif after_call and line[:1].isdigit():
            # The line after calls= is the callee's inclusive cost.
            after_call = False
            if is_sweep(callee) and not is_sweep(function):
                sweep += int(line.split()[1])
    return total, sweep

print("| build | --threads | instructions per request | of them the sweep (time-driven) |")
print("|---|---:|---:|---:|")
for build in builds:
    name = build.split("=", 1)[0]
    for t in threads:
        short_total, short_sweep = counts(f"{work}/{name}-t{t}.cg.1")
        long_total, long_sweep = counts(f"{work}/{name}-t{t}.cg.2")
        total, sweep = long_total - short_total, long_sweep - short_sweep
        n = 2 * requests
        print(f"| {name} | {t} | {(total - sweep) / n:,.0f} | {sweep / n:,.0f} |")
PY
