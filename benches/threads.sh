#!/usr/bin/env bash
# What a hop between tagcached's worker threads costs (issue 7): tagcached
# with one and two worker threads, against memcached -t 2 (meta protocol) and
# Redis, on loopback, with the generator on the same cores.
#
# The generator runs with --no-shard-aware against tagcached, as a client
# written from protocol.md alone would: with two shards about half the keys
# arrive on the other worker's connection and take a hop. One more row,
# tagcached-t2-shard-aware, drives the same two-thread daemon shard-aware
# (the generator's default), where no key hops; it must not get slower.
#
# Workload: 50 connections, 32-byte keys (100,000), 100-byte values, 90% GET
# / 10% SET, --prefill, at pipeline 1 and 16. Each figure is the median of
# --rounds runs; within a round every row takes its turn, one after another,
# and the order rotates by one row each round.
#
# Usage: benches/threads.sh [--duration SECS] [--rounds N] [--bench-threads N]
#                           [--workloads p1,p16] [--out FILE] [--into FILE]
#                           [--bin DIR] [--bench-bin FILE] [--baseline DIR]
#   --bench-threads N generator threads (default: one per core, the
#                    generator's own default)
#   --bin DIR        the daemon to measure is DIR/tagcached; nothing of the
#                    server is built (default: cargo build --release into
#                    CARGO_TARGET_DIR or ./target)
#   --bench-bin FILE the generator (default: this workspace's tagcached-bench,
#                    built as above; it does not depend on the server crate)
#   --baseline DIR   also measure DIR/tagcached, rows suffixed " (before)", in
#                    the same rounds; the generator is the same for both
#   --workloads LIST pipeline depths as pN, comma-separated (default p1,p16)
#   --out FILE       also write the markdown section to FILE
#   --into FILE      put the section into FILE (benches/BENCHMARKS.md): in
#                    place of its "## Thread hops" section, or at the end
# Environment: CARGO_TARGET_DIR; ports THREADS_TAGCACHED_T1_PORT,
# THREADS_TAGCACHED_T2_PORT, THREADS_BEFORE_T1_PORT, THREADS_BEFORE_T2_PORT,
# THREADS_MEMCACHED_PORT, THREADS_REDIS_PORT (defaults 23311, 23312, 23321,
# 23322, 23211, 23379: apart from compare.sh's, so both can run at once).
set -euo pipefail

DURATION=5
ROUNDS=3
BENCH_THREADS="$(nproc)"
WORKLOAD_LIST="p1,p16"
OUT=""
INTO=""
NEW_DIR=""
BENCH=""
BASELINE_DIR=""
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
INVOCATION="benches/threads.sh$(printf ' %q' "$@")"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --bench-threads) BENCH_THREADS="$2"; shift 2 ;;
        --workloads) WORKLOAD_LIST="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --into) INTO="$2"; shift 2 ;;
        --bin) NEW_DIR="$2"; shift 2 ;;
        --bench-bin) BENCH="$2"; shift 2 ;;
        --baseline) BASELINE_DIR="$2"; shift 2 ;;
        -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
        *) echo "threads.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

log() { echo "threads.sh: $*" >&2; }
quote() { local words; words="$(printf '%q ' "$@")"; echo "${words% }"; }
die() { log "$*"; exit 1; }

[[ $DURATION =~ ^[1-9][0-9]*$ ]] || { log "--duration wants whole seconds, got $DURATION"; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { log "--rounds wants a positive number, got $ROUNDS"; exit 2; }
[[ $BENCH_THREADS =~ ^[1-9][0-9]*$ ]] || { log "--bench-threads wants a positive number, got $BENCH_THREADS"; exit 2; }
IFS=',' read -r -a WORKLOADS <<<"$WORKLOAD_LIST"
[[ ${#WORKLOADS[@]} -gt 0 ]] || { log "--workloads is empty"; exit 2; }
for workload in "${WORKLOADS[@]}"; do
    [[ $workload =~ ^p[1-9][0-9]*$ ]] || { log "--workloads wants pN items such as p1,p16, got $workload"; exit 2; }
done

TAGCACHED_T1_PORT="${THREADS_TAGCACHED_T1_PORT:-23311}"
TAGCACHED_T2_PORT="${THREADS_TAGCACHED_T2_PORT:-23312}"
BEFORE_T1_PORT="${THREADS_BEFORE_T1_PORT:-23321}"
BEFORE_T2_PORT="${THREADS_BEFORE_T2_PORT:-23322}"
MEMCACHED_PORT="${THREADS_MEMCACHED_PORT:-23211}"
REDIS_PORT="${THREADS_REDIS_PORT:-23379}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
KEYS=100000

# --- tools and ports (before a build that may take minutes) -------------------
for tool in memcached redis-server python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

PORTS=("$TAGCACHED_T1_PORT" "$TAGCACHED_T2_PORT" "$MEMCACHED_PORT" "$REDIS_PORT")
[[ -n $BASELINE_DIR ]] && PORTS+=("$BEFORE_T1_PORT" "$BEFORE_T2_PORT")
if [[ $(printf '%s\n' "${PORTS[@]}" | sort -u | wc -l) -ne ${#PORTS[@]} ]]; then
    die "two servers share a port: ${PORTS[*]}"
fi
for port in "${PORTS[@]}"; do
    port_busy "$port" && die "port $port is already in use (see the THREADS_*_PORT variables)"
done

# --- binaries ------------------------------------------------------------------
packages=()
[[ -z $NEW_DIR ]] && packages+=(-p tagcached)
[[ -z $BENCH ]] && packages+=(-p tagcached-bench)
if [[ ${#packages[@]} -gt 0 ]]; then
    log "building ${packages[*]} (release) in $TARGET_DIR"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q "${packages[@]}") \
        || die "the build failed; --bin DIR measures an already built daemon"
fi
NEW_DAEMON="${NEW_DIR:-$TARGET_DIR/release}/tagcached"
BENCH="${BENCH:-$TARGET_DIR/release/tagcached-bench}"
BEFORE_DAEMON=""
[[ -n $BASELINE_DIR ]] && BEFORE_DAEMON="$BASELINE_DIR/tagcached"
for binary in "$NEW_DAEMON" "$BENCH" ${BEFORE_DAEMON:+"$BEFORE_DAEMON"}; do
    [[ -x $binary ]] || die "$binary is missing or not executable"
done
# Absolute, so the command lines in the report say which file ran.
NEW_DAEMON="$(realpath "$NEW_DAEMON")"
BENCH="$(realpath "$BENCH")"
[[ -n $BEFORE_DAEMON ]] && BEFORE_DAEMON="$(realpath "$BEFORE_DAEMON")"

# --- servers -------------------------------------------------------------------
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        # tagcached drains its connections on SIGTERM; give any server 5 s.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# name -> port and pid; and the exact command lines, for the report.
declare -A SERVER_PORT SERVER_PID
SERVER_LINES=()

# start_server NAME PORT COMMAND...: starts it, logging to $WORK/NAME.log,
# and returns once it listens; fails if it exits or takes over 10 s.
start_server() {
    local name=$1 port=$2 pid
    shift 2
    port_busy "$port" && die "port $port ($name) is already in use"
    "$@" >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    SERVER_PORT[$name]=$port
    SERVER_PID[$name]=$pid
    SERVER_LINES+=("$(quote "$@")")
    for _ in $(seq 100); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited before listening on port $port; its log:"
            tail -n 20 "$WORK/$name.log" >&2
            exit 1
        fi
        port_busy "$port" && return 0
        sleep 0.1
    done
    die "$name did not listen on port $port within 10 s"
}

tagcached_server() { # name binary threads port
    start_server "$1" "$4" "$2" --port "$4" --bind 127.0.0.1 --threads "$3" \
        --memory 1GiB --log-level warn
}

tagcached_server tagcached-t1 "$NEW_DAEMON" 1 "$TAGCACHED_T1_PORT"
tagcached_server tagcached-t2 "$NEW_DAEMON" 2 "$TAGCACHED_T2_PORT"
if [[ -n $BEFORE_DAEMON ]]; then
    tagcached_server before-t1 "$BEFORE_DAEMON" 1 "$BEFORE_T1_PORT"
    tagcached_server before-t2 "$BEFORE_DAEMON" 2 "$BEFORE_T2_PORT"
fi
start_server memcached-t2 "$MEMCACHED_PORT" \
    memcached -t 2 -m 1024 -l 127.0.0.1 -p "$MEMCACHED_PORT" -u "$(id -un)"
start_server redis "$REDIS_PORT" \
    redis-server --save '' --appendonly no --port "$REDIS_PORT" --bind 127.0.0.1 --loglevel warning

# --- rows ------------------------------------------------------------------------
# label|server|protocol|expected shards|shard-aware (yes/no)
ROWS=(
    "tagcached-t1|tagcached-t1|tagcached|1|no"
    "tagcached-t2|tagcached-t2|tagcached|2|no"
    "tagcached-t2-shard-aware|tagcached-t2|tagcached|2|yes"
)
if [[ -n $BEFORE_DAEMON ]]; then
    # Each before row next to its after row, so the two run back to back.
    ROWS=(
        "tagcached-t1|tagcached-t1|tagcached|1|no"
        "tagcached-t1 (before)|before-t1|tagcached|1|no"
        "tagcached-t2|tagcached-t2|tagcached|2|no"
        "tagcached-t2 (before)|before-t2|tagcached|2|no"
        "tagcached-t2-shard-aware|tagcached-t2|tagcached|2|yes"
        "tagcached-t2-shard-aware (before)|before-t2|tagcached|2|yes"
    )
fi
ROWS+=(
    "memcached-t2|memcached-t2|memcached|-|-"
    "redis|redis|redis|-|-"
)

# workload_args pN: the generator's flags for the workload, one per line.
workload_args() {
    printf '%s\n' --connections 50 --pipeline "${1#p}" --keys "$KEYS" --key-size 32 \
        --value-size 100 --get-ratio 0.9 --set-ratio 0.1 --prefill
}

# row_command ROW WORKLOAD: the generator's command line, one word per line.
row_command() {
    local server protocol aware
    IFS='|' read -r _ server protocol _ aware <<<"$1"
    printf '%s\n' "$BENCH" --server "127.0.0.1:${SERVER_PORT[$server]}" --protocol "$protocol" \
        --duration "$DURATION" --threads "$BENCH_THREADS" --json --quiet
    workload_args "$2"
    [[ $protocol == tagcached && $aware == no ]] && echo --no-shard-aware
    return 0
}

RUNS=$(( ROUNDS * ${#WORKLOADS[@]} * ${#ROWS[@]} ))
log "$RUNS runs of ${DURATION} s (plus prefill each): about $(( RUNS * (DURATION + 2) / 60 + 1 )) min"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
run=0
for round in $(seq "$ROUNDS"); do
    for workload in "${WORKLOADS[@]}"; do
        # Every row takes its turn within the round, so drifting load on the
        # machine spreads over all of them; rotating the order each round
        # keeps any one row from always following the same neighbour.
        for i in "${!ROWS[@]}"; do
            row="${ROWS[$(( (i + round - 1) % ${#ROWS[@]} ))]}"
            IFS='|' read -r label server _ shards aware <<<"$row"
            run=$(( run + 1 ))
            log "[$run/$RUNS] round $round/$ROUNDS: $workload on $label"
            mapfile -t command < <(row_command "$row" "$workload")
            # The server's CPU time over the measured phase, reported by the
            # generator; not in the command lines shown, where the pid would
            # mean nothing.
            if ! json="$("${command[@]}" --server-pid "${SERVER_PID[$server]}")"; then
                log "the generator failed: $(quote "${command[@]}")"
                log "$server's log:"
                tail -n 20 "$WORK/$server.log" >&2
                exit 1
            fi
            python3 -c '
import json, sys
d = json.loads(sys.argv[1])
d.update(workload=sys.argv[2], label=sys.argv[3], round=int(sys.argv[4]),
         expect_shards=sys.argv[5], expect_aware=sys.argv[6])
print(json.dumps(d))' "$json" "$workload" "$label" "$round" "$shards" "$aware" >>"$RESULTS"
        done
    done
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- report ----------------------------------------------------------------------
MACHINE="$(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)$(lscpu | sed -n 's/^Hypervisor vendor: */, a guest of /p' | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, Linux $(uname -r)"
daemon_line() { echo "\`$1\` ($("$1" --version), sha256 $(sha256sum "$1" | cut -c1-12))"; }
DAEMONS="$(daemon_line "$NEW_DAEMON")"
[[ -n $BEFORE_DAEMON ]] && DAEMONS+=";
  before: $(daemon_line "$BEFORE_DAEMON")"
VERSIONS="$(memcached -V); $(redis-server --version | awk '{print $1, $2, $3}')"
GIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
[[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]] && GIT+=" with uncommitted changes"
SERVER_COMMANDS="$(printf '    %s\n' "${SERVER_LINES[@]}")"
GENERATOR_COMMANDS="$(for workload in "${WORKLOADS[@]}"; do
    for row in "${ROWS[@]}"; do
        mapfile -t command < <(row_command "$row" "$workload")
        command[0]=tagcached-bench
        echo "    $(quote "${command[@]}")  # $workload, ${row%%|*}"
    done
done)"

LABELS="$(for row in "${ROWS[@]}"; do echo "${row%%|*}"; done)"
SECTION_FILE="$WORK/section.md"
python3 - "$RESULTS" "$SECTION_FILE" "$INVOCATION" "$DURATION" "$ROUNDS" "$BENCH_THREADS" "$MACHINE" \
    "$DAEMONS" "$VERSIONS" "$GIT" "$BENCH" "$LOAD_BEFORE" "$LOAD_AFTER" \
    "$SERVER_COMMANDS" "$GENERATOR_COMMANDS" "$LABELS" <<'PY'
import datetime, json, statistics, sys

(results_path, out_path, invocation, duration, rounds, threads, machine, daemons, versions, git,
 bench, load_before, load_after, server_commands, generator_commands, labels) = sys.argv[1:17]
labels = labels.splitlines()
runs = [json.loads(line) for line in open(results_path)]
workloads = list(dict.fromkeys(r["workload"] for r in runs))
has_before = any(label.endswith(" (before)") for label in labels)
NAN = float("nan")

def median(values):
    return statistics.median(values) if values else NAN

def ratio(a, b):
    return a / b if b and b == b else NAN

def times(x):
    return "-" if x != x else f"{x:.2f}×"

# A run that did not get the server or the shard-awareness it was meant to
# would make a row measure something else: say so under the table.
notes = []
for r in runs:
    if r["expect_shards"] != "-" and str(r.get("shard_count")) != r["expect_shards"]:
        notes.append(f"{r['workload']} round {r['round']}, {r['label']}: the server reported "
                     f"{r.get('shard_count')} shards, expected {r['expect_shards']}")
    if r["expect_aware"] != "-" and r["shard_aware"] != (r["expect_aware"] == "yes"):
        notes.append(f"{r['workload']} round {r['round']}, {r['label']}: shard-aware was "
                     f"{r['shard_aware']}, expected {r['expect_aware']}")

sections = []
for workload in workloads:
    medians = {}
    for label in labels:
        mine = [r for r in runs if r["workload"] == workload and r["label"] == label]
        ops = [r["ops_per_sec"] for r in mine]
        hits = [r["hit_ratio"] for r in mine if r["hit_ratio"] is not None]
        medians[label] = {
            "ops": median(ops),
            "spread": ratio(max(ops) - min(ops), median(ops)) if len(ops) > 1 else NAN,
            "p50": median([r["latency_us"]["p50"] for r in mine]),
            "p99": median([r["latency_us"]["p99"] for r in mine]),
            "p999": median([r["latency_us"]["p999"] for r in mine]),
            "hit": median(hits) if hits else None,
            "errors": sum(r["errors"] for r in mine),
            "cpu": median([r["cpu"]["utilization"] for r in mine if r.get("cpu")]),
            "server_us": median([r["server_cpu"]["us_per_op"] for r in mine if r.get("server_cpu")]),
            "generator_us": median([(r["cpu"]["user_s"] + r["cpu"]["system_s"]) * 1e6 / r["ops"]
                                    for r in mine if r["ops"] and r.get("cpu")]),
        }
    t2 = medians["tagcached-t2"]["ops"]
    memcached = medians["memcached-t2"]["ops"]
    columns = ["server", "ops/s", "vs tagcached-t2", "vs memcached-t2"]
    if has_before:
        columns.append("vs before")
    columns += ["p50 µs", "p99 µs", "p99.9 µs", "hit %", "errors", "generator CPU", "ops/s spread",
                "server CPU µs/op", "generator CPU µs/op"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for label in labels:
        m = medians[label]
        cells = [label, f"{m['ops']:,.0f}", times(ratio(m["ops"], t2)), times(ratio(m["ops"], memcached))]
        if has_before:
            before = medians.get(label + " (before)")
            cells.append(times(ratio(m["ops"], before["ops"])) if before else "-")
        cells += [
            f"{m['p50']:.1f}", f"{m['p99']:.1f}", f"{m['p999']:.1f}",
            "-" if m["hit"] is None else f"{m['hit'] * 100:.1f}",
            str(m["errors"]),
            "-" if m["cpu"] != m["cpu"] else f"{m['cpu'] * 100:.0f}%",
            "-" if m["spread"] != m["spread"] else f"{m['spread'] * 100:.0f}%",
            "-" if m["server_us"] != m["server_us"] else f"{m['server_us']:.2f}",
            "-" if m["generator_us"] != m["generator_us"] else f"{m['generator_us']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    hop = (f"tagcached-t2 (about half the requests hop) over tagcached-t2-shard-aware (none "
           f"hop): {times(ratio(t2, medians['tagcached-t2-shard-aware']['ops']))}; tagcached-t2 "
           f"over tagcached-t1: {times(ratio(t2, medians['tagcached-t1']['ops']))}.")
    pipeline = workload[1:]
    sections.append(f"### Pipeline {pipeline} (`{workload}`)\n\n" + "\n".join(lines) + "\n\n" + hop)

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
before_text = ("\n  Rows marked (before) run the `--baseline` daemon in the same rounds,\n"
               "  each next to its after row; \"vs before\" is after over before."
               if has_before else "")
warnings = ("\n\n**Warning**, runs that did not measure what their row says:\n\n"
            + "\n".join(f"- {n}" for n in notes)) if notes else ""
doc = f"""## Thread hops: tagcached with 1 and 2 threads, memcached -t 2, Redis

Produced by `{invocation}` on {now}.

- Machine: {machine}.
  Load average {load_before} before the runs, {load_after} after. The
  servers and the generator ({threads} thread(s)) share these cores, unpinned.
- tagcached: {daemons}.
- Generator: `{bench}`, the same for every row;
  workspace at {git}.
- Others: {versions}.
- Workload: 50 connections, 100,000 keys of 32 bytes, 100-byte values, 90% GET /
  10% SET, every key stored once before measuring (`--prefill`).
- tagcached rows run the generator with `--no-shard-aware`, as a client
  written from protocol.md alone: with two worker threads about half the
  requests arrive on the other thread's connection and take a hop.
  `tagcached-t2-shard-aware` drives the same two-thread daemon with each
  connection on its key's shard (the generator's default), so none hop.
  memcached runs the meta protocol (`mg`/`ms`), Redis RESP `GET`/`SET`.
- Each figure is the median of {rounds} run(s) of {duration} s; within a
  round every row takes its turn, the order rotating by one each round.
  "vs X" is ops/s over X's ops/s.{before_text}
  "generator CPU" is the bench's CPU time over its threads' capacity (near
  100%: the generator set the pace); "ops/s spread" is (max - min) / median
  over the rounds. "server CPU µs/op" is the server process's CPU time
  (user and system) while the generator measured, over the requests
  served (the generator reads it with `--server-pid`), and "generator CPU
  µs/op" the same for the generator: what a request costs each side.

Servers:

{server_commands}

Generator, per workload and row:

{generator_commands}

""" + "\n\n".join(sections) + warnings + "\n"
print(doc, end="")
open(out_path, "w").write(doc)
PY
if [[ -n $OUT ]]; then
    cp "$SECTION_FILE" "$OUT"
    log "wrote $OUT"
fi
if [[ -n $INTO ]]; then
    # The section replaces the file's own "## Thread hops" section (up to the
    # next "## " heading), or is appended; compare.sh keeps it when it
    # rewrites the rest of the file.
    python3 - "$INTO" "$SECTION_FILE" <<'PY'
import os, sys
into, section_path = sys.argv[1:3]
section = open(section_path).read().rstrip("\n") + "\n"
lines = open(into).read().splitlines(keepends=True) if os.path.exists(into) else []
start = next((i for i, line in enumerate(lines) if line.startswith("## Thread hops")), None)
if start is None:
    text = "".join(lines).rstrip("\n") + ("\n\n" if lines else "") + section
else:
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    text = "".join(lines[:start]) + section + ("\n" + "".join(lines[end:]) if end < len(lines) else "")
open(into, "w").write(text)
print(f"updated {into}", file=sys.stderr)
PY
fi
