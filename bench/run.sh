#!/usr/bin/env bash
# Benchmarks file-server against its peers (iperf3, nginx, vsftpd, redis) on
# loopback, in one run, and prints a Markdown table of medians (RUNS runs
# each, default 3). Installs the peers
# from Debian packages when missing, starts each on a loopback port with its
# own config in a temporary folder, and stops only what it started, by pid.
#
#   bash bench/run.sh            # RUNS=3 SIZE=1G SECONDS_EACH=5 by default
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
SIZE=${SIZE:-1G}
SECS=${SECONDS_EACH:-5}
BASE_PORT=${BASE_PORT:-24100}

need=()
for pair in iperf3:iperf3 nginx:nginx-light redis-server:redis-server vsftpd:vsftpd curl:curl python3:python3; do
  command -v "${pair%%:*}" >/dev/null || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  # The packages would start system services (nginx on :80, vsftpd on :21,
  # redis) on every address; this script starts its own, on loopback only.
  policy=/usr/sbin/policy-rc.d ours=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && ours=1
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  if [ -n "$ours" ]; then rm -f "$policy"; trap - EXIT; fi
fi

VSFTPD=$(command -v vsftpd || echo /usr/sbin/vsftpd)

cargo build --release -q -p file-server -p file-client -p file-bench
BIN=$PWD/target/release

WORK=$(mktemp -d)
SHM=$(mktemp -d -p /dev/shm)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v):.1f}")' "$@"; }
median2() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v):.2f}")' "$@"; }
field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p"; }   # field NAME < "a=1 NAME=2"
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

echo "preparing a $SIZE file" >&2
chmod 755 "$WORK"   # nginx's worker runs as an unprivileged user
mkdir -p "$WORK/share"
head -c "$SIZE" /dev/urandom > "$WORK/share/big.bin"
BYTES=$(stat -c %s "$WORK/share/big.bin")
sync "$WORK/share/big.bin"               # no writeback of it during the runs
cat "$WORK/share/big.bin" > /dev/null   # warm the page cache
# In a VM, memory the guest has not touched yet (or gave back) costs a fault
# on the host the first time: write the tmpfs copy's size once beforehand.
head -c "$BYTES" /dev/zero > "$SHM/warm" && rm -f "$SHM/warm"

# --- file-server --------------------------------------------------------
start_server() {   # start_server PORT ARGS...
  local port=$1; shift
  RUST_LOG=warn "$BIN/file-server" --bind 127.0.0.1 --port "$port" --repo "$WORK/share" "$@" > "$WORK/fs-$port.out" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_port "$port"
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# Holds N idle sessions on the server and prints its RSS once all are open.
rss_with_idle_clients() {
  local n=$1 out="$WORK/idle-$1" hold
  "$BIN/file-bench" idle "127.0.0.1:$FS" --clients "$n" --seconds 2 > "$out" &
  hold=$!; PIDS+=("$hold")
  until grep -q holding "$out" 2>/dev/null; do
    kill -0 "$hold" 2>/dev/null || { echo "file-bench idle failed" >&2; exit 1; }
    sleep 0.05
  done
  rss_kib "$SERVER_PID"
  wait "$hold"
}

FS=$BASE_PORT
start_server "$FS" --max-clients 64
"$BIN/file-client" "127.0.0.1:$FS" -q -c "cat big.bin" > /dev/null   # hash once (cached after)

mbps() { python3 -c "print(f'{$BYTES/$1/1e6:.1f}')"; }
timed() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N); python3 -c "print($t1-$t0)"; }

# --- iperf3: the loopback limit ----------------------------------------
IP=$((BASE_PORT + 1))
iperf3 -s -p "$IP" -B 127.0.0.1 > /dev/null 2>&1 &
IPERF_PID=$!; PIDS+=("$IPERF_PID"); wait_port "$IP"

# --- nginx with sendfile, fetched by curl --------------------------------
NG=$((BASE_PORT + 2))
# shellcheck source=bench/nginx.sh
source bench/nginx.sh
start_nginx "$WORK/nginx" "$NG" "$WORK/share"
got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$NG/big.bin")
[ "$got" = "200 $BYTES" ] || { echo "nginx did not serve the file: $got" >&2; exit 1; }

# --- vsftpd (sendfile), fetched by curl over FTP ---------------------------
VS=$((BASE_PORT + 4))
# shellcheck source=bench/vsftpd.sh
source bench/vsftpd.sh
start_vsftpd "$WORK/vsftpd" "$WORK/share" "$VS" $((BASE_PORT + 10)) $((BASE_PORT + 19)) write_enable=NO
got=$(curl -s -o /dev/null -w '%{response_code} %{size_download}' "ftp://127.0.0.1:$VS/big.bin")
[ "$got" = "226 $BYTES" ] || { echo "vsftpd did not serve the file: $got $(cat "$WORK/vsftpd/out")" >&2; exit 1; }

# --- get: one round of every contender per run, so drift hits all alike ------
declare -a get_null get_shm iperf iperf_zc nginx_curl nginx_shm vsftpd_curl
iperf_mbps() {   # iperf_mbps [-Z]: one 1-stream run of $BYTES, received MB/s
  iperf3 -c 127.0.0.1 -p "$IP" -n "$BYTES" -J "$@" |
    python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 8e6))'
}
for run in $(seq "$RUNS"); do
  echo "get round $run/$RUNS" >&2
  get_null+=("$(mbps "$(timed "$BIN/file-client" "127.0.0.1:$FS" -q -c "cat big.bin")")")
  rm -f "$SHM/big.bin"
  get_shm+=("$(mbps "$(timed "$BIN/file-client" "127.0.0.1:$FS" -q --download-dir "$SHM" -c "get big.bin")")")
  rm -f "$SHM/big.bin"
  iperf+=("$(iperf_mbps)")
  iperf_zc+=("$(iperf_mbps -Z)")
  nginx_curl+=("$(mbps "$(timed curl -s -o /dev/null "http://127.0.0.1:$NG/big.bin")")")
  nginx_shm+=("$(mbps "$(timed curl -s -o "$SHM/big.bin" "http://127.0.0.1:$NG/big.bin")")")
  rm -f "$SHM/big.bin"
  vsftpd_curl+=("$(mbps "$(timed curl -s -o /dev/null "ftp://127.0.0.1:$VS/big.bin")")")
  echo "  MB/s: cat ${get_null[-1]}, get ${get_shm[-1]}, iperf3 ${iperf[-1]}, iperf3 -Z ${iperf_zc[-1]}, nginx ${nginx_curl[-1]}, nginx→tmpfs ${nginx_shm[-1]}, vsftpd ${vsftpd_curl[-1]}" >&2
done
stop_pid "$IPERF_PID"; stop_pid "$NGINX_PID"; stop_pid "$VSFTPD_PID"

# --- request/response: echo vs redis PING, same load tool ---------------------
RD=$((BASE_PORT + 3))
redis-server --bind 127.0.0.1 --port "$RD" --save '' --appendonly no --daemonize no > /dev/null &
REDIS_PID=$!; PIDS+=("$REDIS_PID"); wait_port "$RD"
declare -A echo_rps echo_p99 redis_rps redis_p99 echo_p50 redis_p50 echo_p999 redis_p999
for c in 1 3 64; do
  e_rps=(); e50=(); e99=(); e999=(); r_rps=(); r50=(); r99=(); r999=()
  for _ in $(seq "$RUNS"); do
    out=$("$BIN/file-bench" echo "127.0.0.1:$FS" --clients "$c" --seconds "$SECS")
    e_rps+=("$(field rps <<< "$out")"); e50+=("$(field p50_us <<< "$out")"); e99+=("$(field p99_us <<< "$out")"); e999+=("$(field p999_us <<< "$out")")
    out=$("$BIN/file-bench" redis "127.0.0.1:$RD" --clients "$c" --seconds "$SECS")
    r_rps+=("$(field rps <<< "$out")"); r50+=("$(field p50_us <<< "$out")"); r99+=("$(field p99_us <<< "$out")"); r999+=("$(field p999_us <<< "$out")")
  done
  echo_rps[$c]=$(median "${e_rps[@]}"); echo_p50[$c]=$(median "${e50[@]}"); echo_p99[$c]=$(median "${e99[@]}"); echo_p999[$c]=$(median "${e999[@]}")
  redis_rps[$c]=$(median "${r_rps[@]}"); redis_p50[$c]=$(median "${r50[@]}"); redis_p99[$c]=$(median "${r99[@]}"); redis_p999[$c]=$(median "${r999[@]}")
done
stop_pid "$REDIS_PID"

# --- sessions -------------------------------------------------------------
cycles=()
for _ in $(seq "$RUNS"); do cycles+=("$("$BIN/file-bench" sessions "127.0.0.1:$FS" --seconds "$SECS" | field per_sec)"); done

# --- memory: idle, 3 clients, during a get ---------------------------------------
stop_pid "$SERVER_PID"
start_server "$FS" --max-clients 3
rss_idle=$(rss_kib "$SERVER_PID")
rss_3=$(rss_with_idle_clients 3)
before=$(rss_kib "$SERVER_PID")
"$BIN/file-client" "127.0.0.1:$FS" -q -c "cat big.bin" > /dev/null &
GET=$!; PIDS+=("$GET")
peak=$before
while kill -0 "$GET" 2>/dev/null; do r=$(rss_kib "$SERVER_PID" || echo 0); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.02; done
wait "$GET" || true
growth=$((peak - before))

# --- refusals under a flood, and the admitted clients' echo p99 -----------------
calms=(); floods=(); refused=(); flood_ratios=()
for _ in $(seq "$RUNS"); do
  calm=$("$BIN/file-bench" echo "127.0.0.1:$FS" --clients 3 --seconds "$SECS" | field p99_us)
  # They run a second longer than the flood, which starts once they are in, so
  # the flood never finds a free slot.
  rm -f "$WORK/under-flood.err"
  "$BIN/file-bench" echo "127.0.0.1:$FS" --clients 3 --seconds "$(python3 -c "print($SECS + 1)")" > "$WORK/under-flood" 2> "$WORK/under-flood.err" &
  ADMITTED=$!; PIDS+=("$ADMITTED")
  until grep -q connected "$WORK/under-flood.err" 2>/dev/null; do
    kill -0 "$ADMITTED" 2>/dev/null || { echo "echo clients failed: $(cat "$WORK/under-flood.err")" >&2; exit 1; }
    sleep 0.05
  done
  refused+=("$("$BIN/file-bench" flood "127.0.0.1:$FS" --threads 2 --seconds "$SECS" | field per_sec)")
  wait "$ADMITTED"
  flooded=$(field p99_us < "$WORK/under-flood")
  calms+=("$calm"); floods+=("$flooded")
  flood_ratios+=("$(python3 -c "print($flooded / $calm)")")
  echo "  flood: calm p99 $calm µs, flooded $flooded µs, ${refused[-1]} refusals/s" >&2
done

# --- the door on a busy machine --------------------------------------------------
# Two CPU-bound processes keep both cores busy (as sessions hashing big files
# would); with the cap (3) reached by three echo clients, two threads connect
# and hang up at once, as fast as they can (a hostile peer does not wait for
# its refusal), while 200 newcomers arrive at 20/s and time their greeting or
# refusal. Each burner ends by itself (timeout) and is stopped by pid.
door_calm=(); door_flooded=(); door_ratio=(); door_connects=(); probe_p50=(); probe_p99=(); probe_max=(); probe_slow=0
for _ in $(seq "$RUNS"); do
  timeout 30 python3 -c 'while True: pass' & B1=$!; PIDS+=("$B1")
  timeout 30 python3 -c 'while True: pass' & B2=$!; PIDS+=("$B2")
  calm=$("$BIN/file-bench" echo "127.0.0.1:$FS" --clients 3 --seconds 5 | field p99_us)
  rm -f "$WORK/door.err"
  "$BIN/file-bench" echo "127.0.0.1:$FS" --clients 3 --seconds 12 > "$WORK/door" 2> "$WORK/door.err" &
  ADMITTED=$!; PIDS+=("$ADMITTED")
  until grep -q connected "$WORK/door.err" 2>/dev/null; do
    kill -0 "$ADMITTED" 2>/dev/null || { echo "echo clients failed: $(cat "$WORK/door.err")" >&2; exit 1; }
    sleep 0.05
  done
  "$BIN/file-bench" flood "127.0.0.1:$FS" --threads 2 --seconds 11 --hang-up > "$WORK/door.flood" &
  FLOOD=$!; PIDS+=("$FLOOD")
  probes=$("$BIN/file-bench" probe "127.0.0.1:$FS" --count 200 --rate 20)
  wait "$FLOOD"; wait "$ADMITTED"
  stop_pid "$B1"; stop_pid "$B2"
  flooded=$(field p99_us < "$WORK/door")
  door_calm+=("$calm"); door_flooded+=("$flooded"); door_ratio+=("$(python3 -c "print($flooded / $calm)")")
  door_connects+=("$(field per_sec < "$WORK/door.flood")")
  probe_p50+=("$(echo "$probes" | field p50_ms)"); probe_p99+=("$(echo "$probes" | field p99_ms)")
  probe_max+=("$(echo "$probes" | field max_ms)")
  probe_slow=$((probe_slow + $(echo "$probes" | field over_200ms)))
  echo "  door: calm p99 $calm µs, flooded $flooded µs; newcomers $probes" >&2
done
stop_pid "$SERVER_PID"

# --- a say flood at clients that never read ------------------------------------------
start_server "$FS" --max-clients 200
say_before=$(rss_kib "$SERVER_PID")
"$BIN/file-bench" say "127.0.0.1:$FS" --sleepers 150 --count 1200 > "$WORK/say" &
SAY=$!; PIDS+=("$SAY")
say_peak=$say_before
while kill -0 "$SAY" 2>/dev/null; do r=$(rss_kib "$SERVER_PID" || echo 0); [ "$r" -gt "$say_peak" ] && say_peak=$r; sleep 0.02; done
wait "$SAY"
say_result=$(cat "$WORK/say")
stop_pid "$SERVER_PID"

# --- 1,000 idle clients -----------------------------------------------------------
start_server "$FS" --max-clients 1000
# One session in and out first, so the idle figure includes what any server
# that has served once holds (its first session thread, the log's buffers).
# Session threads start as sessions arrive: the other 999 are counted in
# the per-client figure.
"$BIN/file-client" "127.0.0.1:$FS" -q -c status > /dev/null
base=$(rss_kib "$SERVER_PID")
rss_1000=$(rss_with_idle_clients 1000)
stop_pid "$SERVER_PID"

# --- report --------------------------------------------------------------------
G=$(median "${get_null[@]}"); GS=$(median "${get_shm[@]}"); I=$(median "${iperf[@]}"); N=$(median "${nginx_curl[@]}")
NS=$(median "${nginx_shm[@]}"); IZ=$(median "${iperf_zc[@]}")
V=$(median "${vsftpd_curl[@]}")
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
cat <<REPORT
## Run of $(date -u +%Y-%m-%d) on $(nproc) cores, Linux $(uname -r); medians of $RUNS runs

### get throughput ($SIZE, warm page cache)
| what | MB/s | vs iperf3 | vs nginx+curl |
|---|---|---|---|
| file-client cat → /dev/null | $G | $(ratio "$G" "$I") | $(ratio "$G" "$N") |
| file-client get → tmpfs | $GS | $(ratio "$GS" "$I") | $(ratio "$GS" "$NS") (vs curl → tmpfs) |
| nginx (sendfile) + curl → /dev/null | $N | $(ratio "$N" "$I") | 1.00 |
| nginx (sendfile) + curl → tmpfs | $NS | $(ratio "$NS" "$I") | 1.00 (tmpfs) |
| vsftpd (sendfile) + curl → /dev/null | $V | $(ratio "$V" "$I") | $(ratio "$V" "$N") |
| iperf3 single stream (-n $SIZE) | $I | 1.00 | |
| iperf3 single stream, sendfile (-Z -n $SIZE) | $IZ | $(ratio "$IZ" "$I") | |

### Request/response (file-bench, ${SECS}s per run)
| clients | echo req/s | redis PING req/s | ratio | echo p50/p99/p99.9 µs | redis p50/p99/p99.9 µs |
|---|---|---|---|---|---|
REPORT
for c in 1 3 64; do
  echo "| $c | ${echo_rps[$c]} | ${redis_rps[$c]} | $(ratio "${echo_rps[$c]}" "${redis_rps[$c]}") | ${echo_p50[$c]} / ${echo_p99[$c]} / ${echo_p999[$c]} | ${redis_p50[$c]} / ${redis_p99[$c]} / ${redis_p999[$c]} |"
done
cat <<REPORT

### Sessions
| what | value |
|---|---|
| connect → greeting → exit cycles/s | $(median "${cycles[@]}") |
| refusals/s under a 2-thread flood (cap 3 reached) | $(median "${refused[@]}") |
| admitted clients' echo p99, calm → during flood (µs) | $(median "${calms[@]}") → $(median "${floods[@]}"); median of the per-run ratios $(median2 "${flood_ratios[@]}")× |
| busy machine (2 CPU-bound processes): connects/s of a 2-thread hang-up flood | $(median "${door_connects[@]}") |
| busy machine: admitted clients' echo p99, calm → during that flood (µs) | $(median "${door_calm[@]}") → $(median "${door_flooded[@]}"); median of the per-run ratios $(median2 "${door_ratio[@]}")× |
| busy machine: 200 newcomers at 20/s during that flood, time to greeting or refusal (ms, medians of runs) | p50 $(median "${probe_p50[@]}"), p99 $(median "${probe_p99[@]}"), max $(median "${probe_max[@]}"); worst max of any run $(python3 -c 'import sys; print(max(float(x) for x in sys.argv[1:]))' "${probe_max[@]}"); over 200 ms: $probe_slow of $((200 * RUNS)) |

### Memory (server RSS)
| what | KiB |
|---|---|
| idle | $rss_idle |
| 3 clients | $rss_3 |
| idle, --max-clients 1000 (after one session; threads start as sessions arrive) | $base |
| 1,000 idle clients (--max-clients 1000) | $rss_1000 ($(( rss_1000 / 1000 )) KiB per client in all, $(( (rss_1000 - base) / 1000 )) KiB each beyond the idle server) |
| growth during a $SIZE get | $growth |
| say flood: 150 clients that never read, one saying 4 KiB of control characters 1,200 times ($say_result) | $say_before → peak $say_peak |
REPORT

# Whole trees (get -r / put -r) next to sftp -r and lftp mirror: their own script.
RUNS=$RUNS BASE_PORT=$((BASE_PORT + 100)) bash bench/trees.sh

# 1 GiB over TLS next to nginx with TLS and sftp: its own script too.
RUNS=$RUNS BASE_PORT=$((BASE_PORT + 200)) bash bench/tls.sh

# The web side next to nginx: its own script too.
RUNS=$RUNS BASE_PORT=$((BASE_PORT + 300)) bash bench/http.sh

# TFTP next to tftpd-hpa: its own script too.
RUNS=$RUNS BASE_PORT=$((BASE_PORT + 400)) bash bench/tftp.sh

# Several instances on Redis behind HAProxy, beside one direct: its own script too.
RUNS=$RUNS BASE_PORT=$((BASE_PORT + 500)) bash bench/cluster.sh

# Mirrors with --delete beside rsync over ssh, and --limit-rate: its own script too.
RUNS=$RUNS BASE_PORT=$((BASE_PORT + 600)) bash bench/mirror.sh
