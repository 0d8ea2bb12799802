#!/usr/bin/env bash
# Bytes of resident memory per stored entry: memcached, Redis and tagcached
# each load the same 1,000,000 entries (16-byte keys, 100-byte values), with
# no tags and then (tagcached only; the others store the same traffic) with
# 3 tags each from a space of 1000. Each server is started fresh for each
# load; RSS (VmRSS in /proc/PID/status) is read once it is listening and
# again after the load, and the figure is (after - before) / entries.
#
# Then the end-to-end cost of invalidation: a fresh tagcached holding one
# entry tagged `t0`, and another holding 1,000,000 entries all tagged `t0`;
# INVALIDATE_TAGS t0 is sent 200 times one after another on one connection
# and the round trips timed (the first one, and the median), after 50
# untimed invalidations of an unused tag to warm the path. Server and
# client are pinned to different cores when there are two: left to the
# scheduler, whether they share a core swings the round trip 10-60 µs.
#
# Usage: benches/memory.sh [--keys N] [--out FILE]
# Prints markdown; with --out, also writes it to FILE (compare.sh folds it
# into BENCHMARKS.md). Environment as for compare.sh.
set -euo pipefail

KEYS=1000000
OUT=""
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --keys) KEYS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "memory.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

MEMCACHED_PORT="${MEMCACHED_PORT:-21211}"
REDIS_PORT="${REDIS_PORT:-21379}"
TAGCACHED_PORT="${TAGCACHED_PORT:-21311}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release"

log() { echo "memory.sh: $*" >&2; }

if [[ ! -x "$BIN/tagcached" || ! -x "$BIN/tagcached-bench" ]]; then
    log "building tagcached and tagcached-bench (release) in $TARGET_DIR"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p tagcached -p tagcached-bench)
fi

SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
    for _ in $(seq 100); do
        port_busy "$1" && return 0
        sleep 0.1
    done
    log "nothing listening on port $1"; exit 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Starts server $1, loads $KEYS entries with extra bench arguments $2,
# prints bytes per entry.
measure() {
    local label=$1 extra=$2 port protocol
    case "$label" in
        memcached)
            port=$MEMCACHED_PORT; protocol=memcached
            # Enough memory that nothing is evicted.
            memcached -t 1 -m 4096 -l 127.0.0.1 -p "$port" -u "$(id -un)" &
            ;;
        redis)
            port=$REDIS_PORT; protocol=redis
            redis-server --save '' --appendonly no --port "$port" --bind 127.0.0.1 \
                --loglevel warning >/dev/null 2>&1 &
            ;;
        tagcached)
            port=$TAGCACHED_PORT; protocol=tagcached
            "$BIN/tagcached" --port "$port" --bind 127.0.0.1 --threads 1 --memory 4GiB \
                --log-level warn &
            ;;
    esac
    SERVER_PID=$!
    wait_for_port "$port"
    sleep 0.2
    local before after
    before=$(rss_kib "$SERVER_PID")
    # shellcheck disable=SC2086
    "$BIN/tagcached-bench" --server "127.0.0.1:$port" --protocol "$protocol" --quiet \
        --connections 8 --threads 1 --keys "$KEYS" --key-size 16 --value-size 100 \
        --set-ratio 1 --prefill --requests 0 $extra >/dev/null
    sleep 0.2
    after=$(rss_kib "$SERVER_PID")
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    python3 -c 'import sys; b,a,n=map(int,sys.argv[1:]); print(f"{(a-b)*1024/n:.0f}")' \
        "$before" "$after" "$KEYS"
}

for port in "$MEMCACHED_PORT" "$REDIS_PORT" "$TAGCACHED_PORT"; do
    if port_busy "$port"; then log "port $port is already in use"; exit 1; fi
done

TABLE="| server | bytes of RSS per entry, no tags | with 3 tags each |
|---|---|---|"
for label in memcached redis tagcached; do
    log "loading $KEYS entries into $label"
    plain=$(measure "$label" "")
    log "loading $KEYS entries with 3 tags into $label"
    tagged=$(measure "$label" "--tags-per-item 3 --tag-space 1000")
    TABLE+="
| $label | $plain | $tagged |"
done
# Prints "first median" round-trip microseconds of INVALIDATE_TAGS t0 sent
# to the server on $1 (protocol.md: request header, then a u16 tag count
# and u16-length-prefixed tags).
time_invalidations() {
    python3 - "$1" <<'PY'
import socket, statistics, struct, sys, time
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def recv_exact(n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            sys.exit("connection closed")
        data += chunk
    return data
def invalidate(opaque, tag):
    body = struct.pack(">HH", 1, len(tag)) + tag
    frame = struct.pack(">BBBBHHII", 0xC7, 1, 0x30, 0, 0, 0, opaque, len(body)) + body
    start = time.perf_counter()
    sock.sendall(frame)
    header = recv_exact(16)
    status, length = struct.unpack(">H", header[4:6])[0], struct.unpack(">I", header[12:16])[0]
    recv_exact(length)
    if status != 0:
        sys.exit(f"INVALIDATE_TAGS answered status {status}")
    return (time.perf_counter() - start) * 1e6
# Warm the connection and the server's request path on a tag nobody
# carries, so the first timed round trip is not also the first served.
for opaque in range(50):
    invalidate(opaque, b"warm-up")
times = [invalidate(opaque, b"t0") for opaque in range(200)]
print(f"{times[0]:.0f} {statistics.median(times):.0f}")
PY
}

SERVER_CPU=()
CLIENT_CPU=()
if command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then
    SERVER_CPU=(taskset -c 0)
    CLIENT_CPU=(taskset -c 1)
fi

# Loads $1 entries tagged t0 into a fresh tagcached, prints the timings.
invalidation() {
    "${SERVER_CPU[@]}" "$BIN/tagcached" --port "$TAGCACHED_PORT" --bind 127.0.0.1 --threads 1 --memory 4GiB \
        --log-level warn &
    SERVER_PID=$!
    wait_for_port "$TAGCACHED_PORT"
    "$BIN/tagcached-bench" --server "127.0.0.1:$TAGCACHED_PORT" --protocol tagcached --quiet \
        --connections 8 --threads 1 --keys "$1" --key-size 16 --value-size 100 \
        --set-ratio 1 --prefill --requests 0 --tags-per-item 1 --tag-space 1 >/dev/null
    "${CLIENT_CPU[@]}" bash -c "$(declare -f time_invalidations); time_invalidations $TAGCACHED_PORT"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

log "timing INVALIDATE_TAGS of a tag on 1 entry, then on $KEYS"
read -r one_first one_median <<<"$(invalidation 1)"
read -r many_first many_median <<<"$(invalidation "$KEYS")"
TABLE+="

End-to-end INVALIDATE_TAGS round trip on loopback (tagcached, one thread),
microseconds:

| entries carrying the tag | first | median of 200 |
|---|---|---|
| 1 | $one_first | $one_median |
| $KEYS | $many_first | $many_median |"

echo "$TABLE"
if [[ -n "$OUT" ]]; then echo "$TABLE" >"$OUT"; fi
