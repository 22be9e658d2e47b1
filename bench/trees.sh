#!/usr/bin/env bash
# Whole trees and uploads over loopback (issue 12), in one run, on tmpfs:
# `file-client get -r` / `put -r` next to OpenSSH `sftp -r` (its own sshd on
# loopback) and `lftp mirror` / `mirror -R` against vsftpd; then a 1 GiB
# `put` next to our own `get` of it and `curl -T` to vsftpd. The tree: 1,000
# files of 4 KiB and 10 of 10 MiB in 20 folders. Prints Markdown rows of
# median seconds and ratios.
#
#   bash bench/trees.sh         # RUNS=3 by default; bench/run.sh runs it too
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
BASE_PORT=${BASE_PORT:-24600}

# shellcheck source=bench/common.sh
source bench/common.sh
need=()
command -v lftp >/dev/null || need+=(lftp)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/sbin/vsftpd ] || need+=(vsftpd)
install_missing "${need[@]}"
bench_setup

# The tree, in the share that every server serves.
SHARE=$SHM/share
python3 - "$SHARE/tree" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(20):
    os.makedirs(f"{root}/d{d:02}", exist_ok=True)
for i in range(1000):
    with open(f"{root}/d{i % 20:02}/small{i:04}.bin", "wb") as f:
        f.write(os.urandom(4096))
for i in range(10):
    with open(f"{root}/d{i:02}/big{i}.bin", "wb") as f:
        f.write(os.urandom(10 << 20))
PY
chmod -R a+rX "$SHM"
BYTES=$(du -sb "$SHARE/tree" | cut -f1)

# file-server
FS=$BASE_PORT
"$BIN/file-server" --bind 127.0.0.1 --port "$FS" --repo "$SHARE" --allow-uploads --max-clients 8 > "$WORK/fs.out" 2> "$WORK/fs.log" &
PIDS+=($!); wait_port "$FS"

# sshd, for sftp.
# shellcheck source=bench/sshd.sh
source bench/sshd.sh
start_sshd "$WORK/ssh" $((BASE_PORT + 1))

# vsftpd, for lftp and curl: anonymous, reading the share, writing into its
# incoming/ (vsftpd refuses a writable root).
mkdir -p "$SHARE/incoming" && chown ftp:ftp "$SHARE/incoming"
VS=$((BASE_PORT + 2))
# shellcheck source=bench/vsftpd.sh
source bench/vsftpd.sh
start_vsftpd "$WORK/vsftpd" "$SHARE" "$VS" $((BASE_PORT + 10)) $((BASE_PORT + 40)) \
  write_enable=YES anon_upload_enable=YES anon_mkdir_write_enable=YES anon_other_write_enable=YES anon_umask=022 \
  max_per_ip=0

same() { diff -rq "$SHARE/tree" "$1" > /dev/null || { echo "$2 did not copy the tree" >&2; exit 1; }; }
# The server hashes each file once; do that before timing, as a warm server has.
"$BIN/file-client" "127.0.0.1:$FS" -q --download-dir "$SHM" -c "get -r tree" > /dev/null
rm -rf "$SHM/tree"

declare -a fc_get sftp_get lftp_get fc_put sftp_put lftp_put
for run in $(seq "$RUNS"); do
  echo "tree round $run/$RUNS" >&2
  out=$SHM/out; rm -rf "$out"; mkdir -p "$out"
  fc_get+=("$(timed "$BIN/file-client" "127.0.0.1:$FS" -q --download-dir "$out" -c "get -r tree")"); same "$out/tree" "file-client get -r"; rm -rf "$out/tree"
  printf 'get -r %s/tree %s/tree\n' "$SHARE" "$out" > "$WORK/sftp.get"
  sftp_get+=("$(timed "${SFTP[@]}" -b "$WORK/sftp.get" root@127.0.0.1)"); same "$out/tree" "sftp get -r"; rm -rf "$out/tree"
  lftp_get+=("$(timed lftp -e "set ftp:passive-mode on; mirror --parallel=1 tree $out/tree; quit" "ftp://anonymous:@127.0.0.1:$VS")"); same "$out/tree" "lftp mirror"
  # Uploads: the tree just fetched, into a fresh folder of the share each time.
  fc_put+=("$(timed bash -c "cd '$out' && '$BIN/file-client' 127.0.0.1:$FS -q -c 'put -r tree up-fc$run'")"); diff -rq "$SHARE/tree" "$SHARE/up-fc$run" > /dev/null
  printf 'put -r %s/tree %s/up-sftp%s\n' "$out" "$SHARE" "$run" > "$WORK/sftp.put"
  sftp_put+=("$(timed "${SFTP[@]}" -b "$WORK/sftp.put" root@127.0.0.1)"); diff -rq "$SHARE/tree" "$SHARE/up-sftp$run" > /dev/null
  lftp_put+=("$(timed lftp -e "set ftp:passive-mode on; mirror -R --parallel=1 $out/tree incoming/up-lftp$run; quit" "ftp://anonymous:@127.0.0.1:$VS")")
  diff -rq "$SHARE/tree" "$SHARE/incoming/up-lftp$run" > /dev/null || { echo "lftp mirror -R did not copy the tree" >&2; exit 1; }
  rm -rf "$SHARE/up-fc$run" "$SHARE/up-sftp$run" "$SHARE/incoming/up-lftp$run"
  echo "  s: get -r ${fc_get[-1]}, sftp ${sftp_get[-1]}, lftp ${lftp_get[-1]}; put -r ${fc_put[-1]}, sftp ${sftp_put[-1]}, lftp -R ${lftp_put[-1]}" >&2
done

# Uploads of one big file: 1 GiB from tmpfs to the tmpfs share. Our `get` of
# the same bytes (already hashed) is the yardstick; curl -T is FTP STOR.
head -c 1G /dev/urandom > "$SHM/big.bin"
cp "$SHM/big.bin" "$SHARE/big.bin"
"$BIN/file-client" "127.0.0.1:$FS" -q -c "hash big.bin" > /dev/null
declare -a put_1g get_1g curl_1g
# This VM hands freed memory back to its host (free page reporting), so
# whichever transfer first writes 1 GiB after a pause can pay seconds of page
# faults: each transfer is preceded by writing and removing 1 GiB of zeros on
# the same tmpfs (so its pages are ones just used), and the order of the
# three turns each round, so none is always first.
warm() { head -c 1G /dev/zero > "$SHM/ballast"; rm -f "$SHM/ballast"; }
put_round() {
  warm
  put_1g+=("$(timed bash -c "cd '$SHM' && '$BIN/file-client' 127.0.0.1:$FS -q -c 'put big.bin up$run.bin'")")
  cmp -s "$SHM/big.bin" "$SHARE/up$run.bin" || { echo "put did not store the file" >&2; exit 1; }
  rm -f "$SHARE/up$run.bin"
}
get_round() {
  warm
  get_1g+=("$(timed "$BIN/file-client" "127.0.0.1:$FS" -q --download-dir "$SHM/out" -c "get big.bin")")
  cmp -s "$SHM/big.bin" "$SHM/out/big.bin" || { echo "get did not fetch the file" >&2; exit 1; }
  rm -f "$SHM/out/big.bin"
}
curl_round() {
  warm
  curl_1g+=("$(timed curl -s -T "$SHM/big.bin" "ftp://127.0.0.1:$VS/incoming/up$run.bin")")
  cmp -s "$SHM/big.bin" "$SHARE/incoming/up$run.bin" || { echo "curl -T did not store the file" >&2; exit 1; }
  rm -f "$SHARE/incoming/up$run.bin"
}
order=(put_round get_round curl_round)
for run in $(seq "$RUNS"); do
  echo "upload round $run/$RUNS" >&2
  for i in 0 1 2; do "${order[$(((i + run) % 3))]}"; done
  echo "  s: put ${put_1g[-1]}, get ${get_1g[-1]}, curl -T ${curl_1g[-1]}" >&2
done

FG=$(median "${fc_get[@]}") SG=$(median "${sftp_get[@]}") LG=$(median "${lftp_get[@]}")
FP=$(median "${fc_put[@]}") SP2=$(median "${sftp_put[@]}") LP=$(median "${lftp_put[@]}")
P1=$(median "${put_1g[@]}") G1=$(median "${get_1g[@]}") C1=$(median "${curl_1g[@]}")
best() { python3 -c 'import sys; print(f"{min(float(x) for x in sys.argv[1:]):.2f}")' "$@"; }
PB=$(best "${put_1g[@]}") GB=$(best "${get_1g[@]}") CB=$(best "${curl_1g[@]}")
mbs() { python3 -c "print(f'{2**30/$1/1e6:.0f}')"; }
cat <<TABLE

### Trees: 1,000 × 4 KiB + 10 × 10 MiB in 20 folders ($(python3 -c "print(f'{$BYTES/2**20:.0f}')") MiB), tmpfs to tmpfs; medians of $RUNS runs, seconds

| transfer | seconds | × sftp -r | × lftp mirror |
|---|---|---|---|
| file-client get -r | $FG | $(ratio "$FG" "$SG") | $(ratio "$FG" "$LG") |
| OpenSSH sftp get -r | $SG | 1.00 | $(ratio "$SG" "$LG") |
| lftp mirror (vsftpd) | $LG | $(ratio "$LG" "$SG") | 1.00 |
| file-client put -r | $FP | $(ratio "$FP" "$SP2") | $(ratio "$FP" "$LP") |
| OpenSSH sftp put -r | $SP2 | 1.00 | $(ratio "$SP2" "$LP") |
| lftp mirror -R (vsftpd) | $LP | $(ratio "$LP" "$SP2") | 1.00 |

### One 1 GiB file, tmpfs to tmpfs; medians of $RUNS runs

| transfer | seconds | MB/s | throughput × our get | × curl -T |
|---|---|---|---|---|
| file-client put | $P1 | $(mbs "$P1") | $(ratio "$G1" "$P1") | $(ratio "$C1" "$P1") |
| file-client get (hashed already) | $G1 | $(mbs "$G1") | 1.00 | $(ratio "$C1" "$G1") |
| curl -T to vsftpd (STOR) | $C1 | $(mbs "$C1") | $(ratio "$G1" "$C1") | 1.00 |

Best of $RUNS rounds (the steady state, without the VM's page-fault stalls): put $PB s, get $GB s, curl -T $CB s; put's throughput × our get $(ratio "$GB" "$PB"), × curl -T $(ratio "$CB" "$PB").
TABLE
