# Sourced by bench/trees.sh and bench/tls.sh (bench/run.sh keeps its own
# set-up): what each benchmark script needs first.

# install_missing PACKAGE...: installs the Debian packages given, without
# letting them start their system services (the scripts start their own,
# on loopback).
install_missing() {
  [ $# -gt 0 ] || return 0
  echo "installing: $*" >&2
  local policy=/usr/sbin/policy-rc.d ours=""
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && ours=1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  if [ -n "$ours" ]; then rm -f "$policy"; fi
}

# bench_setup: builds the release binaries (BIN), makes WORK (disk) and SHM
# (tmpfs) folders, and on exit stops every pid in PIDS and removes both.
bench_setup() {
  cargo build --release -q -p file-server -p file-client
  BIN=$PWD/target/release
  WORK=$(mktemp -d)
  SHM=$(mktemp -d -p /dev/shm)
  PIDS=()
  trap bench_cleanup EXIT
}
bench_cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK" "$SHM"
}

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
median() { python3 -c 'import sys,statistics; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.2f}")' "$@"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
# kib FIELD PID: a /proc/PID/status field in KiB (VmRSS, VmHWM).
kib() { awk "/$1/ {print \$2}" "/proc/$2/status"; }
# timed CMD...: the seconds CMD takes, its output discarded.
timed() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null 2>&1; t1=$(date +%s.%N); python3 -c "print($t1-$t0)"; }
