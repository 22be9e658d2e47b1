#!/usr/bin/env bash
# A 1 GiB download over TLS (issue 13), in one run, from a tmpfs share to
# /dev/null: `file-client --tls` next to nginx with TLS fetched by curl (the
# same certificate, TLS 1.3, the cipher each negotiates is printed) and
# OpenSSH `sftp` (its own sshd on loopback); plain file-client beside them
# for what TLS costs. Also the server's memory during the TLS download.
# Prints Markdown rows of medians and ratios.
#
#   bash bench/tls.sh         # RUNS=3 by default; bench/run.sh runs it too
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
BASE_PORT=${BASE_PORT:-24700}

# shellcheck source=bench/common.sh
source bench/common.sh
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
install_missing "${need[@]}"
bench_setup

SHARE=$SHM/share
mkdir -p "$SHARE"
head -c 1G /dev/urandom > "$SHARE/big.bin"
chmod -R a+rX "$SHM"

# file-server with TLS: a self-signed certificate in its state folder; nginx
# serves the same certificate and key.
FS=$BASE_PORT
RUST_LOG=warn "$BIN/file-server" --bind 127.0.0.1 --port "$FS" --repo "$SHARE" --tls --state-dir "$WORK/state" \
  > "$WORK/fs.out" 2> "$WORK/fs.log" &
FS_PID=$!; PIDS+=("$FS_PID"); wait_port "$FS"
FP=$(sed -n 's/.*Fingerprint=//p' "$WORK/fs.out")
PLAIN=$((BASE_PORT + 3))
RUST_LOG=warn "$BIN/file-server" --bind 127.0.0.1 --port "$PLAIN" --repo "$SHARE" > /dev/null 2>&1 &
PIDS+=($!); wait_port "$PLAIN"

NG=$((BASE_PORT + 1))
# shellcheck source=bench/nginx.sh
source bench/nginx.sh
start_nginx "$WORK/nginx" "$NG" "$SHARE" \
  "ssl_certificate $WORK/state/cert.pem;" "ssl_certificate_key $WORK/state/key.pem;" "ssl_protocols TLSv1.3;"

# shellcheck source=bench/sshd.sh
source bench/sshd.sh
start_sshd "$WORK/ssh" $((BASE_PORT + 2))
echo "get $SHARE/big.bin /dev/null" > "$WORK/sftp.get"

# What each TLS server negotiates with OpenSSL's defaults (as curl's).
suite() { openssl s_client -connect "127.0.0.1:$1" < /dev/null 2>/dev/null | sed -n 's/^.*Cipher is \(.*\)$/\1/p' | head -1; }
FS_SUITE=$(suite "$FS") NG_SUITE=$(suite "$NG")
echo "negotiated: file-server $FS_SUITE, nginx $NG_SUITE" >&2

# Correctness first: each path delivers the same bytes.
want=$(b3sum --no-names "$SHARE/big.bin" 2>/dev/null || sha256sum "$SHARE/big.bin" | cut -d' ' -f1)
sum() { b3sum --no-names 2>/dev/null || sha256sum | cut -d' ' -f1; }
[ "$("$BIN/file-client" "127.0.0.1:$FS" --tls --fingerprint "$FP" -q -c "cat big.bin" | sum)" = "$want" ]
[ "$(curl -sk "https://127.0.0.1:$NG/big.bin" | sum)" = "$want" ]

declare -a fc_tls fc_plain ng_tls sftp_get
rss_before=$(kib VmRSS "$FS_PID")
for run in $(seq "$RUNS"); do
  echo "tls round $run/$RUNS" >&2
  fc_tls+=("$(timed "$BIN/file-client" "127.0.0.1:$FS" --tls --fingerprint "$FP" -q -c "cat big.bin")")
  ng_tls+=("$(timed curl -sk -o /dev/null "https://127.0.0.1:$NG/big.bin")")
  sftp_get+=("$(timed "${SFTP[@]}" -b "$WORK/sftp.get" root@127.0.0.1)")
  fc_plain+=("$(timed "$BIN/file-client" "127.0.0.1:$PLAIN" -q -c "cat big.bin")")
  echo "  s: file-client --tls ${fc_tls[-1]}, nginx+curl ${ng_tls[-1]}, sftp ${sftp_get[-1]}, plain ${fc_plain[-1]}" >&2
done
peak=$(kib VmHWM "$FS_PID")

FT=$(median "${fc_tls[@]}") NT=$(median "${ng_tls[@]}") ST=$(median "${sftp_get[@]}") PT=$(median "${fc_plain[@]}")
mibs() { python3 -c "print(f'{1024/$1:.0f}')"; }
cat <<REPORT

### 1 GiB over TLS to /dev/null (median s of $RUNS; ratios are speed, > 1 is faster)
Negotiated with OpenSSL's defaults: file-server \`$FS_SUITE\`, nginx \`$NG_SUITE\` (TLS 1.3, the same ECDSA P-256 certificate).

| client / server | s | MiB/s | file-client --tls is, in speed |
|---|---|---|---|
| file-client --tls / file-server --tls | $FT | $(mibs "$FT") | 1.00 |
| curl / nginx (ssl) | $NT | $(mibs "$NT") | $(ratio "$NT" "$FT")× |
| sftp / OpenSSH sshd | $ST | $(mibs "$ST") | $(ratio "$ST" "$FT")× |
| file-client / file-server, plain (sendfile) | $PT | $(mibs "$PT") | $(ratio "$PT" "$FT")× |

file-server's memory: RSS $rss_before KiB before the TLS downloads, peak (VmHWM) $peak KiB over all of them.
REPORT
