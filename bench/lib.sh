# Shared by bench/run.sh and bench/rooms.sh (sourced, not run): the file-descriptor
# limit, CPU pinning, stopping what the script started, and waiting for a port.
# Expects PIN (1 to pin) and OUT (where server logs go) to be set.

# raise_fd_limit N: at least N descriptors, or exit.
raise_fd_limit() {
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  if [ "$(ulimit -n)" -lt "$1" ]; then
    echo "ulimit -n is $(ulimit -n): too low for $1 descriptors" >&2
    exit 1
  fi
}

# Two cores: each server gets CPU 0 to itself and the bench gets CPU 1, so the load
# generator never steals the server's cycles. nginx runs one worker (its live module
# only relays between workers with rtmp_auto_push); onair then sees one CPU, and
# tokio starts one worker thread; Node runs its event loop on one. Each server
# therefore gets exactly one core.
SERVER_CPU=()
BENCH_CPU=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_CPU=(taskset -c 0)
  BENCH_CPU=(taskset -c 1)
fi

PIDS=()
# stop_pid PID: SIGTERM, up to 10 s to exit, then SIGKILL.
stop_pid() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
}
trap cleanup EXIT

listening() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# wait_port ADDR PID: until ADDR accepts connections, as long as PID lives (10 s at most).
wait_port() {
  for _ in $(seq 100); do
    if ! kill -0 "$2" 2>/dev/null; then
      echo "the server (pid $2) exited; see its log in $OUT" >&2
      return 1
    fi
    if listening "$1"; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}
