# Sourced by bench/http.sh: Apache httpd with mod_dav (WebDAV's reference
# server) on loopback. Needs PIDS (an array) and wait_port from the caller.

# start_apache DIR PORT ROOT: Apache (event MPM, mod_dav_fs) serving ROOT
# with WebDAV on 127.0.0.1:PORT, its config, pid, log and lock database in
# DIR (owned by nobody, whom the workers run as). Sets APACHE_PID (the
# parent; stopping it stops its workers), adds it to PIDS, and returns once
# the port is open.
start_apache() {
  local dir=$1 port=$2 root=$3
  mkdir -p "$dir"
  chown nobody "$dir"
  cat > "$dir/httpd.conf" <<CONF
ServerRoot /usr/lib/apache2
Listen 127.0.0.1:$port
LoadModule mpm_event_module modules/mod_mpm_event.so
LoadModule authz_core_module modules/mod_authz_core.so
LoadModule dav_module modules/mod_dav.so
LoadModule dav_fs_module modules/mod_dav_fs.so
User nobody
Group nogroup
ServerName localhost
PidFile $dir/httpd.pid
ErrorLog $dir/error.log
DavLockDB $dir/davlock
DocumentRoot $root
<Directory $root>
  Dav On
  Require all granted
</Directory>
CONF
  /usr/sbin/apache2 -f "$dir/httpd.conf" -D FOREGROUND &
  APACHE_PID=$!
  PIDS+=("$APACHE_PID")
  wait_port "$port"
}

# apache_peak_kib: the largest peak RSS (VmHWM) among Apache's processes.
apache_peak_kib() {
  local peak=0 pid v
  for pid in $APACHE_PID $(pgrep -P "$APACHE_PID"); do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${v:-0}" -gt "$peak" ] && peak=$v
  done
  echo "$peak"
}
