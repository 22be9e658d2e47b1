#!/usr/bin/env bash
# Mirrors with --delete (issue 25), in one run, on tmpfs over loopback: a
# tree of 1,000 files of 4 KiB in 20 folders is mirrored to the server; then
# 100 files change and 100 are removed on the local side, and the mirror is
# run again: `file-client put -r --delete` next to `rsync -a --delete` over
# OpenSSH (its own sshd on loopback), each from the same changed tree onto
# its own copy of the same old one. Both sides end identical (checked), and
# the table gives median seconds and the ratio. Also `--limit-rate 10M` on a
# 100 MiB download (the issue's 9-11 s).
#
#   bash bench/mirror.sh        # RUNS=3 by default; bench/run.sh runs it too
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
BASE_PORT=${BASE_PORT:-24900}

# shellcheck source=bench/common.sh
source bench/common.sh
need=()
command -v rsync >/dev/null || need+=(rsync)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
install_missing "${need[@]}"
bench_setup

SHARE=$SHM/share
mkdir -p "$SHARE"
head -c 100M /dev/urandom > "$SHARE/hundred.bin"
make_tree() {   # make_tree DIR: 1,000 files of 4 KiB in 20 folders
  python3 - "$1" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(1000):
    d = f"{root}/d{i % 20:02}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i:04}.bin", "wb") as f:
        f.write(os.urandom(4096))
PY
}
change_tree() {   # change_tree DIR: 100 files rewritten, 100 removed
  python3 - "$1" <<'PY'
import os, sys
root = sys.argv[1]
import time
later = time.time() + 5   # a new second: rsync's quick check sees the change
for i in range(0, 1000, 10):
    path = f"{root}/d{i % 20:02}/f{i:04}.bin"
    with open(path, "wb") as f:
        f.write(os.urandom(4096))
    os.utime(path, (later, later))
for i in range(5, 1000, 10):
    os.remove(f"{root}/d{i % 20:02}/f{i:04}.bin")
PY
}

FS=$BASE_PORT
"$BIN/file-server" --bind 127.0.0.1 --port "$FS" --repo "$SHARE" --allow-uploads > "$WORK/fs.out" 2> "$WORK/fs.log" &
PIDS+=($!); wait_port "$FS"
# shellcheck source=bench/sshd.sh
source bench/sshd.sh
start_sshd "$WORK/ssh" $((BASE_PORT + 1))
SSH="ssh -p $((BASE_PORT + 1)) -i $WORK/ssh/user -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"

declare -a ours theirs
for run in $(seq "$RUNS"); do
  rm -rf "$SHM/local" "$SHARE/tree" "$SHM/rsync"
  make_tree "$SHM/local/tree"
  "$BIN/file-client" "127.0.0.1:$FS" -q -c "put -r $SHM/local/tree" > /dev/null
  cp -a "$SHM/local/tree" "$SHM/rsync"
  change_tree "$SHM/local/tree"
  ours+=("$(timed "$BIN/file-client" "127.0.0.1:$FS" -q -c "put -r --delete $SHM/local/tree")")
  theirs+=("$(timed rsync -a --delete -e "$SSH" "$SHM/local/tree/" "root@127.0.0.1:$SHM/rsync/")")
  diff -r "$SHM/local/tree" "$SHARE/tree" > /dev/null || { echo "file-client's mirror differs" >&2; exit 1; }
  diff -r "$SHM/local/tree" "$SHM/rsync" > /dev/null || { echo "rsync's mirror differs" >&2; exit 1; }
  echo "  mirror round $run: put -r --delete ${ours[-1]} s, rsync --delete ${theirs[-1]} s" >&2
done
mkdir -p "$SHM/down"
limited=$(timed "$BIN/file-client" "127.0.0.1:$FS" -q --download-dir "$SHM/down" --limit-rate 10M -c "get hundred.bin")
OURS=$(median "${ours[@]}") THEIRS=$(median "${theirs[@]}")
cat <<MD
| mirror of 1,000 × 4 KiB after 100 changed and 100 removed (median s of $RUNS) | s | ratio |
|---|---|---|
| file-client put -r --delete | $OURS | $(ratio "$THEIRS" "$OURS")× rsync's speed |
| rsync -a --delete over ssh | $THEIRS | 1.00 |

| --limit-rate 10M, get of 100 MiB | s (target 9–11) |
|---|---|
| file-client | $(python3 -c "print(f'{$limited:.2f}')") |
MD
