# Sourced by bench/run.sh and bench/trees.sh: vsftpd on loopback, as both
# benchmark it. Needs PIDS (an array) and wait_port from the caller.

# start_vsftpd DIR ROOT PORT PASV_MIN PASV_MAX [CONFIG LINE...]: vsftpd on
# 127.0.0.1:PORT serving ROOT to anonymous users with sendfile, its config
# and output in DIR, extra config lines appended (write access, say). Sets
# VSFTPD_PID, adds it to PIDS, and returns once the port is open.
start_vsftpd() {
  local dir=$1 root=$2 port=$3 pasv_min=$4 pasv_max=$5
  shift 5
  mkdir -p "$dir/empty"
  {
    cat <<CONF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$port
background=NO
anonymous_enable=YES
anon_root=$root
no_anon_password=YES
local_enable=NO
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=$pasv_min
pasv_max_port=$pasv_max
secure_chroot_dir=$dir/empty
xferlog_enable=NO
seccomp_sandbox=NO
use_sendfile=YES
CONF
    printf '%s\n' "$@"
  } > "$dir/vsftpd.conf"
  "${VSFTPD:-/usr/sbin/vsftpd}" "$dir/vsftpd.conf" > "$dir/out" 2>&1 &
  VSFTPD_PID=$!
  PIDS+=("$VSFTPD_PID")
  wait_port "$port"
}
