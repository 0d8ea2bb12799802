#!/usr/bin/env bash
# What TLS costs (issue 11): tagcached serving plain TCP and TLS (TLS 1.3,
# an ECDSA P-256 certificate made by tagcached-test-pki), with one and two
# worker threads, driven by tagcached-bench (--tls-ca for the TLS rows).
#
# Workload: 50 connections, 100,000 keys of 32 bytes, 100-byte values, 90%
# GET / 10% SET, --prefill, shard-aware, at pipeline 1 and 16; the handshake
# is part of connecting, not of the measured seconds. Every daemon runs for
# the whole script; within a round every row takes its turn, one after
# another, and the order rotates by one row each round; each figure is the
# median of --rounds runs.
#
# Usage: benches/tls.sh [--duration SECS] [--rounds N] [--baseline DIR]
#                       [--out FILE]
#   --baseline DIR   also measure plain TCP on DIR/tagcached (a build
#                    without TLS), rows marked "(before)"
#   --out FILE       also write the markdown table to FILE
# Builds tagcached and tagcached-bench (release) and tagcached-test-pki
# (debug) into CARGO_TARGET_DIR or ./target. Ports 24311 to 24316.
set -euo pipefail

DURATION=5
ROUNDS=3
BASELINE_DIR=""
OUT=""
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
INVOCATION="benches/tls.sh$(printf ' %q' "$@")"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --baseline) BASELINE_DIR="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "tls.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
log() { echo "tls.sh: $*" >&2; }
die() { log "$*"; exit 1; }
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration wants whole seconds"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds wants a positive number"
command -v python3 >/dev/null || die "python3 is not installed"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p tagcached -p tagcached-bench) \
    || die "the release build failed"
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build -q -p tagcached-tests --bin tagcached-test-pki) \
    || die "building tagcached-test-pki failed"
DAEMON="$(realpath "$TARGET_DIR/release/tagcached")"
BENCH="$(realpath "$TARGET_DIR/release/tagcached-bench")"
BEFORE=""
if [[ -n $BASELINE_DIR ]]; then
    BEFORE="$(realpath "$BASELINE_DIR/tagcached")"
    [[ -x $BEFORE ]] || die "$BEFORE is missing"
fi

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
"$TARGET_DIR/debug/tagcached-test-pki" "$WORK/pki"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
declare -A PORT TLS_ARGS
SERVER_LINES=()
# start NAME PORT TLS(yes/no) BINARY THREADS
start() {
    local name=$1 port=$2 tls=$3 binary=$4 threads=$5 pid
    local command=("$binary" --port "$port" --bind 127.0.0.1 --threads "$threads" --memory 512MiB --log-level warn)
    TLS_ARGS[$name]=""
    if [[ $tls == yes ]]; then
        command+=(--tls-cert "$WORK/pki/server.pem" --tls-key "$WORK/pki/server.key")
        TLS_ARGS[$name]="--tls-ca $WORK/pki/ca.pem"
    fi
    port_busy "$port" && die "port $port is in use"
    "${command[@]}" >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    PORT[$name]=$port
    SERVER_LINES+=("$name: ${command[*]}")
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/$name.log" >&2; die "$name exited"; }
        port_busy "$port" && return 0
        sleep 0.1
    done
    die "$name did not listen"
}
ROWS=(plain-t1 tls-t1 plain-t2 tls-t2)
start plain-t1 24311 no "$DAEMON" 1
start tls-t1 24312 yes "$DAEMON" 1
start plain-t2 24313 no "$DAEMON" 2
start tls-t2 24314 yes "$DAEMON" 2
if [[ -n $BEFORE ]]; then
    start before-t1 24315 no "$BEFORE" 1
    start before-t2 24316 no "$BEFORE" 2
    ROWS=(plain-t1 before-t1 tls-t1 plain-t2 before-t2 tls-t2)
fi

RESULTS="$WORK/results.tsv"
BENCH_LINE=""
for round in $(seq "$ROUNDS"); do
    count=${#ROWS[@]}
    for pipeline in 1 16; do
        for i in $(seq 0 $((count - 1))); do
            row=${ROWS[$(((i + round - 1) % count))]}
            # shellcheck disable=SC2086 # TLS_ARGS holds two words or none
            args=(--server "127.0.0.1:${PORT[$row]}" ${TLS_ARGS[$row]} --connections 50
                --pipeline "$pipeline" --keys 100000 --key-size 32 --value-size 100
                --get-ratio 0.9 --set-ratio 0.1 --prefill --duration "$DURATION" --json --quiet)
            BENCH_LINE="tagcached-bench ${args[*]}"
            log "round $round, pipeline $pipeline: $row"
            "$BENCH" "${args[@]}" >"$WORK/run.json"
            python3 - "$row" "$pipeline" "$WORK/run.json" <<'PY' | tee -a "$RESULTS" >&2
import json, sys
row, pipeline, path = sys.argv[1:]
run = json.load(open(path))
assert run["errors"] == 0, run
latency = run["latency_us"]
print(f"{row}\t{pipeline}\t{run['ops_per_sec']}\t{latency['p50']}\t{latency['mean']}\t{latency['p99']}")
PY
        done
    done
done

TABLE="$WORK/table.md"
python3 - "$RESULTS" "$ROUNDS" "$DURATION" "${ROWS[@]}" >"$TABLE" <<'PY'
import statistics, sys
path, rounds, duration, *rows = sys.argv[1:]
runs = {}
for line in open(path):
    row, pipeline, ops, p50, mean, p99 = line.split("\t")
    runs.setdefault((row, int(pipeline)), []).append((float(ops), float(p50), float(mean), float(p99)))
def median(values):
    return statistics.median(values)
print(f"| daemon | pipeline | ops/s | vs plain | p50 µs | mean µs | p99 µs |")
print("|---|---:|---:|---:|---:|---:|---:|")
for pipeline in (1, 16):
    for row in rows:
        samples = runs[(row, pipeline)]
        ops = median([s[0] for s in samples])
        plain = median([s[0] for s in runs[("plain-" + row.split("-")[1], pipeline)]])
        share = f"{100 * ops / plain:.0f}%"
        p50, mean, p99 = (median([s[i] for s in samples]) for i in (1, 2, 3))
        print(f"| {row} | {pipeline} | {ops:,.0f} | {share} | {p50:.0f} | {mean:.0f} | {p99:.0f} |")
PY
{
    echo "Measured with \`$INVOCATION\` (medians of $ROUNDS runs of ${DURATION} s each)."
    echo
    cat "$TABLE"
    echo
    echo "Daemons:"
    echo
    for line in "${SERVER_LINES[@]}"; do echo "    $line"; done
    echo
    echo "Each run (the TLS rows add --tls-ca FILE):"
    echo
    echo "    $BENCH_LINE"
} | tee "${OUT:-/dev/null}"
