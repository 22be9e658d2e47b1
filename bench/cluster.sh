#!/usr/bin/env bash
# Several instances on Redis behind HAProxy (issue 23), in one run, beside
# one instance reached directly: the wait for the greeting (200 newcomers at
# 50/s: connect, greeting or refusal) and echo round trips from 64 clients.
# The cluster: three instances on 127.0.0.1 sharing one redis-server, behind
# HAProxy in TCP mode with send-proxy-v2. Prints Markdown rows of medians
# and ratios. Targets: greeting p99 at most 2 ms over direct; echo
# throughput through the cluster at least 0.8x direct.
#
#   bash bench/cluster.sh      # RUNS=3 SECONDS_EACH=5 by default; bench/run.sh runs it too
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECS=${SECONDS_EACH:-5}
BASE_PORT=${BASE_PORT:-24800}

# shellcheck source=bench/common.sh
source bench/common.sh
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
install_missing "${need[@]}"
bench_setup
cargo build --release -q -p file-bench
SHARE=$WORK/share
mkdir -p "$SHARE"

field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p"; }
DIRECT=$BASE_PORT REDIS=$((BASE_PORT + 1)) FRONT=$((BASE_PORT + 2)) PROXIED=$((BASE_PORT + 6)) FRONT1=$((BASE_PORT + 7))
RUST_LOG=warn "$BIN/file-server" --bind 127.0.0.1 --port "$DIRECT" --repo "$SHARE" --max-clients 300 > /dev/null 2>&1 &
PIDS+=($!); wait_port "$DIRECT"
redis-server --bind 127.0.0.1 --port "$REDIS" --save '' --appendonly no > /dev/null 2>&1 &
PIDS+=($!); wait_port "$REDIS"
backends=""
for n in 1 2 3; do
  port=$((BASE_PORT + 2 + n))
  RUST_LOG=warn "$BIN/file-server" --bind 127.0.0.1 --port "$port" --repo "$SHARE" --max-clients 300 \
    --cluster "redis://127.0.0.1:$REDIS" --instance "i$n" --proxy-protocol --proxy-from 127.0.0.1 > /dev/null 2>&1 &
  PIDS+=($!); wait_port "$port"
  backends+="  server i$n 127.0.0.1:$port send-proxy-v2 check check-send-proxy inter 1s"$'\n'
done
# One instance alone (no Redis) behind the same HAProxy: what the balancer's hop costs by itself.
RUST_LOG=warn "$BIN/file-server" --bind 127.0.0.1 --port "$PROXIED" --repo "$SHARE" --max-clients 300 \
  --proxy-protocol --proxy-from 127.0.0.1 > /dev/null 2>&1 &
PIDS+=($!); wait_port "$PROXIED"
cat > "$WORK/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend f
  bind 127.0.0.1:$FRONT
  default_backend b
backend b
  balance roundrobin
$backends
frontend f1
  bind 127.0.0.1:$FRONT1
  default_backend b1
backend b1
  server alone 127.0.0.1:$PROXIED send-proxy-v2 check check-send-proxy inter 1s
CFG
haproxy -db -f "$WORK/haproxy.cfg" > "$WORK/haproxy.log" 2>&1 &
PIDS+=($!); wait_port "$FRONT"

d50=() d99=() c50=() c99=() drps=() crps=() prps=()
for _ in $(seq "$RUNS"); do
  out=$("$BIN/file-bench" probe "127.0.0.1:$DIRECT" --count 200 --rate 50)
  d50+=("$(field p50_ms <<< "$out")"); d99+=("$(field p99_ms <<< "$out")")
  out=$("$BIN/file-bench" probe "127.0.0.1:$FRONT" --count 200 --rate 50)
  c50+=("$(field p50_ms <<< "$out")"); c99+=("$(field p99_ms <<< "$out")")
  drps+=("$("$BIN/file-bench" echo "127.0.0.1:$DIRECT" --clients 64 --seconds "$SECS" | field rps)")
  crps+=("$("$BIN/file-bench" echo "127.0.0.1:$FRONT" --clients 64 --seconds "$SECS" | field rps)")
  prps+=("$("$BIN/file-bench" echo "127.0.0.1:$FRONT1" --clients 64 --seconds "$SECS" | field rps)")
done
D50=$(median "${d50[@]}") D99=$(median "${d99[@]}") C50=$(median "${c50[@]}") C99=$(median "${c99[@]}")
DRPS=$(median "${drps[@]}") CRPS=$(median "${crps[@]}") PRPS=$(median "${prps[@]}")
over=$(python3 -c "print(f'{$C99-$D99:+.2f}')")
cat <<MD
| connect to greeting, 200 newcomers at 50/s | one instance, direct | 3 instances on Redis, through HAProxy | difference |
|---|---|---|---|
| p50 (ms) | $D50 | $C50 | |
| p99 (ms) | $D99 | $C99 | $over ms (target at most +2) |

| echo, 64 clients, ${SECS}s | one instance, direct | one instance, through HAProxy | 3 instances on Redis, through HAProxy | cluster / direct | cluster / one through HAProxy |
|---|---|---|---|---|---|
| round trips/s | $DRPS | $PRPS | $CRPS | $(ratio "$CRPS" "$DRPS")x (target at least 0.8x) | $(ratio "$CRPS" "$PRPS")x |
MD
