#!/usr/bin/env bash
# The attacks of issue 21, for a fixed time each, against a release
# file-server. Guessing (accounts, default --login-delay 0.5): guesses
# checked per minute, the server's peak memory, and the worst wait of a
# user logging in meanwhile from another address. The doors: one host
# holding connections open (silent TLS handshakes, trickling web requests,
# forged TFTP requests), and the worst wait of a client on another address.
# Loopback only: 127.0.0.3 attacks, 127.0.1.1-250 attack together,
# 127.0.0.2 is the user.
#   SECS=60 bash bench/attack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
SECS=${SECS:-30}
PORT=${BASE_PORT:-24100}
bench_setup

printf 'alice pw\n' | "$BIN/file-server" adduser --users "$WORK/users" alice --write >/dev/null
printf 'bob pw\n' | "$BIN/file-server" adduser --users "$WORK/users" bob >/dev/null
mkdir -p "$WORK/share"

# attack NAME WORKERS SOURCES HTTP: one run on a fresh server; prints a table row.
attack() {
  local name=$1 workers=$2 sources=$3 door=$4 port=$((PORT)) http=$((PORT + 1))
  PORT=$((PORT + 2))
  RUST_LOG=warn "$BIN/file-server" --bind 127.0.0.1 --port "$port" --http "$http" --repo "$WORK/share" \
    --users "$WORK/users" --insecure-plaintext-login --max-clients 1000 --http-max-connections 64 \
    > /dev/null 2> "$WORK/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  wait_port "$port"
  python3 - "$port" "$http" "$workers" "$sources" "$SECS" "$door" "$pid" <<'PY'
import base64, socket, sys, threading, time
port, http, workers, sources, secs, door, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6], sys.argv[7]

def line_login(src, user, pw):
    s = socket.socket(); s.bind((src, 0)); s.settimeout(120); s.connect(("127.0.0.1", port))
    f = s.makefile("rb")
    g = f.readline()
    if not g.startswith(b"OK"): s.close(); return "full" if src != "127.0.0.2" else "full:" + g.decode(errors="replace").strip()
    f.read(int(g.split()[1]))
    s.sendall(f"login {user} {pw}\n".encode())
    while True:
        l = f.readline()
        if l.startswith(b"EVT"): f.read(int(l.split()[1])); continue
        s.close()
        return {b"OK": "in", b"ERR 401": "wrong", b"ERR 429": "later"}.get(l[:7] if l.startswith(b"ERR") else l[:2], "other:" + l.decode(errors="replace"))

def http_login(src, user, pw):
    s = socket.socket(); s.bind((src, 0)); s.settimeout(120)
    try: s.connect(("127.0.0.1", http))
    except OSError: return "full"
    cred = base64.b64encode(f"{user}:{pw}".encode()).decode()
    s.sendall(f"GET /.status.json HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {cred}\r\nConnection: close\r\n\r\n".encode())
    head = s.recv(64); s.close()
    code = head[9:12]
    return {b"200": "in", b"401": "wrong", b"429": "later", b"503": "full"}.get(code, "other:" + head.decode(errors="replace"))

login = http_login if door == "http" else line_login
counts, lock, until = {}, threading.Lock(), time.time() + secs
def worker(w):
    src = f"127.0.1.{w % sources + 1}" if sources > 1 else "127.0.0.3"
    i = 0
    while time.time() < until:
        # One worker in eight logs in to its own account (bob) between guesses.
        user, pw = ("bob", "bob pw") if (w % 8 == 0 and i % 2) else ("alice", f"guess{w}-{i}")
        r = login(src, user, pw)
        with lock: counts[r] = counts.get(r, 0) + 1
        i += 1

# The owner has logged in from 127.0.0.2 before.
assert line_login("127.0.0.2", "alice", "alice pw") == "in"
threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
for t in threads: t.start()
waits, peak = [], 0
while time.time() < until:
    t0 = time.time(); r = login("127.0.0.2", "alice", "alice pw"); waits.append((time.time() - t0, r))
    peak = max(peak, int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM")][0].split()[1]))
    time.sleep(0.5)
for t in threads: t.join()
rss = int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1])
worst = max(w for w, _ in waits)
owner_in = sum(1 for _, r in waits if r == "in")
if owner_in < len(waits): print("owner's other answers:", [r for _, r in waits if r != "in"], file=sys.stderr)
print(f"| {sys.argv[6]} | {workers} workers from {sources} address(es) | {counts.get('wrong', 0) * 60 / secs:.1f} | "
      f"{counts.get('later', 0)} | {peak / 1024:.0f} MB (after: {rss / 1024:.0f} MB) | {worst:.2f} s ({owner_in}/{len(waits)} in) |")
PY
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "Attacks of ${SECS}s each (release build, --login-delay 0.5)"
echo
echo "| door | attack | guesses checked a minute | refused at once (429) | server peak RSS | owner's worst login (127.0.0.2) |"
echo "|---|---|---|---|---|---|"
attack line 32 1 line
attack line 250 250 line
attack http 32 1 http

# door NAME: one host holds a door while 127.0.0.2 uses it; prints a table row.
door() {
  local name=$1 port=$PORT http=$((PORT + 1)) tftp=$((PORT + 2))
  PORT=$((PORT + 3))
  head -c 1048576 /dev/urandom > "$WORK/share/fw.bin"
  RUST_LOG=warn "$BIN/file-server" --bind 127.0.0.1 --port "$port" --http "$http" --tftp "$tftp" \
    --repo "$WORK/share" --tls --state-dir "$WORK/state" > "$WORK/door.out" 2> "$WORK/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  wait_port "$port"
  python3 - "$name" "$port" "$http" "$tftp" "$SECS" <<'PY'
import socket, ssl, subprocess, sys, threading, time
name, port, http, tftp, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
until = time.time() + secs
attempts = {"n": 0}

def hold_tls():  # connections that send half a ClientHello and nothing more, renewed as they are closed
    held = []
    while time.time() < until:
        try:
            s = socket.socket(); s.bind(("127.0.0.3", 0)); s.connect(("127.0.0.1", port)); s.sendall(b"\x16\x03\x01\x02\x00\x01")
            held.append(s); attempts["n"] += 1
        except OSError: pass
        if len(held) > 50: held.pop(0).close()
        time.sleep(0.01)

def hold_web():  # requests begun and never ended, a byte every 2 s
    held = []
    while time.time() < until:
        try:
            s = socket.socket(); s.bind(("127.0.0.3", 0)); s.connect(("127.0.0.1", http))
            s.sendall(b"GET /fw.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"); held.append(s); attempts["n"] += 1
        except OSError: pass
        for h in held[:]:
            try: h.send(b"X")
            except OSError: held.remove(h)
        if len(held) > 64: held.pop(0).close()
        time.sleep(0.05)

def forge_tftp():  # read requests from an address that never answers
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.3", 0))
    rrq = b"\x00\x01fw.bin\x00octet\x00timeout\x00255\x00blksize\x0065464\x00windowsize\x0064\x00"
    while time.time() < until:
        for _ in range(16): u.sendto(rrq, ("127.0.0.1", tftp)); attempts["n"] += 1
        time.sleep(1)

def use_tls():
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=30, source_address=("127.0.0.2", 0)) as s:
        with ctx.wrap_socket(s) as t:
            line = t.makefile("rb").readline()
            assert b"proto=" in line, line

def use_web():
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-k", "--interface", "127.0.0.2",
                          f"https://127.0.0.1:{http}/fw.bin"], capture_output=True, timeout=60)
    assert out.stdout == b"200", out.stdout

def use_tftp():
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "--interface", "127.0.0.2", f"tftp://127.0.0.1:{tftp}/fw.bin"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out

attack, use = {"tls": (hold_tls, use_tls), "web": (hold_web, use_web), "tftp": (forge_tftp, use_tftp)}[name]
threading.Thread(target=attack, daemon=True).start()
time.sleep(1)
waits = []
while time.time() < until:
    t0 = time.time(); use(); waits.append(time.time() - t0); time.sleep(0.2)
what = {"tls": "silent TLS handshakes, line protocol", "web": "trickling web requests (HTTPS)", "tftp": "16 forged TFTP requests a second"}[name]
print(f"| {what} | {attempts['n']} | {max(waits):.2f} s | {sum(waits) / len(waits):.3f} s | {len(waits)} |")
PY
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo
echo "One host against a door (${SECS}s each, --tls, defaults otherwise); a client on another address meanwhile"
echo
echo "| attack from 127.0.0.3 | its attempts | 127.0.0.2's worst wait | mean | tries |"
echo "|---|---|---|---|---|"
door tls
door web
door tftp
