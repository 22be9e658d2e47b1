# Sourced by bench/trees.sh and bench/tls.sh: OpenSSH's sshd on loopback,
# for sftp. Needs PIDS (an array) and wait_port from the caller.

# start_sshd DIR PORT: sshd on 127.0.0.1:PORT with its own host key and a
# key for this user, config and log in DIR. Sets SFTP to the sftp command
# line that logs in to it (add -b FILE root@127.0.0.1), adds sshd to PIDS,
# and returns once the port is open.
start_sshd() {
  local dir=$1 port=$2
  mkdir -p /run/sshd "$dir"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/user"
  cp "$dir/user.pub" "$dir/authorized_keys"
  cat > "$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin yes
PasswordAuthentication no
StrictModes no
UsePAM no
PidFile $dir/pid
Subsystem sftp internal-sftp
CONF
  /usr/sbin/sshd -D -e -f "$dir/sshd_config" 2> "$dir/log" &
  PIDS+=($!)
  wait_port "$port"
  SFTP=(sftp -q -P "$port" -i "$dir/user" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
}
