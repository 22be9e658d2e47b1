#!/usr/bin/env bash
# TFTP (issue 15), in one run, on loopback: 100 MiB from a tmpfs share to
# /dev/null with atftp (blksize 1468, windowsize 16) and with curl (defaults:
# 512-byte blocks, lock-step), from file-server --tftp and from Debian's
# tftpd-hpa serving the same folder; and ours windowed against lock-step at
# the same block size. Prints Markdown rows of medians and ratios.
#
#   bash bench/tftp.sh         # RUNS=3 by default; bench/run.sh runs it too
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
BASE_PORT=${BASE_PORT:-24900}

# shellcheck source=bench/common.sh
source bench/common.sh
need=()
[ -x /usr/sbin/in.tftpd ] || need+=(tftpd-hpa)
command -v atftp >/dev/null || need+=(atftp)
command -v curl >/dev/null || need+=(curl)
install_missing "${need[@]}"
bench_setup

SHARE=$SHM/share
mkdir -p "$SHARE"
head -c 100M /dev/urandom > "$SHARE/big.bin"
chmod -R a+rX "$SHM"
FS=$BASE_PORT TP=$((BASE_PORT + 1)) HPA=$((BASE_PORT + 2))
RUST_LOG=warn "$BIN/file-server" --bind 127.0.0.1 --port "$FS" --repo "$SHARE" --tftp "$TP" > "$WORK/fs.out" 2> "$WORK/fs.log" &
PIDS+=($!); wait_port "$FS"
# tftpd-hpa in the foreground on loopback, serving (chrooted to) the same folder.
/usr/sbin/in.tftpd -L -a "127.0.0.1:$HPA" -s "$SHARE" -B 65464 > "$WORK/hpa.log" 2>&1 &
PIDS+=($!)
sleep 0.3   # UDP has no connect to wait on; the first transfer checks it

want=$(sha256sum < "$SHARE/big.bin")
for port in "$TP" "$HPA"; do
  got=$(atftp --option "blksize 1468" --option "windowsize 16" -g -r big.bin -l /dev/stdout 127.0.0.1 "$port" 2>/dev/null | sha256sum)
  [ "$got" = "$want" ] || { echo "port $port served other bytes" >&2; exit 1; }
done

atftp_get() { atftp --option "blksize 1468" "$@" -g -r big.bin -l /dev/null 127.0.0.1 "$PORT_" > /dev/null 2>&1; }
declare -a fs_win hpa_win fs_curl hpa_curl fs_lock
for run in $(seq "$RUNS"); do
  echo "tftp round $run/$RUNS" >&2
  PORT_=$TP;  fs_win+=("$(timed atftp_get --option "windowsize 16")")
  PORT_=$HPA; hpa_win+=("$(timed atftp_get --option "windowsize 16")")
  PORT_=$TP;  fs_lock+=("$(timed atftp_get)")
  fs_curl+=("$(timed curl -s -o /dev/null "tftp://127.0.0.1:$TP/big.bin")")
  hpa_curl+=("$(timed curl -s -o /dev/null "tftp://127.0.0.1:$HPA/big.bin")")
  echo "  s: atftp w16: ours ${fs_win[-1]}, tftpd-hpa ${hpa_win[-1]}; ours lock-step ${fs_lock[-1]}; curl: ours ${fs_curl[-1]}, tftpd-hpa ${hpa_curl[-1]}" >&2
done

FW=$(median "${fs_win[@]}") HW=$(median "${hpa_win[@]}") FL=$(median "${fs_lock[@]}")
FC=$(median "${fs_curl[@]}") HC=$(median "${hpa_curl[@]}")
mibs() { python3 -c "print(f'{100/$1:.1f}')"; }
cat <<REPORT

### TFTP: 100 MiB from tmpfs to /dev/null over loopback (median s of $RUNS; ratios are speed)

| client, options | file-server --tftp | tftpd-hpa | ours is |
|---|---|---|---|
| atftp, blksize 1468, windowsize 16 | $FW s ($(mibs "$FW") MiB/s) | $HW s ($(mibs "$HW") MiB/s) | $(ratio "$HW" "$FW")× |
| curl, defaults (512-byte blocks, lock-step) | $FC s ($(mibs "$FC") MiB/s) | $HC s ($(mibs "$HC") MiB/s) | $(ratio "$HC" "$FC")× |

file-server, atftp blksize 1468: windowsize 16 $FW s against lock-step $FL s: windowed is $(ratio "$FL" "$FW")× faster.
(tftpd-hpa 5.2 does not know windowsize: it answers the same request lock-step.)
REPORT
