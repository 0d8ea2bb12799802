#!/usr/bin/env bash
# Runs the same workloads against memcached, Redis and tagcached on loopback,
# a few rounds each, and writes the medians to benches/BENCHMARKS.md.
#
# Then memory per entry and end-to-end invalidation timing (memory.sh), and
# the store's criterion micro-benchmarks (crates/store/benches/shard.rs),
# all folded into the same file. Only the file's opening and those two
# sections are replaced (a skipped one keeps its last figures); every other
# section, written by other scripts or by hand, stays as it is.
#
# Usage: benches/compare.sh [--duration SECS] [--rounds N] [--threads N] [--out FILE]
#                           [--no-memory] [--no-micro]
# Environment: CARGO_TARGET_DIR (where to build), MEMCACHED_PORT, REDIS_PORT,
# TAGCACHED_PORT (defaults 21211, 21379, 21311).
#
# Every server is single-threaded (memcached -t 1, Redis, tagcached
# --threads 1) so the comparison is core for core, and the generator gets
# the remaining core(s). Installs memcached and redis-server with apt-get if
# they are missing.
set -euo pipefail

DURATION=10
ROUNDS=3
BENCH_THREADS=1
MEMORY=1
MICRO=1
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="$HERE/BENCHMARKS.md"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --threads) BENCH_THREADS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --no-memory) MEMORY=0; shift ;;
        --no-micro) MICRO=0; shift ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

MEMCACHED_PORT="${MEMCACHED_PORT:-21211}"
REDIS_PORT="${REDIS_PORT:-21379}"
TAGCACHED_PORT="${TAGCACHED_PORT:-21311}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release"
KEYS=100000

log() { echo "compare.sh: $*" >&2; }

# --- tools -------------------------------------------------------------------
missing=()
command -v memcached >/dev/null || missing+=(memcached)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v python3 >/dev/null || missing+=(python3)
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The packages start their own services; ours run on other ports, so those
# are left alone.

log "building tagcached and tagcached-bench (release) in $TARGET_DIR"
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p tagcached -p tagcached-bench)

WORK="$(mktemp -d)"

# --- memory and invalidation (before the servers below take the ports) -------
MEMORY_MD="$WORK/memory.md"
if [[ $MEMORY == 1 ]]; then
    log "memory per entry and invalidation timing (memory.sh)"
    CARGO_TARGET_DIR="$TARGET_DIR" "$HERE/memory.sh" --out "$MEMORY_MD" >/dev/null
else
    echo "(skipped: --no-memory)" >"$MEMORY_MD"
fi

# --- micro-benchmarks -----------------------------------------------------------
MICRO_MD="$WORK/micro.md"
if [[ $MICRO == 1 ]]; then
    log "store micro-benchmarks (criterion)"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo bench -q -p tagcached-store --bench shard \
        -- --warm-up-time 1 --measurement-time 2 2>/dev/null) >"$WORK/criterion.txt"
    python3 - "$WORK/criterion.txt" >"$MICRO_MD" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
print("| benchmark | time per operation (criterion median) |")
print("|---|---|")
for name, median, unit in re.findall(r"^(\S+)\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", text, re.M):
    print(f"| `{name}` | {median} {unit} |")
PY
else
    echo "(skipped: --no-micro)" >"$MICRO_MD"
fi

# --- servers -----------------------------------------------------------------
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
    local port=$1 name=$2
    for _ in $(seq 100); do
        port_busy "$port" && return 0
        sleep 0.1
    done
    log "$name did not start listening on port $port"; exit 1
}

for port in "$MEMCACHED_PORT" "$REDIS_PORT" "$TAGCACHED_PORT"; do
    if port_busy "$port"; then log "port $port is already in use"; exit 1; fi
done

memcached -t 1 -m 1024 -l 127.0.0.1 -p "$MEMCACHED_PORT" -u "$(id -un)" &
PIDS+=($!)
redis-server --save '' --appendonly no --port "$REDIS_PORT" --bind 127.0.0.1 \
    --loglevel warning >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
"$BIN/tagcached" --port "$TAGCACHED_PORT" --bind 127.0.0.1 --threads 1 --memory 1GiB \
    --log-level warn &
PIDS+=($!)
wait_for_port "$MEMCACHED_PORT" memcached
wait_for_port "$REDIS_PORT" redis-server
wait_for_port "$TAGCACHED_PORT" tagcached

# --- workloads ----------------------------------------------------------------
# name|arguments (the server, protocol and duration are added per run)
WORKLOADS=(
    "get90-set10-p1|--connections 50 --pipeline 1 --get-ratio 0.9 --set-ratio 0.1 --value-size 100 --keys $KEYS --prefill"
    "get90-set10-p16|--connections 50 --pipeline 16 --get-ratio 0.9 --set-ratio 0.1 --value-size 100 --keys $KEYS --prefill"
    "set-only-p1|--connections 50 --pipeline 1 --set-ratio 1 --value-size 100 --keys $KEYS"
    "get90-set10-tags3-inv100|--connections 50 --pipeline 1 --get-ratio 0.9 --set-ratio 0.1 --value-size 100 --keys $KEYS --prefill --tags-per-item 3 --tag-space 1000 --invalidate-rate 100"
)
SERVERS=(
    "memcached|memcached|127.0.0.1:$MEMCACHED_PORT"
    "redis|redis|127.0.0.1:$REDIS_PORT"
    "tagcached|tagcached|127.0.0.1:$TAGCACHED_PORT"
)

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
    for workload in "${WORKLOADS[@]}"; do
        name="${workload%%|*}"; args="${workload#*|}"
        # Servers take turns within a round, so drifting load on the machine
        # spreads over all of them.
        for server in "${SERVERS[@]}"; do
            IFS='|' read -r label protocol address <<<"$server"
            log "round $round/$ROUNDS: $name on $label"
            # shellcheck disable=SC2086
            json="$("$BIN/tagcached-bench" --server "$address" --protocol "$protocol" \
                --duration "$DURATION" --threads "$BENCH_THREADS" --json --quiet $args)"
            python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["workload"]=sys.argv[2]; d["label"]=sys.argv[3]; d["round"]=int(sys.argv[4]); print(json.dumps(d))' \
                "$json" "$name" "$label" "$round" >>"$RESULTS"
        done
    done
done

# --- report -------------------------------------------------------------------
MACHINE="$(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM"
VERSIONS="$(memcached -V); $(redis-server --version | awk '{print $1, $2, $3}'); $("$BIN/tagcached" --version)"
COMMAND_LINES="$(for workload in "${WORKLOADS[@]}"; do
    echo "    tagcached-bench --server HOST:PORT --protocol P --duration $DURATION --threads $BENCH_THREADS --json ${workload#*|}   # ${workload%%|*}"
done)"
python3 - "$RESULTS" "$OUT" "$DURATION" "$ROUNDS" "$MACHINE" "$VERSIONS" "$COMMAND_LINES" "$BENCH_THREADS" "$MEMORY_MD" "$MICRO_MD" <<'PY'
import datetime, json, statistics, sys

results_path, out_path, duration, rounds, machine, versions, commands, threads, memory_path, micro_path = sys.argv[1:11]
memory = open(memory_path).read().strip()
micro = open(micro_path).read().strip()
runs = [json.loads(line) for line in open(results_path)]
workloads = list(dict.fromkeys(r["workload"] for r in runs))
labels = list(dict.fromkeys(r["label"] for r in runs))

def median(values):
    return statistics.median(values) if values else float("nan")

rows = []
for workload in workloads:
    medians = {}
    for label in labels:
        mine = [r for r in runs if r["workload"] == workload and r["label"] == label]
        hits = [r["hit_ratio"] for r in mine if r["hit_ratio"] is not None]
        medians[label] = {
            "ops": median([r["ops_per_sec"] for r in mine]),
            "p50": median([r["latency_us"]["p50"] for r in mine]),
            "p99": median([r["latency_us"]["p99"] for r in mine]),
            "p999": median([r["latency_us"]["p999"] for r in mine]),
            "hit": median(hits) if hits else None,
            "errors": sum(r["errors"] for r in mine),
            "cpu": median([r["cpu"]["utilization"] for r in mine if r.get("cpu")]),
        }
    base = medians["tagcached"]["ops"]
    for label in labels:
        m = medians[label]
        rows.append((workload, label, m, m["ops"] / base if base else float("nan")))

header = ("| workload | server | ops/s | vs tagcached | p50 µs | p99 µs | p99.9 µs "
          "| hit % | errors | generator CPU |")
lines = [header, "|" + "---|" * 10]
for workload, label, m, ratio in rows:
    hit = "-" if m["hit"] is None else f"{m['hit'] * 100:.1f}"
    lines.append(
        f"| {workload} | {label} | {m['ops']:,.0f} | {ratio:.2f}× | {m['p50']:.1f} "
        f"| {m['p99']:.1f} | {m['p999']:.1f} | {hit} | {m['errors']} | {m['cpu'] * 100:.0f}% |"
    )
table = "\n".join(lines)
print(table)

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
doc = f"""# Benchmarks: tagcached, memcached and Redis

Produced by `benches/compare.sh --duration {duration} --rounds {rounds} --threads {threads}`
on {now}.

- Machine: {machine}.
- Servers: {versions}. Each single-threaded: `memcached -t 1 -m 1024`,
  `redis-server --save '' --appendonly no`, `tagcached --threads 1 --memory 1GiB`,
  all on 127.0.0.1, with the generator (`tagcached-bench`, {threads} thread(s)) on
  the same machine.
- memcached is driven through its meta protocol (`mg`/`ms`), Redis through
  RESP `GET`/`SET`; tags and invalidations are tagcached's alone, so in the
  tag workload the other two run the same GET/SET traffic without them.
- Each figure is the median of {rounds} runs of {duration} s; the servers take
  turns within each round. "vs tagcached" is ops/s over tagcached's ops/s.
  "generator CPU" is the bench's own CPU time over its threads' capacity: near
  100% means the generator, not the server, set the pace.

Commands, per workload:

{commands}

{table}

Caveat: generator and server share the machine's cores (and, when this was
run, other builds), so absolute figures are noisy and lower than on
dedicated hardware; the ratios between servers run back to back are the
more telling figures.

## Memory per entry

`benches/memory.sh`: each server fresh, 1,000,000 SETs of 16-byte keys and
100-byte values (`tagcached-bench --prefill --requests 0 --keys 1000000`),
then again with `--tags-per-item 3 --tag-space 1000` (tags are tagcached's
alone); bytes = (VmRSS after - VmRSS before) / 1,000,000.

{memory}

## Store micro-benchmarks

`cargo bench -p tagcached-store --bench shard -- --warm-up-time 1
--measurement-time 2`: one shard of 100,000 entries (16-byte keys, 100-byte
values); `get_hit_3_tags` runs after an unrelated invalidation, so every
read checks its tags; `invalidate_tag_on_1_entry` and
`invalidate_tag_on_1m_entries` invalidate a tag carried by one entry and by
1,000,000 in the same shard.

{micro}
"""
# The file holds more than this run writes: sections other runs own
# ("## Thread hops" from benches/threads.sh, "## Stampedes", before/after
# comparisons written by hand). Replace only the sections written above,
# and not those skipped (--no-memory, --no-micro), which keep their last
# figures; keep every other section where it was.
def sections(text):
    """The text before the first "## " heading, then each section by heading."""
    parts = ("\n" + text).split("\n## ")
    return parts[0].strip("\n"), {"## " + part.split("\n", 1)[0]: "## " + part.rstrip("\n") for part in parts[1:]}

try:
    previous = open(out_path).read()
except FileNotFoundError:
    previous = ""
top, written = sections(doc)
skipped = {heading for heading, body in written.items() if "(skipped: --no-" in body}
_, before = sections(previous)
merged = dict(before)
for heading, body in written.items():
    if heading not in skipped or heading not in merged:
        merged[heading] = body
order = list(written) + [heading for heading in before if heading not in written]
doc = top + "\n\n" + "\n\n".join(merged[heading] for heading in order) + "\n"
open(out_path, "w").write(doc)
print(f"\nwrote {out_path}", file=sys.stderr)
PY
