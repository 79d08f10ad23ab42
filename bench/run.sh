#!/usr/bin/env bash
# Load benchmark: N viewers of one 720p30 ~1.5 Mbit/s stream (H.264 + AAC), against
# onair over RTMP and HTTP-FLV, then against nginx with libnginx-mod-rtmp over RTMP,
# in the same run; prints a table and the onair/nginx ratios. See bench/README.md.
#
#   VIEWERS=1000 DURATION=30 bench/run.sh
#
# Environment: VIEWERS (1000), DURATION (30 s window), RAMP (200 connects/s),
# PIN (1: servers on CPU 0, bench on CPU 1; 0: no pinning), NGINX_MODULE,
# SKIP_NGINX (1 to skip), FIXTURE_SECS (30), ONAIR_RTMP_PORT (19350),
# ONAIR_HTTP_PORT (18080), NGINX_RTMP_PORT (19351); NMS_APP=.../node-media-server/bin/app.js
# also runs node-media-server (RTMP 19352, HTTP 18082; see bench/README.md); ONAIR_SET
# (more onair settings, "key=value key=value", e.g. "rtmp.out_chunk_size=4096").
# ONAIR_BIN: a prebuilt onair to measure instead of building this checkout.
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
FIXTURE_SECS=${FIXTURE_SECS:-30}
# Seconds of publishing before the viewers: long enough for every server's per-stream
# buffers to be full (onair's frame ring, hub.viewer_queue_frames = 1024 frames, is
# 13 s of this stream), so that the RSS baseline is not per-stream memory still growing.
WARMUP=${WARMUP:-15}
NGINX_MODULE=${NGINX_MODULE:-/usr/lib/nginx/modules/ngx_rtmp_module.so}
ONAIR_RTMP=127.0.0.1:${ONAIR_RTMP_PORT:-19350}
ONAIR_HTTP=127.0.0.1:${ONAIR_HTTP_PORT:-18080}
NGINX_RTMP=127.0.0.1:${NGINX_RTMP_PORT:-19351}
NMS_APP=${NMS_APP:-}
EXTRA_SETS=()
for setting in ${ONAIR_SET:-}; do
  EXTRA_SETS+=(--set "$setting")
done
NMS_RTMP=127.0.0.1:19352
NMS_HTTP=127.0.0.1:18082
ONAIR=${ONAIR_BIN:-$ROOT/target/release/onair}

# Every viewer is a socket in the bench and one in the server (separate processes).
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
raise_fd_limit $((VIEWERS + 256))

for addr in "$ONAIR_RTMP" "$ONAIR_HTTP" "$NGINX_RTMP" "$NMS_RTMP" "$NMS_HTTP"; do
  if listening "$addr"; then
    echo "$addr is already taken by another process; set ONAIR_RTMP_PORT/ONAIR_HTTP_PORT/NGINX_RTMP_PORT" >&2
    exit 1
  fi
done

echo "--- load before the run (other work on the machine skews the figures): $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -z "${ONAIR_BIN:-}" ]; then
  echo "--- building"
  timeout 1800 cargo build --release -q
fi

FIXTURE=$OUT/stream-720p30.flv
if [ ! -s "$FIXTURE" ]; then
  echo "--- making the stream fixture ($FIXTURE_SECS s, 720p30, 1400k H.264 + 128k AAC)"
  timeout 600 ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -t "$FIXTURE_SECS" \
    -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p \
    -b:v 1400k -maxrate 1400k -bufsize 2800k -g 60 -keyint_min 60 -sc_threshold 0 \
    -c:a aac -b:a 128k -ac 2 \
    -f flv "$FIXTURE.tmp"
  mv "$FIXTURE.tmp" "$FIXTURE"
fi

# A bench run is bounded: ramp + warm-up + 15 s warm + settle + window + teardown.
BENCH_TIMEOUT=$((VIEWERS / RAMP + DURATION + WARMUP + 60))

# run_bench NAME PUBLISH_URL PLAY_URL SERVER_PIDS: writes $OUT/NAME.json.
run_bench() {
  local name=$1 publish=$2 play=$3 pids=$4
  echo "--- $name: $VIEWERS viewers, ${DURATION} s"
  RUST_LOG=warn RUST_BACKTRACE=0 timeout "$BENCH_TIMEOUT" "${BENCH_CPU[@]}" "$ONAIR" bench media \
    --publish "$FIXTURE" --publish-url "$publish" --play "$play" \
    --viewers "$VIEWERS" --ramp-per-sec "$RAMP" --duration "$DURATION" --warmup "$WARMUP" \
    --server-pid "$pids" --label "$name" --json \
    >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" || {
    echo "the bench failed:" >&2
    tail -n 5 "$OUT/$name.stderr" >&2
    return 1
  }
  tail -n 1 "$OUT/$name.stdout" | jq -c . >"$OUT/$name.json"
  jq -r '"    failures \(.failures.total), first keyframe p95 \(.first_keyframe_ms.p95) ms, latency p99 \(.latency_ms.p99) ms, CPU-s/viewer-min \(.server.cpu_per_viewer_minute), RSS KB/viewer \(.server.rss_per_viewer_kb), bench cores \(.bench.cores)"' "$OUT/$name.json"
}

# A fresh onair per protocol, so the RSS baseline of the second run is not memory the
# allocator kept from the first.
start_onair() {
  echo "--- starting onair on $ONAIR_RTMP (RTMP) and $ONAIR_HTTP (HTTP), log $OUT/onair-$1.log"
  rm -rf "$OUT/onair-data"
  "${SERVER_CPU[@]}" "$ONAIR" \
    --rtmp-listen "$ONAIR_RTMP" --http-listen "$ONAIR_HTTP" \
    --data-dir "$OUT/onair-data" --log-format json \
    --set "limits.max_connections_per_ip=$((VIEWERS * 2 + 100))" \
    --set "limits.max_connections=$((VIEWERS * 2 + 100))" \
    --set limits.requests_per_second_per_ip=0 \
    --set hls.enabled=false "${EXTRA_SETS[@]}" \
    >"$OUT/onair-$1.log" 2>&1 &
  ONAIR_PID=$!
  PIDS+=("$ONAIR_PID")
  wait_port "$ONAIR_RTMP" "$ONAIR_PID"
  wait_port "$ONAIR_HTTP" "$ONAIR_PID"
}

start_onair rtmp
run_bench onair-rtmp "rtmp://$ONAIR_RTMP/live/bench" "rtmp://$ONAIR_RTMP/live/bench" "$ONAIR_PID"
stop_pid "$ONAIR_PID"
start_onair http-flv
run_bench onair-http-flv "rtmp://$ONAIR_RTMP/live/bench" \
  "http://$ONAIR_HTTP/live/bench.flv" "$ONAIR_PID"
stop_pid "$ONAIR_PID"

ROWS=(onair-rtmp onair-http-flv)
if [ "$SKIP_NGINX" != 1 ]; then
  if [ ! -e "$NGINX_MODULE" ] || ! command -v nginx >/dev/null; then
    echo "nginx or $NGINX_MODULE missing (apt-get install nginx libnginx-mod-rtmp); skipping nginx" >&2
  else
    echo "--- starting nginx-rtmp on $NGINX_RTMP"
    cat >"$OUT/nginx.conf" <<EOF
load_module $NGINX_MODULE;
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $((VIEWERS * 2 + 1024));
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log warn;
events { worker_connections $((VIEWERS + 1024)); }
rtmp {
  server {
    listen $NGINX_RTMP;
    chunk_size 4096;
    application live { live on; }
  }
}
EOF
    "${SERVER_CPU[@]}" nginx -c "$OUT/nginx.conf" -p "$OUT/" &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_port "$NGINX_RTMP" "$NGINX_PID"
    WORKERS=$(pgrep -P "$NGINX_PID" | paste -sd, -)
    run_bench nginx-rtmp "rtmp://$NGINX_RTMP/live/bench" \
      "rtmp://$NGINX_RTMP/live/bench" "$NGINX_PID,$WORKERS"
    stop_pid "$NGINX_PID"
    ROWS+=(nginx-rtmp)
  fi
fi

if [ -n "$NMS_APP" ]; then
  for proto in rtmp http-flv; do
    echo "--- starting node-media-server on $NMS_RTMP (RTMP) and $NMS_HTTP (HTTP)"
    rm -rf "$OUT/nms-data"
    "${SERVER_CPU[@]}" node "$NMS_APP" -b 127.0.0.1 --rtmp-port "${NMS_RTMP##*:}" \
      --http-port "${NMS_HTTP##*:}" --data-path "$OUT/nms-data" --no-admin \
      >"$OUT/nms-$proto.log" 2>&1 &
    NMS_PID=$!
    PIDS+=("$NMS_PID")
    wait_port "$NMS_RTMP" "$NMS_PID"
    wait_port "$NMS_HTTP" "$NMS_PID"
    play="rtmp://$NMS_RTMP/live/bench"
    if [ "$proto" = http-flv ]; then play="http://$NMS_HTTP/live/bench.flv"; fi
    run_bench "nms-$proto" "rtmp://$NMS_RTMP/live/bench" "$play" "$NMS_PID"
    stop_pid "$NMS_PID"
    ROWS+=("nms-$proto")
  done
fi

echo
echo "=== $VIEWERS viewers, ${DURATION} s window, $(jq -r .bitrate_kbps.source "$OUT/onair-rtmp.json" | cut -d. -f1) kbit/s source"
{
  printf 'server\tfail\tkf_p50_ms\tkf_p95_ms\tlat_p50_ms\tlat_p99_ms\tkbps_min\tkbps_med\tcpu_s/viewer_min\tKB/viewer\tbench_cores\n'
  for row in "${ROWS[@]}"; do
    jq -r --arg row "$row" '[$row, .failures.total,
      (.first_keyframe_ms.p50 // "-"), (.first_keyframe_ms.p95 // "-"),
      (.latency_ms.p50 // "-"), (.latency_ms.p99 // "-"),
      (.bitrate_kbps.min // 0 | floor), (.bitrate_kbps.median // 0 | floor),
      (.server.cpu_per_viewer_minute // "-"), (.server.rss_per_viewer_kb // "-"),
      (.bench.cores * 100 | round / 100)]
      | map(if type == "number" and . != floor then (. * 10000 | round / 10000) else . end)
      | @tsv' "$OUT/$row.json"
  done
} | column -t -s $'\t'

if [[ " ${ROWS[*]} " == *" nginx-rtmp "* ]]; then
  echo
  echo "=== ratios onair / nginx-rtmp (below 1 is better for onair; nginx has no HTTP-FLV, both onair rows divide by its RTMP row)"
  {
    printf 'onair\tcpu/viewer-min\tRSS/viewer\tkf_p95\tlat_p99\tfailures(onair:nginx)\n'
    for row in onair-rtmp onair-http-flv; do
      jq -r -n --slurpfile a "$OUT/$row.json" --slurpfile n "$OUT/nginx-rtmp.json" --arg row "$row" '
        def ratio(f): ($a[0] | f) as $x | ($n[0] | f) as $y
          | if $x == null or $y == null or $y == 0 then "-" else ($x / $y * 1000 | round / 1000) end;
        [$row, ratio(.server.cpu_per_viewer_minute), ratio(.server.rss_per_viewer_kb),
         ratio(.first_keyframe_ms.p95), ratio(.latency_ms.p99),
         "\($a[0].failures.total):\($n[0].failures.total)"] | @tsv'
    done
  } | column -t -s $'\t'
fi
echo
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "reports: $OUT/*.json; server logs: $OUT/onair-*.log, $OUT/nginx-error.log"
