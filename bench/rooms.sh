#!/usr/bin/env bash
# Rooms benchmark: N WebSocket clients in one room, K of them sending chat at M
# messages/s in total, against onair and against a socket.io broadcast server
# (bench/socketio/server.js), for each N in turn, in the same run; prints a table and
# the onair/socket.io ratios. See bench/README.md.
#
#   CONNECTIONS="1000 5000 10000" RATE=100 CAP=100 DURATION=20 bench/rooms.sh
#
# Environment: CONNECTIONS (list, "1000 5000 10000"), SENDERS (10), RATE (100 msg/s
# in total), CAP (onair's per-connection chat cap, rooms.viewer_chat_rate_count: 100),
# DURATION (20 s window), IDLE (5 s idle before the chat), WARMUP (3 s), RAMP (1000
# connects/s), PIN (1: servers on CPU 0, bench on CPU 1; 0: no pinning), SKIP_SOCKETIO
# (1 to skip), ONAIR_HTTP_PORT (18070), ONAIR_RTMP_PORT (19370), SOCKETIO_PORT (18090),
# ONAIR_SET (more onair settings, "key=value key=value", e.g. "http.room_flush_interval_ms=100"),
# MIX (what onair's senders send, e.g. "chat:40,like:30,gift:10,wave:20"; waves are the
# aggregated custom event gesture.wave; default chat only, as socket.io), BURST (messages
# each sender writes at once, 1), ONAIR_BIN (a prebuilt onair to measure instead of
# building this checkout, e.g. a copy of another commit's target/release/onair).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/out
mkdir -p "$OUT"

CONNECTIONS=${CONNECTIONS:-1000 5000 10000}
SENDERS=${SENDERS:-10}
RATE=${RATE:-100}
CAP=${CAP:-100}
DURATION=${DURATION:-20}
IDLE=${IDLE:-5}
WARMUP=${WARMUP:-3}
RAMP=${RAMP:-1000}
PIN=${PIN:-1}
SKIP_SOCKETIO=${SKIP_SOCKETIO:-0}
MIX=${MIX:-chat:1}
BURST=${BURST:-1}
EXTRA_SETS=()
for setting in ${ONAIR_SET:-}; do
  EXTRA_SETS+=(--set "$setting")
done
ONAIR_HTTP=127.0.0.1:${ONAIR_HTTP_PORT:-18070}
ONAIR_RTMP=127.0.0.1:${ONAIR_RTMP_PORT:-19370}
SOCKETIO=127.0.0.1:${SOCKETIO_PORT:-18090}
ONAIR=${ONAIR_BIN:-$ROOT/target/release/onair}
# The chat token secret the onair server and the bench share (a throwaway).
SECRET="bench-rooms-$$-$RANDOM"

MAX_N=0
for n in $CONNECTIONS; do
  if [ "$n" -gt "$MAX_N" ]; then MAX_N=$n; fi
done
# Every connection is a socket in the bench and one in the server (separate processes).
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
raise_fd_limit $((MAX_N + 256))

for addr in "$ONAIR_HTTP" "$ONAIR_RTMP" "$SOCKETIO"; do
  if listening "$addr"; then
    echo "$addr is already taken by another process; set ONAIR_HTTP_PORT/ONAIR_RTMP_PORT/SOCKETIO_PORT" >&2
    exit 1
  fi
done

echo "--- load before the run (other work on the machine skews the figures): $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -z "${ONAIR_BIN:-}" ]; then
  echo "--- building"
  timeout 1800 cargo build --release -q
fi

# socket.io: installed from the committed lockfile into bench/out/socketio (gitignored).
SIO_DIR=$OUT/socketio
if [ "$SKIP_SOCKETIO" != 1 ]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node and npm are needed for the socket.io comparison (SKIP_SOCKETIO=1 leaves it out)" >&2
    exit 1
  fi
  mkdir -p "$SIO_DIR"
  if ! cmp -s bench/socketio/package-lock.json "$SIO_DIR/package-lock.json" \
    || [ ! -d "$SIO_DIR/node_modules/socket.io" ]; then
    echo "--- installing socket.io into $SIO_DIR"
    cp bench/socketio/package.json bench/socketio/package-lock.json "$SIO_DIR/"
    timeout 300 npm ci --prefix "$SIO_DIR" --no-audit --no-fund --loglevel error
  fi
  cp bench/socketio/server.js "$SIO_DIR/server.js"
fi

# onair's settings: the secret through a file (the only layer that can set it), the
# chat cap per connection raised to CAP, the per-user send rate far above what each
# sender sends, and connection limits above the largest N.
cat >"$OUT/rooms-onair.toml" <<EOF
[auth]
token_secret = "$SECRET"

[[rooms.aggregated_events]]
name = "gesture.wave"
values = ["hi", "bye"]
EOF
chmod 600 "$OUT/rooms-onair.toml"

start_onair() {
  rm -rf "$OUT/rooms-onair-data"
  "${SERVER_CPU[@]}" "$ONAIR" --config "$OUT/rooms-onair.toml" \
    --rtmp-listen "$ONAIR_RTMP" --http-listen "$ONAIR_HTTP" \
    --data-dir "$OUT/rooms-onair-data" --log-format json \
    --set "rooms.viewer_chat_rate_count=$CAP" --set rooms.viewer_chat_rate_window_ms=1000 \
    --set rooms.chat_rate_count=100000 --set rooms.chat_rate_window_ms=1000 \
    --set "limits.max_connections_per_ip=$((MAX_N * 2 + 100))" \
    --set "limits.max_connections=$((MAX_N * 2 + 100))" \
    --set limits.requests_per_second_per_ip=0 "${EXTRA_SETS[@]}" \
    >"$OUT/rooms-onair-$1.log" 2>&1 &
  SERVER_PID=$!
  disown "$SERVER_PID" # no job-control notice if stop_pid has to SIGKILL it
  PIDS+=("$SERVER_PID")
  wait_port "$ONAIR_HTTP" "$SERVER_PID"
}

start_socketio() {
  HOST=${SOCKETIO%:*} PORT=${SOCKETIO##*:} "${SERVER_CPU[@]}" node "$SIO_DIR/server.js" \
    >"$OUT/rooms-socketio-$1.log" 2>&1 &
  SERVER_PID=$!
  disown "$SERVER_PID"
  PIDS+=("$SERVER_PID")
  wait_port "$SOCKETIO" "$SERVER_PID"
}

# run_bench NAME N PROTOCOL URL: writes $OUT/NAME.json.
run_bench() {
  local name=$1 n=$2 protocol=$3 url=$4
  local MIX_ARGS=()
  if [ "$protocol" = onair ]; then MIX_ARGS=(--mix "$MIX"); fi
  echo "--- $name: $n connections, $SENDERS senders at $RATE msg/s, ${DURATION} s"
  local limit=$((n / RAMP + IDLE + WARMUP + DURATION + 60))
  RUST_LOG=warn RUST_BACKTRACE=0 ONAIR_BENCH_TOKEN_SECRET="$SECRET" \
    timeout "$limit" "${BENCH_CPU[@]}" "$ONAIR" bench rooms \
    --protocol "$protocol" --url "$url" --connections "$n" --senders "$SENDERS" \
    --rate "$RATE" --ramp-per-sec "$RAMP" --idle "$IDLE" --warmup "$WARMUP" \
    --duration "$DURATION" --burst "$BURST" --server-pid "$SERVER_PID" --label "$name" --json \
    "${MIX_ARGS[@]}" \
    >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" || {
    echo "the bench failed:" >&2
    tail -n 5 "$OUT/$name.stderr" >&2
    return 1
  }
  tail -n 1 "$OUT/$name.stdout" | jq -c . >"$OUT/$name.json"
  jq -r '"    delivered \(.traffic.delivered_per_sec | floor)/s of \(.traffic.expected_per_sec | floor)/s, p99 \(.latency_ms.p99) ms, failures \(.failures.total), server \(.server.cores * 100 | round / 100) cores, bench \(.bench.cores * 100 | round / 100) cores, CPUs busy \(.cpu_busy | map(. * 100 | round | tostring) | join("/")) %"' "$OUT/$name.json"
}

ROWS=()
for n in $CONNECTIONS; do
  start_onair "$n"
  run_bench "rooms-onair-$n" "$n" onair "ws://$ONAIR_HTTP/ws/live/bench"
  stop_pid "$SERVER_PID"
  ROWS+=("rooms-onair-$n")
  if [ "$SKIP_SOCKETIO" != 1 ]; then
    start_socketio "$n"
    run_bench "rooms-socketio-$n" "$n" socketio \
      "ws://$SOCKETIO/socket.io/?EIO=4&transport=websocket&room=live/bench"
    stop_pid "$SERVER_PID"
    ROWS+=("rooms-socketio-$n")
  fi
done

echo
echo "=== one room, $SENDERS senders at $RATE msg/s in total (bursts of $BURST), mix $MIX, onair chat cap $CAP/s per connection, ${DURATION} s window"
{
  printf 'server\tconns\tjoined\tfail\tsent/s\tdelivered/s\texpected/s\tskipped\tlat_p50_ms\tlat_p99_ms\tserver_cores\tdeliv/cpu_s\tidle_KB/conn\tend_KB/conn\tbench_cores\tcpus_busy_%%\n'
  for row in "${ROWS[@]}"; do
    jq -r --arg row "$row" '[($row | sub("^rooms-"; "") | sub("-[0-9]+$"; "")), .connections,
      .joined_at_window_start, .failures.total,
      (.traffic.sent_per_sec * 10 | round / 10), (.traffic.delivered_per_sec | round),
      (.traffic.expected_per_sec | round), .traffic.skipped,
      (.latency_ms.p50 // "-"), (.latency_ms.p99 // "-"),
      (.server.cores // "-"), (.server.deliveries_per_cpu_second // "-" | if type == "number" then round else . end),
      (.server.rss_idle_per_conn_kb // "-"), (.server.rss_end_per_conn_kb // "-"),
      (.bench.cores), (.cpu_busy | map(. * 100 | round | tostring) | join("/"))]
      | map(if type == "number" and . != floor then (. * 100 | round / 100) else . end)
      | @tsv' "$OUT/$row.json"
  done
} | column -t -s $'\t'

if [ "$SKIP_SOCKETIO" != 1 ]; then
  echo
  echo "=== ratios onair / socket.io (deliveries per CPU-s: above 1 is better for onair; RSS and p99: below 1 is)"
  {
    printf 'conns\tdeliv/cpu_s\tdelivered/s\tidle_KB/conn\tend_KB/conn\tlat_p99\tfailures(onair:socket.io)\n'
    for n in $CONNECTIONS; do
      jq -r -n --slurpfile a "$OUT/rooms-onair-$n.json" --slurpfile s "$OUT/rooms-socketio-$n.json" --arg n "$n" '
        def ratio(f): ($a[0] | f) as $x | ($s[0] | f) as $y
          | if $x == null or $y == null or $y == 0 then "-" else ($x / $y * 100 | round / 100) end;
        [$n, ratio(.server.deliveries_per_cpu_second), ratio(.traffic.delivered_per_sec),
         ratio(.server.rss_idle_per_conn_kb), ratio(.server.rss_end_per_conn_kb),
         ratio(.latency_ms.p99), "\($a[0].failures.total):\($s[0].failures.total)"] | @tsv'
    done
  } | column -t -s $'\t'
fi
echo
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "reports: $OUT/rooms-*.json; server logs: $OUT/rooms-onair-*.log, $OUT/rooms-socketio-*.log"
