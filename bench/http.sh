#!/usr/bin/env bash
# The web side (issue 14), in one run, from a tmpfs share over loopback:
# a 1 GiB file to curl (/dev/null) from file-server --http and from nginx
# (sendfile); a 1 GiB tree of 100 files as one ?tar next to our own get of
# the 1 GiB file (server memory during it); and a 4 KiB file over 64
# keep-alive connections with wrk, requests/s and p99 beside nginx; a
# PROPFIND Depth 1 of a 10,000-entry folder beside Apache's mod_dav.
# Prints Markdown rows of medians and ratios.
#
#   bash bench/http.sh         # RUNS=3 by default; bench/run.sh runs it too
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
BASE_PORT=${BASE_PORT:-24800}

# shellcheck source=bench/common.sh
source bench/common.sh
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v curl >/dev/null || need+=(curl)
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/apache2 ] || need+=(apache2-bin)
install_missing "${need[@]}"
bench_setup

SHARE=$SHM/share
mkdir -p "$SHARE/tree"
head -c 1G /dev/urandom > "$SHARE/big.bin"
per_file=$(( (1 << 30) / 100 ))
for i in $(seq -w 1 100); do head -c "$per_file" /dev/urandom > "$SHARE/tree/f$i.bin"; done
head -c 4096 /dev/urandom > "$SHARE/small.bin"
mkdir -p "$SHARE/many"
for i in $(seq -w 1 10000); do : > "$SHARE/many/file-$i.txt"; done
chmod -R a+rX "$SHM"

FS=$BASE_PORT HP=$((BASE_PORT + 1)) NG=$((BASE_PORT + 2)) AP=$((BASE_PORT + 3))
RUST_LOG=warn "$BIN/file-server" --bind 127.0.0.1 --port "$FS" --repo "$SHARE" --http "$HP" --http-max-connections 128 --http-max-per-ip 0 \
  > "$WORK/fs.out" 2> "$WORK/fs.log" &
FS_PID=$!; PIDS+=("$FS_PID"); wait_port "$HP"
# shellcheck source=bench/nginx.sh
source bench/nginx.sh
start_nginx "$WORK/nginx" "$NG" "$SHARE" "keepalive_requests 100000;"
# shellcheck source=bench/apache.sh
source bench/apache.sh
start_apache "$WORK/apache" "$AP" "$SHARE"

# Same bytes from both; our side hashes each file once (its ETag): warm it.
for url in "http://127.0.0.1:$HP/big.bin" "http://127.0.0.1:$NG/big.bin"; do
  [ "$(curl -s "$url" | sha256sum)" = "$(sha256sum < "$SHARE/big.bin")" ] || { echo "$url served other bytes" >&2; exit 1; }
done
curl -s -o /dev/null "http://127.0.0.1:$HP/small.bin"
tar_list=$(curl -s "http://127.0.0.1:$HP/tree/?tar" | tar -t | grep -c '\.bin$')
[ "$tar_list" = 100 ] || { echo "the tar held $tar_list files" >&2; exit 1; }

declare -a fs_get ng_get fs_tar
rss_before=$(kib VmRSS "$FS_PID")
for run in $(seq "$RUNS"); do
  echo "http round $run/$RUNS" >&2
  fs_get+=("$(timed curl -s -o /dev/null "http://127.0.0.1:$HP/big.bin")")
  ng_get+=("$(timed curl -s -o /dev/null "http://127.0.0.1:$NG/big.bin")")
  fs_tar+=("$(timed curl -s -o /dev/null "http://127.0.0.1:$HP/tree/?tar")")
  echo "  s: file-server ${fs_get[-1]}, nginx ${ng_get[-1]}, ?tar ${fs_tar[-1]}" >&2
done
peak=$(kib VmHWM "$FS_PID")

# 4 KiB over 64 keep-alive connections: requests/s and p99 (ms). Every
# answer must be a 200: wrk counts refusals (a 503 from a per-address cap)
# as requests too, and a run with any is stopped.
wrk_run() {   # wrk_run URL -> "req/s p99_ms"
  wrk -t2 -c64 -d5s --latency "$1" 2>/dev/null | awk '
    /Non-2xx/ {print "wrk saw refusals: " $0 > "/dev/stderr"; failed=1}
    /Requests\/sec/ {rps=$2}
    $1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v}
    END {if (failed) exit 1; print rps, p99}'
}
declare -a fs_rps ng_rps fs_p99 ng_p99
for run in $(seq "$RUNS"); do
  ours=$(wrk_run "http://127.0.0.1:$HP/small.bin") && theirs=$(wrk_run "http://127.0.0.1:$NG/small.bin") || exit 1
  read -r r p <<< "$ours"; fs_rps+=("$r"); fs_p99+=("$p")
  read -r r p <<< "$theirs"; ng_rps+=("$r"); ng_p99+=("$p")
  echo "  4 KiB: file-server ${fs_rps[-1]} req/s p99 ${fs_p99[-1]} ms, nginx ${ng_rps[-1]} req/s p99 ${ng_p99[-1]} ms" >&2
done

# PROPFIND Depth 1 of a 10,000-entry folder (WebDAV): seconds and the answer's size.
declare -a pf ap
for run in $(seq "$RUNS"); do
  pf+=("$(timed curl -s -o /dev/null -X PROPFIND -H 'Depth: 1' "http://127.0.0.1:$HP/many/")")
  ap+=("$(timed curl -s -o /dev/null -X PROPFIND -H 'Depth: 1' "http://127.0.0.1:$AP/many/")")
  echo "  PROPFIND: file-server ${pf[-1]} s, Apache ${ap[-1]} s" >&2
done
PF=$(median "${pf[@]}") AF=$(median "${ap[@]}")
count_responses() { curl -s -X PROPFIND -H 'Depth: 1' "$1" | grep -c '<D:href>'; }
[ "$(count_responses "http://127.0.0.1:$HP/many/")" = 10001 ] || { echo "our PROPFIND missed entries" >&2; exit 1; }
[ "$(count_responses "http://127.0.0.1:$AP/many/")" = 10001 ] || { echo "Apache's PROPFIND missed entries" >&2; exit 1; }
PF_BYTES=$(curl -s -X PROPFIND -H 'Depth: 1' "http://127.0.0.1:$HP/many/" | wc -c)
AF_BYTES=$(curl -s -X PROPFIND -H 'Depth: 1' "http://127.0.0.1:$AP/many/" | wc -c)
pf_peak=$(kib VmHWM "$FS_PID") af_peak=$(apache_peak_kib)

FG=$(median "${fs_get[@]}") NGG=$(median "${ng_get[@]}") FT=$(median "${fs_tar[@]}")
FR=$(median "${fs_rps[@]}") NR=$(median "${ng_rps[@]}") FP=$(median "${fs_p99[@]}") NP=$(median "${ng_p99[@]}")
mibs() { python3 -c "print(f'{1024/$1:.0f}')"; }
cat <<REPORT

### The web side: 1 GiB and a 1 GiB tree from tmpfs to curl, /dev/null (median s of $RUNS; ratios are speed)

| what | s | MiB/s | ratio |
|---|---|---|---|
| file-server --http, GET big.bin | $FG | $(mibs "$FG") | $(ratio "$NGG" "$FG")× nginx |
| nginx (sendfile), GET big.bin | $NGG | $(mibs "$NGG") | 1.00 |
| file-server --http, GET tree/?tar (100 × 10 MiB) | $FT | $(mibs "$FT") | $(ratio "$FG" "$FT")× our single-file GET |

file-server's memory: RSS $rss_before KiB before these rounds, peak (VmHWM) $peak KiB over all of them.

### 4 KiB file, 64 keep-alive connections, wrk -t2 -c64 -d5s (medians of $RUNS)

| server | requests/s | p99 ms |
|---|---|---|
| file-server --http (thread per connection) | $FR | $FP |
| nginx (1 worker) | $NR | $NP |
| file-server / nginx | $(ratio "$FR" "$NR")× | $(ratio "$FP" "$NP")× |

### WebDAV: PROPFIND Depth 1 of a 10,000-entry folder (median of $RUNS)

| server | s | answer | server peak RSS (KiB, after everything above) |
|---|---|---|---|
| file-server --http | $PF | $PF_BYTES bytes | $pf_peak |
| Apache 2.4 mod_dav_fs (event MPM) | $AF | $AF_BYTES bytes | $af_peak (its largest process) |
| file-server / Apache | $(ratio "$AF" "$PF")× speed | | |
REPORT
