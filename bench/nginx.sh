# Sourced by bench/run.sh and bench/tls.sh: nginx on loopback, as both
# benchmark it. Needs PIDS (an array) and wait_port from the caller.

# start_nginx DIR PORT ROOT [SERVER LINE...]: nginx (one worker, sendfile)
# serving ROOT on 127.0.0.1:PORT, its config, pid and temporary folders in
# DIR; extra lines go into its server block (and `ssl` onto the listen line
# when one of them names a certificate). Sets NGINX_PID, adds it to PIDS,
# and returns once the port is open. Needs wait_port and PIDS.
start_nginx() {
  local dir=$1 port=$2 root=$3 listen_ssl=""
  shift 3
  case "$*" in *ssl_certificate*) listen_ssl=" ssl" ;; esac
  mkdir -p "$dir"
  {
    cat <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  server {
    listen 127.0.0.1:$port$listen_ssl;
    root $root;
CONF
    for line in "$@"; do echo "    $line"; done
    echo "  }"
    echo "}"
  } > "$dir/nginx.conf"
  "$(command -v nginx || echo /usr/sbin/nginx)" -c "$dir/nginx.conf" -p "$dir" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_port "$port"
}
