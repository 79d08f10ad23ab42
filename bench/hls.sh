#!/usr/bin/env bash
# HLS benchmark: N low-latency HLS viewers (blocking playlist reload + the hinted part
# at once, like hls.js) of one 720p30 stream with a 1 s GOP on onair (200 ms parts,
# 1 s segments), then N plain HLS viewers of the same stream on nginx-rtmp's HLS
# (MPEG-TS written to disk, served by nginx's http module), in the same run; prints a
# table and the onair/nginx ratios, then hls.js's latency behind the live edge in
# headless Chromium against onair when node, chromium and tests/browser/node_modules
# are there. See bench/README.md, "HLS".
#
#   VIEWERS=1000 DURATION=30 bench/hls.sh
#
# Environment: VIEWERS (1000), DURATION (30 s window), RAMP (200 viewers/s), PIN (1:
# servers on CPU 0, bench on CPU 1; 0: no pinning), NGINX_MODULE, SKIP_NGINX (1 to
# skip), SKIP_BROWSER (1 to skip), FIXTURE_SECS (30), ONAIR_RTMP_PORT (19355),
# ONAIR_HTTP_PORT (18085), NGINX_RTMP_PORT (19356), NGINX_HTTP_PORT (18086), ONAIR_BIN
# (a prebuilt onair to measure instead of building this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/out
mkdir -p "$OUT"

VIEWERS=${VIEWERS:-1000}
DURATION=${DURATION:-30}
RAMP=${RAMP:-200}
PIN=${PIN:-1}
SKIP_NGINX=${SKIP_NGINX:-0}
SKIP_BROWSER=${SKIP_BROWSER:-0}
FIXTURE_SECS=${FIXTURE_SECS:-30}
NGINX_MODULE=${NGINX_MODULE:-/usr/lib/nginx/modules/ngx_rtmp_module.so}
ONAIR_RTMP=127.0.0.1:${ONAIR_RTMP_PORT:-19355}
ONAIR_HTTP=127.0.0.1:${ONAIR_HTTP_PORT:-18085}
NGINX_RTMP=127.0.0.1:${NGINX_RTMP_PORT:-19356}
NGINX_HTTP=127.0.0.1:${NGINX_HTTP_PORT:-18086}
ONAIR=${ONAIR_BIN:-$ROOT/target/release/onair}

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
# An LL viewer holds two connections, each a socket in the bench and one in the server.
raise_fd_limit $((VIEWERS * 2 + 256))

for addr in "$ONAIR_RTMP" "$ONAIR_HTTP" "$NGINX_RTMP" "$NGINX_HTTP"; do
  if listening "$addr"; then
    echo "$addr is already taken by another process; set ONAIR_*_PORT/NGINX_*_PORT" >&2
    exit 1
  fi
done

echo "--- load before the run (other work on the machine skews the figures): $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -z "${ONAIR_BIN:-}" ]; then
  echo "--- building"
  timeout 1800 cargo build --release -q
fi

# A keyframe every second (-g 30), as the LL-HLS latency target assumes.
FIXTURE=$OUT/stream-720p30-gop1s.flv
if [ ! -s "$FIXTURE" ]; then
  echo "--- making the stream fixture ($FIXTURE_SECS s, 720p30, 1 s GOP, 1400k H.264 + 128k AAC)"
  timeout 600 ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -t "$FIXTURE_SECS" \
    -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p \
    -b:v 1400k -maxrate 1400k -bufsize 2800k -g 30 -keyint_min 30 -sc_threshold 0 \
    -c:a aac -b:a 128k -ac 2 \
    -f flv "$FIXTURE.tmp"
  mv "$FIXTURE.tmp" "$FIXTURE"
fi

# Ramp + warm-up + warm (15 s) + settle + window + teardown.
bench_timeout() { echo $(($1 / RAMP + DURATION + 60)); }

# run_bench NAME MODE VIEWERS PLAY_URL PUBLISH_URL SERVER_PIDS [ARGS...]: writes $OUT/NAME.json.
run_bench() {
  local name=$1 mode=$2 viewers=$3 play=$4 publish=$5 pids=$6
  shift 6
  echo "--- $name: $viewers $mode viewers, ${DURATION} s"
  RUST_LOG=warn RUST_BACKTRACE=0 timeout "$(bench_timeout "$viewers")" "${BENCH_CPU[@]}" "$ONAIR" bench hls \
    --mode "$mode" --publish "$FIXTURE" --publish-url "$publish" --play "$play" \
    --viewers "$viewers" --ramp-per-sec "$RAMP" --duration "$DURATION" \
    --server-pid "$pids" --label "$name" --json "$@" \
    >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" || {
    echo "the bench failed:" >&2
    tail -n 5 "$OUT/$name.stderr" >&2
    return 1
  }
  tail -n 1 "$OUT/$name.stdout" | jq -c . >"$OUT/$name.json"
  jq -r '"    failures \(.failures.total), latency p50 \(.latency_ms.p50) p95 \(.latency_ms.p95) p99 \(.latency_ms.p99) ms (n=\(.latency_ms.count)), timeline offset \(.timeline.measured_offset_ms) ms, CPU-s/viewer-min \(.server.cpu_per_viewer_minute), RSS KB/viewer \(.server.rss_per_viewer_kb), bench cores \(.bench.cores), CPUs busy \(.cpu_busy | map(. * 100 | round))%"' "$OUT/$name.json"
}

echo "--- starting onair on $ONAIR_RTMP (RTMP) and $ONAIR_HTTP (HTTP), log $OUT/onair-hls.log"
rm -rf "$OUT/onair-data"
"${SERVER_CPU[@]}" "$ONAIR" \
  --rtmp-listen "$ONAIR_RTMP" --http-listen "$ONAIR_HTTP" \
  --data-dir "$OUT/onair-data" --log-format json \
  --allowed-origins '*' \
  --set hls.part_target_ms=200 --set hls.segment_target_ms=1000 \
  --set "limits.max_connections_per_ip=$((VIEWERS * 2 + 100))" \
  --set "limits.max_connections=$((VIEWERS * 2 + 100))" \
  --set limits.requests_per_second_per_ip=0 \
  >"$OUT/onair-hls.log" 2>&1 &
ONAIR_PID=$!
PIDS+=("$ONAIR_PID")
wait_port "$ONAIR_RTMP" "$ONAIR_PID"
wait_port "$ONAIR_HTTP" "$ONAIR_PID"

ONAIR_PLAY="http://$ONAIR_HTTP/live/bench/index.m3u8"
run_bench onair-ll ll "$VIEWERS" "$ONAIR_PLAY" "rtmp://$ONAIR_RTMP/live/bench" "$ONAIR_PID"
ROWS=(onair-ll)
# One viewer alone: the server's part latency without the fan-out to N.
if [ "$VIEWERS" -gt 1 ]; then
  run_bench onair-ll-1 ll 1 "$ONAIR_PLAY" "rtmp://$ONAIR_RTMP/live/bench" "$ONAIR_PID"
  ROWS+=(onair-ll-1)
fi

BROWSER_LATENCY=
if [ "$SKIP_BROWSER" != 1 ] && command -v node >/dev/null && [ -x "${CHROMIUM:-/usr/bin/chromium}" ] \
  && [ -d tests/browser/node_modules ]; then
  echo "--- hls.js in headless Chromium against onair (low-latency mode)"
  "${BENCH_CPU[@]}" "$ONAIR" push "$FIXTURE" "rtmp://$ONAIR_RTMP/live/bench" --loop \
    >"$OUT/hls-push.log" 2>&1 &
  PUSH_PID=$!
  PIDS+=("$PUSH_PID")
  sleep 4
  if PLAY_ADVANCE_S=8 PLAY_TIMEOUT_MS=30000 timeout 120 node tests/browser/play.mjs hls "$ONAIR_PLAY" \
    >"$OUT/hls-browser.json" 2>"$OUT/hls-browser.stderr"; then
    BROWSER_LATENCY=$(jq -r .latency "$OUT/hls-browser.json")
    echo "    $(cat "$OUT/hls-browser.json")"
  else
    echo "    the browser did not play: $(head -c 300 "$OUT/hls-browser.json")" >&2
  fi
  stop_pid "$PUSH_PID"
else
  echo "--- skipping the browser step (needs node, chromium and npm ci --prefix tests/browser)"
fi
stop_pid "$ONAIR_PID"

if [ "$SKIP_NGINX" != 1 ]; then
  if [ ! -e "$NGINX_MODULE" ] || ! command -v nginx >/dev/null; then
    echo "nginx or $NGINX_MODULE missing (apt-get install nginx libnginx-mod-rtmp); skipping nginx" >&2
  else
    echo "--- starting nginx-rtmp on $NGINX_RTMP (RTMP, HLS to $OUT/nginx-hls) and $NGINX_HTTP (HTTP)"
    rm -rf "$OUT/nginx-hls"
    mkdir -p "$OUT/nginx-hls"
    cat >"$OUT/nginx-hls.conf" <<CONF
load_module $NGINX_MODULE;
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $((VIEWERS * 2 + 1024));
pid $OUT/nginx-hls.pid;
error_log $OUT/nginx-hls-error.log warn;
events { worker_connections $((VIEWERS * 2 + 1024)); }
rtmp {
  server {
    listen $NGINX_RTMP;
    chunk_size 4096;
    application live {
      live on;
      hls on;
      hls_path $OUT/nginx-hls;
      hls_fragment 1s;
      hls_playlist_length 6s;
    }
  }
}
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  sendfile on;
  types {
    application/vnd.apple.mpegurl m3u8;
    video/mp2t ts;
  }
  server {
    listen $NGINX_HTTP;
    root $OUT/nginx-hls;
    location ~ \.m3u8\$ { add_header Cache-Control no-cache; }
  }
}
CONF
    "${SERVER_CPU[@]}" nginx -c "$OUT/nginx-hls.conf" -p "$OUT/" -e "$OUT/nginx-hls-error.log" &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_port "$NGINX_RTMP" "$NGINX_PID"
    wait_port "$NGINX_HTTP" "$NGINX_PID"
    WORKERS=$(pgrep -P "$NGINX_PID" | paste -sd, -)
    # nginx-rtmp writes MPEG-TS timestamps 700 ms (63000 ticks) ahead of the RTMP ones.
    run_bench nginx-plain plain "$VIEWERS" "http://$NGINX_HTTP/bench.m3u8" \
      "rtmp://$NGINX_RTMP/live/bench" "$NGINX_PID,$WORKERS" --timeline-offset-ms 700
    stop_pid "$NGINX_PID"
    ROWS+=(nginx-plain)
  fi
fi

echo
echo "=== $VIEWERS viewers, ${DURATION} s window, 720p30 1 s GOP, $(jq -r .bitrate_kbps.source "$OUT/onair-ll.json" | cut -d. -f1) kbit/s source"
echo "    latency: onair-ll = part ready to download after its closing frame was published (blocked requests);"
echo "             nginx-plain = segment downloaded by a poller after its closing frame was published"
echo "    all_*: ll, every part (requests sent after the part existed included): how far behind the viewers are"
{
  printf 'server\tfail\treq/s/viewer\tlat_p50_ms\tlat_p95_ms\tlat_p99_ms\tlat_max_ms\tn\tall_p50_ms\tall_p95_ms\tkbps_min\tkbps_med\tcpu_s/viewer_min\tKB/viewer\tbench_cores\n'
  for row in "${ROWS[@]}"; do
    jq -r --arg row "$row" '[$row, .failures.total, (.downloads.requests_per_viewer_sec // "-"),
      (.latency_ms.p50 // "-"), (.latency_ms.p95 // "-"), (.latency_ms.p99 // "-"),
      (.latency_ms.max // "-"), .latency_ms.count,
      (.delivery_ms.p50 // "-"), (.delivery_ms.p95 // "-"),
      (.bitrate_kbps.min // 0 | floor), (.bitrate_kbps.median // 0 | floor),
      (.server.cpu_per_viewer_minute // "-"), (.server.rss_per_viewer_kb // "-"),
      (.bench.cores * 100 | round / 100)]
      | map(if type == "number" and . != floor then (. * 10000 | round / 10000) else . end)
      | @tsv' "$OUT/$row.json"
  done
} | column -t -s $'\t'

if [[ " ${ROWS[*]} " == *" nginx-plain "* ]]; then
  echo
  echo "=== ratios onair LL-HLS / nginx-rtmp HLS (below 1 is better for onair)"
  jq -r -n --slurpfile a "$OUT/onair-ll.json" --slurpfile n "$OUT/nginx-plain.json" '
    def ratio(f): ($a[0] | f) as $x | ($n[0] | f) as $y
      | if $x == null or $y == null or $y == 0 then "-" else ($x / $y * 1000 | round / 1000) end;
    "cpu/viewer-min \(ratio(.server.cpu_per_viewer_minute))  RSS/viewer \(ratio(.server.rss_per_viewer_kb))  failures(onair:nginx) \($a[0].failures.total):\($n[0].failures.total)"'
fi
if [ -n "$BROWSER_LATENCY" ]; then
  echo
  echo "=== hls.js (low-latency mode) plays $BROWSER_LATENCY s behind the live edge (target < 2 s)"
fi
echo
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "reports: $OUT/onair-ll*.json, $OUT/nginx-plain.json, $OUT/hls-browser.json; logs: $OUT/onair-hls.log, $OUT/nginx-hls-error.log"
