#!/usr/bin/env bash
# A real TLS endpoint with authentication in front of the local OpenSearch node, for the
# transport-security tests: Debian's nginx as a TLS-terminating reverse proxy.
#
#   scripts/tls-proxy.sh up       generate what is missing, start (or reload) nginx, wait until it answers
#   scripts/tls-proxy.sh down     stop the nginx this script started
#   scripts/tls-proxy.sh status   say whether it runs, and where
#   scripts/tls-proxy.sh dir      print the folder with the CA, certificates and credentials
#
# https://127.0.0.1:$SEMSEARCH_TLS_PORT (default 9443): HTTP basic auth (user "semsearch", the password in
#   $DIR/password) or "Authorization: ApiKey <$DIR/api-key>", proxied to 127.0.0.1:$SEMSEARCH_OS_PORT (9200).
# https://127.0.0.1:$SEMSEARCH_MTLS_PORT (default 9444): mutual TLS, a client certificate signed by the CA.
#
# Everything lives in $SEMSEARCH_CACHE/tls-proxy (default ~/.cache/semsearch/tls-proxy): a test CA
# (ca.pem), a server certificate for localhost and 127.0.0.1 (server.pem), a client certificate
# (client.pem, client.key), a random password and API key (mode 600), the nginx config and logs.
# Idempotent: a second `up` reuses the certificates (renewed when they expire within a day) and the
# running nginx. Test credentials only: this endpoint listens on loopback.
set -euo pipefail

CACHE="${SEMSEARCH_CACHE:-$HOME/.cache/semsearch}"
DIR="${SEMSEARCH_TLS_DIR:-$CACHE/tls-proxy}"
TLS_PORT="${SEMSEARCH_TLS_PORT:-9443}"
MTLS_PORT="${SEMSEARCH_MTLS_PORT:-9444}"
OS_PORT="${SEMSEARCH_OS_PORT:-9200}"
USER_NAME="semsearch"
RUN="$DIR/run"
PIDFILE="$RUN/nginx.pid"

say() { printf 'tls-proxy: %s\n' "$*" >&2; }
fail() { printf 'tls-proxy: error: %s\n' "$*" >&2; exit 1; }

running() {
  local pid; pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -qa nginx "/proc/$pid/cmdline" 2>/dev/null
}

ensure_nginx() {
  command -v nginx >/dev/null && return 0
  [[ -x /usr/sbin/nginx ]] && { PATH="$PATH:/usr/sbin"; return 0; }
  command -v apt-get >/dev/null || fail "nginx is missing and apt-get is not available to install it"
  [[ $(id -u) -eq 0 ]] || fail "nginx is missing: install it with 'sudo apt-get install nginx'"
  say "installing nginx from Debian's packages"
  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null 2>&1; }) ||
    fail "apt-get install nginx failed"
  PATH="$PATH:/usr/sbin"
}

valid_cert() { [[ -s "$1" ]] && openssl x509 -checkend 86400 -noout -in "$1" >/dev/null 2>&1; }

sign() { # name subject extended-key-usage [subjectAltName]
  local name="$1" subject="$2" usage="$3" san="${4:-}"
  openssl req -newkey rsa:2048 -nodes -keyout "$DIR/$name.key" -out "$DIR/$name.csr" -subj "$subject" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid,issuer"
    [[ -n "$san" ]] && echo "subjectAltName=$san"
  } >"$DIR/$name.ext"
  openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
    -out "$DIR/$name.pem" -days 825 -sha256 -extfile "$DIR/$name.ext" 2>/dev/null
  rm -f "$DIR/$name.csr" "$DIR/$name.ext"
  chmod 600 "$DIR/$name.key"
}

ensure_material() {
  mkdir -p "$DIR" "$RUN/tmp"
  chmod 700 "$DIR"
  command -v openssl >/dev/null || fail "openssl is missing (apt-get install openssl)"
  if ! valid_cert "$DIR/ca.pem"; then
    say "generating a test CA in $DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DIR/ca.key" -out "$DIR/ca.pem" -days 3650 -sha256 \
      -subj "/CN=semsearch test CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" -addext "subjectKeyIdentifier=hash" 2>/dev/null
    chmod 600 "$DIR/ca.key"
    rm -f "$DIR/server.pem" "$DIR/client.pem"
  fi
  valid_cert "$DIR/server.pem" || sign server "/CN=localhost" serverAuth "DNS:localhost,IP:127.0.0.1"
  valid_cert "$DIR/client.pem" || sign client "/CN=semsearch-client" clientAuth
  if [[ ! -s "$DIR/password" ]]; then
    (umask 077; openssl rand -hex 16 >"$DIR/password")
  fi
  if [[ ! -s "$DIR/api-key" ]]; then
    (umask 077; openssl rand -hex 24 >"$DIR/api-key")
  fi
  (umask 077; printf '%s:%s\n' "$USER_NAME" "$(openssl passwd -apr1 -stdin <"$DIR/password")" >"$DIR/htpasswd.new")
  mv "$DIR/htpasswd.new" "$DIR/htpasswd"
  echo "$USER_NAME" >"$DIR/user"
}

write_config() {
  local user_line="" proxy
  # Workers read the password file at request time; it lives in root's home when run as root.
  [[ $(id -u) -eq 0 ]] && user_line="user root root;"
  proxy="proxy_pass http://opensearch; proxy_http_version 1.1; proxy_set_header Connection \"\";
      proxy_set_header Authorization \"\"; proxy_read_timeout 300s; proxy_request_buffering off;"
  cat >"$DIR/nginx.conf.new" <<EOF
# Written by scripts/tls-proxy.sh: a TLS-terminating proxy with authentication, for tests.
$user_line
worker_processes 1;
pid $PIDFILE;
error_log $RUN/error.log warn;
events { worker_connections 256; }
http {
  access_log $RUN/access.log;
  client_body_temp_path $RUN/tmp/body;
  proxy_temp_path $RUN/tmp/proxy;
  fastcgi_temp_path $RUN/tmp/fastcgi;
  uwsgi_temp_path $RUN/tmp/uwsgi;
  scgi_temp_path $RUN/tmp/scgi;
  client_max_body_size 200m;
  map_hash_bucket_size 128;
  ssl_protocols TLSv1.2 TLSv1.3;
  map \$http_authorization \$semsearch_api_key_ok {
    default 0;
    "ApiKey $(cat "$DIR/api-key")" 1;
  }
  upstream opensearch { server 127.0.0.1:$OS_PORT; keepalive 8; }
  server {
    listen 127.0.0.1:$TLS_PORT ssl;
    ssl_certificate $DIR/server.pem;
    ssl_certificate_key $DIR/server.key;
    location / {
      error_page 418 = @api_key;
      if (\$semsearch_api_key_ok) { return 418; }
      auth_basic "semsearch test proxy";
      auth_basic_user_file $DIR/htpasswd;
      $proxy
    }
    location @api_key {
      $proxy
    }
  }
  server {
    listen 127.0.0.1:$MTLS_PORT ssl;
    ssl_certificate $DIR/server.pem;
    ssl_certificate_key $DIR/server.key;
    ssl_client_certificate $DIR/ca.pem;
    ssl_verify_client on;
    location / {
      $proxy
    }
  }
}
EOF
  if cmp -s "$DIR/nginx.conf.new" "$DIR/nginx.conf"; then
    rm "$DIR/nginx.conf.new"
    return 1
  fi
  mv "$DIR/nginx.conf.new" "$DIR/nginx.conf"
  return 0
}

wait_ready() {
  local deadline=$((SECONDS + 30)) password; password=$(cat "$DIR/password")
  until curl -fsS -o /dev/null --cacert "$DIR/ca.pem" -u "$USER_NAME:$password" "https://127.0.0.1:$TLS_PORT/" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      tail -n 20 "$RUN/error.log" >&2 2>/dev/null || true
      fail "https://127.0.0.1:$TLS_PORT does not answer (is OpenSearch up on 127.0.0.1:$OS_PORT? scripts/services.sh up)"
    fi
    sleep 0.3
  done
}

up() {
  ensure_nginx
  mkdir -p "$(dirname "$DIR")"
  exec 9>"$DIR.lock"
  flock 9  # two `up` at once (parallel test sessions) take turns
  ensure_material
  local changed=0
  write_config && changed=1
  nginx -t -q -e "$RUN/error.log" -c "$DIR/nginx.conf" -p "$RUN" || fail "nginx rejects $DIR/nginx.conf"
  if running; then
    if ((changed)); then say "reloading nginx"; kill -HUP "$(cat "$PIDFILE")"; sleep 0.5; fi
  else
    nginx -e "$RUN/error.log" -c "$DIR/nginx.conf" -p "$RUN" 9>&- || fail "nginx did not start (log: $RUN/error.log)"
  fi
  wait_ready
  say "https://127.0.0.1:$TLS_PORT (basic auth or API key) and https://127.0.0.1:$MTLS_PORT (client certificate) → 127.0.0.1:$OS_PORT; CA $DIR/ca.pem"
}

down() {
  if running; then
    local pid; pid=$(cat "$PIDFILE")
    kill -QUIT "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    say "stopped"
  else
    say "not running"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status)
    if running; then say "running (pid $(cat "$PIDFILE")) on 127.0.0.1:$TLS_PORT and 127.0.0.1:$MTLS_PORT, files in $DIR"
    else say "not running"; exit 3; fi ;;
  dir) echo "$DIR" ;;
  *) echo "usage: $0 up|down|status|dir" >&2; exit 64 ;;
esac
