#!/usr/bin/env bash
# Local services for semsearch without docker: a real single-node OpenSearch with the
# k-NN plugin on 127.0.0.1:9200 and a real Redis on 127.0.0.1:6379.
#
#   scripts/services.sh up       start both (idempotent), wait until healthy, print the URLs
#   scripts/services.sh up --engine elasticsearch
#                                Redis and a real single-node Elasticsearch on 127.0.0.1:9201 instead
#                                (security off, loopback only; needs a Java 21+ JDK, e.g. under /usr/lib/jvm)
#   scripts/services.sh down     stop exactly the processes this script started
#   scripts/services.sh status   say what runs where
#   scripts/services.sh restart redis|opensearch|elasticsearch   stop and start one (fault tests)
#   scripts/services.sh up --nodes 3 [--engine elasticsearch]
#                                a real 3-node cluster on loopback besides the single node (OpenSearch: HTTP
#                                127.0.0.1:9210-9212; Elasticsearch: 9220-9222), every node master-eligible and
#                                data, heap $SEMSEARCH_CLUSTER_HEAP (512m) each, one data path per node
#   scripts/services.sh kill-node N|stop-node N|start-node N [--engine elasticsearch]
#                                SIGKILL, stop, or start (and wait until it joined) node N of that cluster
#   `down` and `status` cover every node of both clusters; `down --nodes 3 [--engine E]` stops that cluster alone.
#
# Ports, heap and run folder follow SEMSEARCH_OS_PORT (transport: SEMSEARCH_OS_TRANSPORT_PORT, else HTTP + 100),
# SEMSEARCH_ES_PORT, SEMSEARCH_REDIS_PORT, SEMSEARCH_OS_HEAP and SEMSEARCH_RUN_DIR: with other values, a second
# set runs beside the first (each node reads its own copy of the distribution's config folder).
# SEMSEARCH_NODE_JAVA_OPTS: more JVM options for every Java node started (scripts/test.sh: C1 only).
#
# Downloads (Maven Central, Debian) are cached in $SEMSEARCH_CACHE (default ~/.cache/semsearch),
# so a second `up` is fast. OpenSearch refuses to run as root: as root, this script runs it as
# the unprivileged user $SEMSEARCH_OS_USER (default "semsearch"), creating it when missing.
set -euo pipefail

OPENSEARCH_VERSION="2.19.1"          # keep in step with docker-compose.yml
KNN_VERSION="${OPENSEARCH_VERSION}.0"
NEURAL_VERSION="${OPENSEARCH_VERSION}.0"  # neural-search: the server-side `hybrid` query and search pipelines
ES_VERSION="${SEMSEARCH_ES_VERSION:-8.19.4}"  # Maven Central's integ-test-zip
ES_PORT="${SEMSEARCH_ES_PORT:-9201}"
OS_PORT="${SEMSEARCH_OS_PORT:-9200}"
REDIS_PORT="${SEMSEARCH_REDIS_PORT:-6379}"
OS_HEAP="${SEMSEARCH_OS_HEAP:-1g}"
CACHE="${SEMSEARCH_CACHE:-$HOME/.cache/semsearch}"
RUN="${SEMSEARCH_RUN_DIR:-$CACHE/run}"
OS_USER="${SEMSEARCH_OS_USER:-semsearch}"
OS_HOME="$CACHE/opensearch-$OPENSEARCH_VERSION"
OS_PIDFILE="$RUN/opensearch/opensearch.pid"   # in a folder the OpenSearch user owns
REDIS_PIDFILE="$RUN/redis.pid"
OS_LOG_DIR="$RUN/opensearch/logs"
ES_HOME="$CACHE/elasticsearch-$ES_VERSION"
ES_PIDFILE="$RUN/elasticsearch/elasticsearch.pid"
ES_LOG_DIR="$RUN/elasticsearch/logs"
REDIS_LOG="$RUN/redis.log"
# OpenSearch can take a while on a busy 2-core machine.
OS_START_TIMEOUT="${SEMSEARCH_OS_START_TIMEOUT:-240}"
# Multi-node clusters (issue 18): first HTTP port of each; transport ports are HTTP + 100.
OS_CLUSTER_PORT="${SEMSEARCH_OS_CLUSTER_PORT:-9210}"
ES_CLUSTER_PORT="${SEMSEARCH_ES_CLUSTER_PORT:-9220}"
CLUSTER_HEAP="${SEMSEARCH_CLUSTER_HEAP:-512m}"
# More JVM options for every node this script starts (the test command's: scripts/test.sh); none by default.
NODE_JAVA_OPTS="${SEMSEARCH_NODE_JAVA_OPTS:-}"
MAX_NODES=5

say() { printf 'services: %s\n' "$*" >&2; }
fail() { printf 'services: error: %s\n' "$*" >&2; exit 1; }

# A pid file names a live process of ours only if that process is still the program we started
# (after a reboot the number may belong to something else).
pid_alive() {
  local pid; pid=$(cat "$1" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -qaE 'opensearch|redis|elasticsearch' "/proc/$pid/cmdline" 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fetch_maven() { # group:artifact:version:zip  destination-file
  local coords="$1" dest="$2"
  [[ -s "$dest" ]] && return 0
  command -v mvn >/dev/null || fail "mvn not found: install Maven (apt-get install maven) to fetch $coords"
  say "downloading $coords from Maven Central (once; cached in $CACHE/downloads)"
  local tmp; tmp=$(mktemp -d)
  if ! mvn -q -B dependency:copy -Dartifact="$coords" -DoutputDirectory="$tmp" >"$tmp/mvn.log" 2>&1; then
    cat "$tmp/mvn.log" >&2
    fail "could not download $coords with mvn (log above)"
  fi
  mv "$tmp"/*.zip "$dest"
  rm -rf "$tmp"
}

ensure_user() {
  [[ $(id -u) -ne 0 ]] && return 0
  id "$OS_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$OS_USER" \
    || fail "could not create the unprivileged user $OS_USER for OpenSearch"
}


find_java_home() {
  # The integ-test-zip ships no JDK: use JAVA_HOME, else the java on PATH (2.19 runs on Java 17).
  if [[ -n "${OPENSEARCH_JAVA_HOME:-}" ]]; then return 0; fi
  if [[ -n "${JAVA_HOME:-}" ]]; then export OPENSEARCH_JAVA_HOME="$JAVA_HOME"; return 0; fi
  command -v java >/dev/null || install_debian_package openjdk-17-jre-headless
  OPENSEARCH_JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  export OPENSEARCH_JAVA_HOME
}

install_module() { # name classname description group:artifact:version
  # The integ-test-zip carries only transport-netty4; the k-NN plugin extends lang-painless,
  # text analysis wants analysis-common, and server-side copies want reindex. Maven Central has
  # their jars, not their module folders, so each folder (the jar, its runtime dependencies not
  # already in lib/, a descriptor) is assembled here as the full distribution has it.
  local name="$1" classname="$2" description="$3" coords="$4"
  local dir="$OS_HOME/modules/$name" work; work=$(mktemp -d)
  IFS=: read -r group artifact version <<<"$coords"
  cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>local.semsearch</groupId><artifactId>module-$name</artifactId><version>1</version>
<dependencies><dependency><groupId>$group</groupId><artifactId>$artifact</artifactId><version>$version</version></dependency></dependencies>
</project>
EOF
  (cd "$work" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$work/jars" >"$work/mvn.log" 2>&1) \
    || { cat "$work/mvn.log" >&2; fail "could not download $coords and its dependencies with mvn"; }
  mkdir -p "$dir"
  local jar; for jar in "$work"/jars/*.jar; do
    [[ -e "$OS_HOME/lib/$(basename "$jar")" ]] || cp "$jar" "$dir/"
  done
  rm -rf "$work"
  cat >"$dir/plugin-descriptor.properties" <<EOF
description=$description
version=$OPENSEARCH_VERSION
name=$name
classname=$classname
java.version=11
opensearch.version=$OPENSEARCH_VERSION
extended.plugins=
has.native.controller=false
EOF
}

install_opensearch() {
  find_java_home
  if [[ -f "$OS_HOME/.semsearch-ready" ]]; then
    install_neural_search  # added after the first release of this script: older installs get it here
    return 0
  fi
  mkdir -p "$CACHE/downloads"
  local dist="$CACHE/downloads/opensearch-$OPENSEARCH_VERSION.zip"
  local knn="$CACHE/downloads/opensearch-knn-$KNN_VERSION.zip"
  fetch_maven "org.opensearch.distribution.integ-test-zip:opensearch:$OPENSEARCH_VERSION:zip" "$dist"
  fetch_maven "org.opensearch.plugin:opensearch-knn:$KNN_VERSION:zip" "$knn"
  command -v unzip >/dev/null || install_debian_package unzip
  say "installing OpenSearch $OPENSEARCH_VERSION with the k-NN plugin into $OS_HOME"
  rm -rf "$OS_HOME" "$OS_HOME.tmp"
  mkdir -p "$OS_HOME.tmp"
  unzip -q "$dist" -d "$OS_HOME.tmp"
  mv "$OS_HOME.tmp/opensearch-$OPENSEARCH_VERSION" "$OS_HOME"
  rmdir "$OS_HOME.tmp"
  install_module lang-painless org.opensearch.painless.PainlessPlugin "Painless scripting language" \
    "org.opensearch.plugin:lang-painless:$OPENSEARCH_VERSION"
  cat >"$OS_HOME/modules/lang-painless/plugin-security.policy" <<'EOF'
grant {
  // Painless compiles scripts into classes in their own class loader.
  permission java.lang.RuntimePermission "createClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
};
EOF
  install_module analysis-common org.opensearch.analysis.common.CommonAnalysisPlugin "Common analysis (language analysers, stemmers)" \
    "org.opensearch.plugin:analysis-common:$OPENSEARCH_VERSION"
  install_module reindex org.opensearch.index.reindex.ReindexPlugin "Reindex, update-by-query, delete-by-query" \
    "org.opensearch.plugin:reindex-client:$OPENSEARCH_VERSION"
  "$OS_HOME/bin/opensearch-plugin" install --batch "file://$knn" >"$CACHE/plugin-install.log" 2>&1 \
    || { cat "$CACHE/plugin-install.log" >&2; fail "k-NN plugin install failed (log: $CACHE/plugin-install.log)"; }
  install_neural_search
  touch "$OS_HOME/.semsearch-ready"
}

# neural-search extends k-NN only; semsearch uses its `hybrid` query and normalisation / score-ranker
# search processors (server-side hybrid), not its model-serving side.
install_neural_search() {
  [[ -d "$OS_HOME/plugins/opensearch-neural-search" ]] && return 0
  local neural="$CACHE/downloads/neural-search-$NEURAL_VERSION.zip"
  fetch_maven "org.opensearch.plugin:neural-search:$NEURAL_VERSION:zip" "$neural"
  say "installing the neural-search plugin $NEURAL_VERSION"
  "$OS_HOME/bin/opensearch-plugin" install --batch "file://$neural" >"$CACHE/plugin-install.log" 2>&1 \
    || { cat "$CACHE/plugin-install.log" >&2; fail "neural-search plugin install failed (log: $CACHE/plugin-install.log)"; }
}

install_debian_package() {
  command -v apt-get >/dev/null || fail "$1 is missing and apt-get is not available to install it"
  [[ $(id -u) -eq 0 ]] || fail "$1 is missing: install it with 'sudo apt-get install $1'"
  say "installing $1 from Debian's packages"
  (apt-get install -y -q "$1" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$1" >/dev/null 2>&1; }) \
    || fail "apt-get install $1 failed"
}

opensearch_healthy() {
  curl -fsS "http://127.0.0.1:$OS_PORT/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1 &&
    curl -fsS "http://127.0.0.1:$OS_PORT/_cat/plugins?h=component" 2>/dev/null | grep -q 'opensearch-knn'
}

write_opensearch_config() { # every start, so ports and paths follow the environment
  node_config_folder "$OS_HOME" "$RUN/opensearch"
  cat >"$RUN/opensearch/config/opensearch.yml" <<EOF
cluster.name: semsearch-local
node.name: semsearch-node-1
network.host: 127.0.0.1
http.port: $OS_PORT
transport.port: ${SEMSEARCH_OS_TRANSPORT_PORT:-$((OS_PORT + 100))}
discovery.type: single-node
path.data: $RUN/opensearch/data
path.logs: $OS_LOG_DIR
# A full disk on a shared dev machine must not flip indexes to read-only mid-test.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
}

# Both Java nodes (OpenSearch, Elasticsearch) refuse to run as root: they run as $OS_USER, detached.
own_for_node_user() { # folder… — give the node's user its folders, and a path to them through $CACHE
  [[ $(id -u) -eq 0 ]] || return 0
  chown -R "$OS_USER" "$@"
  local d="$CACHE"; while [[ "$d" != "/" ]]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
}

# Each node reads its own config folder (a copy of the distribution's), so that nodes of one distribution
# (the single node, a cluster's, a test's own node under another SEMSEARCH_RUN_DIR) never write each
# other's settings.
node_config_folder() { # distribution-home node-folder — its config (a copy), data and logs folders; GC log and dumps there too
  local home="$1" dir="$2"
  mkdir -p "$dir/config" "$dir/data" "$dir/logs"
  cp -r "$home/config/." "$dir/config/"
  # The distribution's GC log, heap dumps and crash files are relative to its folder, which every node
  # shares: each node's go to its own folder instead.
  sed -i -e "s|file=logs/gc.log|file=$dir/logs/gc.log|; s|file=gc.log|file=$dir/logs/gc.log|" \
    -e "s|^-XX:HeapDumpPath=data|-XX:HeapDumpPath=$dir/data|; s|^-XX:ErrorFile=.*hs_err|-XX:ErrorFile=$dir/logs/hs_err|" \
    -e "s|^8:-Xloggc:logs/gc.log|8:-Xloggc:$dir/logs/gc.log|" "$dir/config/jvm.options"
}

launch_node() { # name pidfile start-log log-dir command… — start one node in the background
  local name="$1" pidfile="$2" start_log="$3" log_dir="$4"; shift 4
  local cmd=("$@")
  rm -f "$pidfile"
  # setpriv, not runuser/su: no PAM session whose end would take the daemon with it.
  [[ $(id -u) -eq 0 ]] && cmd=(setpriv --reuid "$OS_USER" --regid "$(id -g "$OS_USER")" --init-groups -- "${cmd[@]}")
  (cd "$RUN" && setsid "${cmd[@]}" >"$start_log" 2>&1 </dev/null) \
    || { cat "$start_log" >&2; fail "$name did not start (logs: $log_dir, $start_log)"; }
}

wait_healthy() { # name health-function pidfile log grace-seconds — sets WAITED to the seconds it took
  local name="$1" healthy="$2" pidfile="$3" log="$4" grace="$5"
  WAITED=0
  until "$healthy"; do
    # The launcher returns before the node writes its pid file: a missing process counts after the grace.
    if (( WAITED > grace )) && ! pid_alive "$pidfile"; then
      tail -n 30 "$log" >&2 2>/dev/null || true
      fail "$name exited during start-up (log: $log)"
    fi
    (( WAITED >= OS_START_TIMEOUT )) && fail "$name not healthy after ${OS_START_TIMEOUT}s (log: $log)"
    sleep 2; WAITED=$((WAITED + 2))
  done
}

up_opensearch() {
  if pid_alive "$OS_PIDFILE" && opensearch_healthy; then
    say "OpenSearch already running (pid $(cat "$OS_PIDFILE"))"
    return 0
  fi
  if ! pid_alive "$OS_PIDFILE" && port_open "$OS_PORT"; then
    fail "port $OS_PORT is in use by a process this script did not start; stop it or set SEMSEARCH_OS_PORT"
  fi
  install_opensearch
  ensure_user
  write_opensearch_config
  own_for_node_user "$OS_HOME" "$RUN/opensearch"
  if ! pid_alive "$OS_PIDFILE"; then
    say "starting OpenSearch $OPENSEARCH_VERSION on 127.0.0.1:$OS_PORT (heap $OS_HEAP, logs in $OS_LOG_DIR)"
    launch_node OpenSearch "$OS_PIDFILE" "$RUN/opensearch-start.log" "$OS_LOG_DIR" \
      env HOME="$RUN" OPENSEARCH_PATH_CONF="$RUN/opensearch/config" OPENSEARCH_JAVA_OPTS="-Xms$OS_HEAP -Xmx$OS_HEAP $NODE_JAVA_OPTS" \
      OPENSEARCH_JAVA_HOME="$OPENSEARCH_JAVA_HOME" \
      "$OS_HOME/bin/opensearch" -d -p "$OS_PIDFILE"
  fi
  wait_healthy OpenSearch opensearch_healthy "$OS_PIDFILE" "$OS_LOG_DIR/semsearch-local.log" 20
  say "OpenSearch healthy with the k-NN plugin after ${WAITED}s"
}

up_redis() {
  if pid_alive "$REDIS_PIDFILE"; then
    say "Redis already running (pid $(cat "$REDIS_PIDFILE"))"
    return 0
  fi
  port_open "$REDIS_PORT" && fail "port $REDIS_PORT is in use by a process this script did not start; stop it or set SEMSEARCH_REDIS_PORT"
  command -v redis-server >/dev/null || install_debian_package redis-server
  mkdir -p "$RUN/redis-data"
  say "starting Redis on 127.0.0.1:$REDIS_PORT (log: $REDIS_LOG)"
  # appendonly: queued ingest work survives a Redis restart.
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --pidfile "$REDIS_PIDFILE" \
    --dir "$RUN/redis-data" --logfile "$REDIS_LOG" --appendonly yes --save "" \
    || fail "Redis did not start (log: $REDIS_LOG)"
  local waited=0
  until redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; do
    (( waited >= 30 )) && fail "Redis not answering after 30s (log: $REDIS_LOG)"
    sleep 1; waited=$((waited + 1))
  done
}

stop_pidfile() { # name pidfile
  local name="$1" pidfile="$2"
  if ! pid_alive "$pidfile"; then
    say "$name not running"; rm -f "$pidfile"; return 0
  fi
  local pid; pid=$(cat "$pidfile")
  say "stopping $name (pid $pid)"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -0 "$pid" 2>/dev/null && { say "$name did not stop in 60s; killing"; kill -9 "$pid"; }
  rm -f "$pidfile"
}

# --- Elasticsearch (issue 8: the same CLI and API on Elasticsearch) ------------------------------

find_es_java_home() {
  # Elasticsearch 8.19 needs Java 21+; the integ-test-zip ships none. ES_JAVA_HOME, else the newest
  # JDK under /usr/lib/jvm whose major version is 21 or more.
  if [[ -n "${ES_JAVA_HOME:-}" ]]; then return 0; fi
  local candidate major
  for candidate in $(ls -d /usr/lib/jvm/*/ 2>/dev/null | sort -rV); do
    [[ -x "$candidate/bin/java" ]] || continue
    major=$("$candidate/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/.*java.specification.version = \([0-9]*\).*/\1/p')
    if [[ -n "$major" ]] && (( major >= 21 )); then export ES_JAVA_HOME="${candidate%/}"; return 0; fi
  done
  fail "Elasticsearch $ES_VERSION needs Java 21 or later: install a JDK under /usr/lib/jvm or set ES_JAVA_HOME"
}

install_elasticsearch() {
  find_es_java_home
  [[ -f "$ES_HOME/.semsearch-ready" ]] && return 0
  mkdir -p "$CACHE/downloads"
  local dist="$CACHE/downloads/elasticsearch-$ES_VERSION.zip"
  fetch_maven "org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" "$dist"
  command -v unzip >/dev/null || install_debian_package unzip
  say "installing Elasticsearch $ES_VERSION into $ES_HOME"
  rm -rf "$ES_HOME" "$ES_HOME.tmp"
  mkdir -p "$ES_HOME.tmp"
  unzip -q "$dist" -d "$ES_HOME.tmp"
  mv "$ES_HOME.tmp/elasticsearch-$ES_VERSION" "$ES_HOME"
  rmdir "$ES_HOME.tmp"
  touch "$ES_HOME/.semsearch-ready"
}

elasticsearch_healthy() {
  curl -fsS "http://127.0.0.1:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1
}

up_elasticsearch() {
  if pid_alive "$ES_PIDFILE" && elasticsearch_healthy; then
    say "Elasticsearch already running (pid $(cat "$ES_PIDFILE"))"
    return 0
  fi
  if ! pid_alive "$ES_PIDFILE" && port_open "$ES_PORT"; then
    fail "port $ES_PORT is in use by a process this script did not start; stop it or set SEMSEARCH_ES_PORT"
  fi
  install_elasticsearch
  ensure_user
  node_config_folder "$ES_HOME" "$RUN/elasticsearch"
  # Security off is safe only because the node listens on loopback alone (network.host below).
  cat >"$RUN/elasticsearch/config/elasticsearch.yml" <<EOF
cluster.name: semsearch-es
node.name: semsearch-es-1
network.host: 127.0.0.1
http.port: $ES_PORT
transport.port: $((ES_PORT + 100))
discovery.type: single-node
path.data: $RUN/elasticsearch/data
path.logs: $ES_LOG_DIR
xpack.security.enabled: false
xpack.ml.enabled: false
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: true
EOF
  own_for_node_user "$ES_HOME" "$RUN/elasticsearch"
  if ! pid_alive "$ES_PIDFILE"; then
    say "starting Elasticsearch $ES_VERSION on 127.0.0.1:$ES_PORT (heap $OS_HEAP, Java $ES_JAVA_HOME, logs in $ES_LOG_DIR)"
    launch_node Elasticsearch "$ES_PIDFILE" "$RUN/elasticsearch-start.log" "$ES_LOG_DIR" \
      env HOME="$RUN" ES_PATH_CONF="$RUN/elasticsearch/config" ES_JAVA_OPTS="-Xms$OS_HEAP -Xmx$OS_HEAP $NODE_JAVA_OPTS" \
      ES_JAVA_HOME="$ES_JAVA_HOME" \
      "$ES_HOME/bin/elasticsearch" -d -p "$ES_PIDFILE"
  fi
  wait_healthy Elasticsearch elasticsearch_healthy "$ES_PIDFILE" "$ES_LOG_DIR/semsearch-es.log" 30
  say "Elasticsearch healthy after ${WAITED}s"
}


# --- multi-node clusters (issue 18: node loss during ingest, search and backfill) ------------------------
# Node i of engine E: HTTP port BASE+i-1, transport port BASE+99+i, its own config folder (the
# distribution's, with its own elasticsearch.yml / opensearch.yml), data and logs under $RUN/E-cluster/node-i.

cluster_base() { [[ "$1" == elasticsearch ]] && echo "$ES_CLUSTER_PORT" || echo "$OS_CLUSTER_PORT"; }
node_dir() { echo "$RUN/$1-cluster/node-$2"; }
node_pidfile() { echo "$(node_dir "$1" "$2")/node.pid"; }
node_port() { echo $(( $(cluster_base "$1") + $2 - 1 )); }
cluster_size_file() { echo "$RUN/$1-cluster/size"; }
cluster_size() { cat "$(cluster_size_file "$1")" 2>/dev/null || echo 0; }

cluster_urls() { # engine — every node's URL, comma-separated (SEMSEARCH_OPENSEARCH_URL)
  local engine="$1" n i urls=()
  n=$(cluster_size "$engine")
  for ((i = 1; i <= n; i++)); do urls+=("http://127.0.0.1:$(node_port "$engine" "$i")"); done
  (IFS=,; echo "${urls[*]}")
}

write_node_config() { # engine node size
  local engine="$1" i="$2" n="$3" dir home seeds="" names="" j
  dir=$(node_dir "$engine" "$i")
  for ((j = 1; j <= n; j++)); do
    seeds+="${seeds:+, }\"127.0.0.1:$(( $(node_port "$engine" "$j") + 100 ))\""
    names+="${names:+, }\"node-$j\""
  done
  if [[ "$engine" == elasticsearch ]]; then home="$ES_HOME"; else home="$OS_HOME"; fi
  node_config_folder "$home" "$dir"
  {
    echo "cluster.name: semsearch-$engine-cluster"
    echo "node.name: node-$i"
    echo "network.host: 127.0.0.1"
    echo "http.port: $(node_port "$engine" "$i")"
    echo "transport.port: $(( $(node_port "$engine" "$i") + 100 ))"
    echo "discovery.seed_hosts: [$seeds]"
    echo "path.data: $dir/data"
    echo "path.logs: $dir/logs"
    echo "cluster.routing.allocation.disk.threshold_enabled: false"
    if [[ "$engine" == elasticsearch ]]; then
      echo "cluster.initial_master_nodes: [$names]"
      # Security off is safe only because every node listens on loopback alone.
      echo "xpack.security.enabled: false"
      echo "xpack.ml.enabled: false"
      echo "action.destructive_requires_name: true"
    else
      echo "cluster.initial_cluster_manager_nodes: [$names]"
    fi
  } >"$dir/config/$([[ "$engine" == elasticsearch ]] && echo elasticsearch.yml || echo opensearch.yml)"
}

start_cluster_node() { # engine node — launch (no wait)
  local engine="$1" i="$2" dir pidfile
  dir=$(node_dir "$engine" "$i"); pidfile=$(node_pidfile "$engine" "$i")
  pid_alive "$pidfile" && return 0
  local waited=0  # a node stopped a moment ago may still be closing its port
  while port_open "$(node_port "$engine" "$i")"; do
    (( waited >= 20 )) && fail "port $(node_port "$engine" "$i") is in use by a process this script did not start"
    sleep 1; waited=$((waited + 1))
  done
  write_node_config "$engine" "$i" "$(cluster_size "$engine")"
  own_for_node_user "$dir"
  say "starting $engine node $i on 127.0.0.1:$(node_port "$engine" "$i") (heap $CLUSTER_HEAP, logs in $dir/logs)"
  if [[ "$engine" == elasticsearch ]]; then
    launch_node "Elasticsearch node $i" "$pidfile" "$dir/start.log" "$dir/logs" \
      env HOME="$RUN" ES_PATH_CONF="$dir/config" ES_JAVA_OPTS="-Xms$CLUSTER_HEAP -Xmx$CLUSTER_HEAP $NODE_JAVA_OPTS" \
      ES_JAVA_HOME="$ES_JAVA_HOME" "$ES_HOME/bin/elasticsearch" -d -p "$pidfile"
  else
    launch_node "OpenSearch node $i" "$pidfile" "$dir/start.log" "$dir/logs" \
      env HOME="$RUN" OPENSEARCH_PATH_CONF="$dir/config" OPENSEARCH_JAVA_OPTS="-Xms$CLUSTER_HEAP -Xmx$CLUSTER_HEAP $NODE_JAVA_OPTS" \
      OPENSEARCH_JAVA_HOME="$OPENSEARCH_JAVA_HOME" "$OS_HOME/bin/opensearch" -d -p "$pidfile"
  fi
}

cluster_has_nodes() { # engine — healthy when some node answers that all nodes joined (and k-NN, for OpenSearch)
  local engine="$1" n i port
  n=$(cluster_size "$engine")
  for ((i = 1; i <= n; i++)); do
    port=$(node_port "$engine" "$i")
    if curl -fsS "http://127.0.0.1:$port/_cluster/health?wait_for_nodes=$n&wait_for_status=yellow&timeout=1s" \
        >/dev/null 2>&1; then
      [[ "$engine" == elasticsearch ]] && return 0
      curl -fsS "http://127.0.0.1:$port/_cat/plugins?h=component" 2>/dev/null | grep -q 'opensearch-knn' && return 0
    fi
  done
  return 1
}

wait_cluster() { # engine — until every node joined
  local engine="$1" waited=0 i n
  n=$(cluster_size "$engine")
  until cluster_has_nodes "$engine"; do
    for ((i = 1; i <= n; i++)); do
      if (( waited > 30 )) && ! pid_alive "$(node_pidfile "$engine" "$i")"; then
        tail -n 30 "$(node_dir "$engine" "$i")/logs/semsearch-$engine-cluster.log" >&2 2>/dev/null || true
        fail "$engine node $i exited during start-up (logs: $(node_dir "$engine" "$i")/logs)"
      fi
    done
    (( waited >= OS_START_TIMEOUT )) && fail "$engine cluster: not all $n nodes joined after ${OS_START_TIMEOUT}s"
    sleep 2; waited=$((waited + 2))
  done
  say "$engine cluster of $n nodes healthy after ${waited}s: $(cluster_urls "$engine")"
}

up_cluster() { # engine nodes
  local engine="$1" n="$2" i
  (( n >= 2 && n <= MAX_NODES )) || fail "--nodes: 1 (the single node) or 2 to $MAX_NODES, not $n"
  local size; size=$(cluster_size "$engine")
  if (( size != 0 && size != n )); then
    fail "a $engine cluster of $size nodes exists; 'down' it first (its data goes with it) for $n nodes"
  fi
  if [[ "$engine" == elasticsearch ]]; then install_elasticsearch; else install_opensearch; fi
  ensure_user
  own_for_node_user "$([[ "$engine" == elasticsearch ]] && echo "$ES_HOME" || echo "$OS_HOME")"
  mkdir -p "$RUN/$engine-cluster"
  echo "$n" >"$(cluster_size_file "$engine")"
  # In parallel: an Elasticsearch launcher returns only once its node is up.
  local pids=() pid
  for ((i = 1; i <= n; i++)); do start_cluster_node "$engine" "$i" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || fail "a $engine node did not start (messages above)"; done
  wait_cluster "$engine"
}

node_number() { # engine N — checks N names a node of the cluster
  local n; n=$(cluster_size "$1")
  [[ "$2" =~ ^[0-9]+$ ]] && (( $2 >= 1 && $2 <= n )) || fail "no $1 node '$2': the cluster has ${n} node(s) (up --nodes N)"
}

kill_node() { # engine N — SIGKILL, as a crashed machine
  node_number "$1" "$2"
  local pidfile; pidfile=$(node_pidfile "$1" "$2")
  pid_alive "$pidfile" || { say "$1 node $2 is not running"; return 0; }
  say "killing $1 node $2 (pid $(cat "$pidfile"), SIGKILL)"
  local pid; pid=$(cat "$pidfile")
  kill -9 "$pid" 2>/dev/null || true  # it may have exited meanwhile
  # Gone means gone from the process table with its ports closed: a dying JVM loses its command line
  # (what pid_alive reads) before its sockets, and a start-node in that gap would find its port taken.
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || port_open "$(node_port "$1" "$2")" || break
    sleep 0.5
  done
  rm -f "$pidfile"
}

start_node() { # engine N — start one node again and wait until the cluster has all its nodes
  node_number "$1" "$2"
  if [[ "$1" == elasticsearch ]]; then find_es_java_home; else find_java_home; fi
  start_cluster_node "$1" "$2"
  wait_cluster "$1"
}

down_cluster() { # engine — stop every node and remove the cluster's data
  local engine="$1" n i
  n=$(cluster_size "$engine")
  (( n == 0 )) && return 0
  for ((i = 1; i <= n; i++)); do stop_pidfile "$engine node $i" "$(node_pidfile "$engine" "$i")"; done
  rm -rf "$RUN/$engine-cluster"
}

cluster_status() { # engine
  local engine="$1" n i
  n=$(cluster_size "$engine")
  (( n == 0 )) && return 0
  for ((i = 1; i <= n; i++)); do
    if pid_alive "$(node_pidfile "$engine" "$i")"; then
      echo "$engine node $i: running (pid $(cat "$(node_pidfile "$engine" "$i")")) at http://127.0.0.1:$(node_port "$engine" "$i"), logs $(node_dir "$engine" "$i")/logs"
    else
      echo "$engine node $i: stopped"
    fi
  done
}

status() {
  if pid_alive "$OS_PIDFILE"; then
    local health; health=$(curl -fsS "http://127.0.0.1:$OS_PORT/_cluster/health" 2>/dev/null | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' || true)
    echo "opensearch: running (pid $(cat "$OS_PIDFILE")) at http://127.0.0.1:$OS_PORT, health ${health:-unreachable}, logs $OS_LOG_DIR"
  else
    echo "opensearch: stopped"
  fi
  if pid_alive "$ES_PIDFILE"; then
    echo "elasticsearch: running (pid $(cat "$ES_PIDFILE")) at http://127.0.0.1:$ES_PORT, logs $ES_LOG_DIR"
  else
    echo "elasticsearch: stopped"
  fi
  cluster_status opensearch
  cluster_status elasticsearch
  if pid_alive "$REDIS_PIDFILE"; then
    echo "redis: running (pid $(cat "$REDIS_PIDFILE")) at redis://127.0.0.1:$REDIS_PORT/0, log $REDIS_LOG"
  else
    echo "redis: stopped"
  fi
}

mkdir -p "$RUN"
command="${1:-}"; shift || true
engine=opensearch
target=""
nodes=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --engine) engine="${2:-}"; shift; shift || true ;;
    --engine=*) engine="${1#--engine=}"; shift ;;
    --nodes) nodes="${2:-}"; shift; shift || true ;;
    --nodes=*) nodes="${1#--nodes=}"; shift ;;
    *) target="$1"; shift ;;
  esac
done
[[ "$engine" == opensearch || "$engine" == elasticsearch ]] || { echo "--engine: opensearch or elasticsearch, not '$engine'" >&2; exit 2; }
[[ "$nodes" =~ ^[0-9]+$ ]] || { echo "--nodes: a number, not '$nodes'" >&2; exit 2; }
case "$command" in
  up)
    up_redis
    if (( nodes > 1 )); then
      up_cluster "$engine" "$nodes"
      [[ "$engine" == elasticsearch ]] && echo "SEMSEARCH_BACKEND=elasticsearch"
      echo "SEMSEARCH_OPENSEARCH_URL=$(cluster_urls "$engine")"
    elif [[ "$engine" == elasticsearch ]]; then
      up_elasticsearch
      echo "SEMSEARCH_BACKEND=elasticsearch"
      echo "SEMSEARCH_OPENSEARCH_URL=http://127.0.0.1:$ES_PORT"
    else
      up_opensearch
      echo "SEMSEARCH_OPENSEARCH_URL=http://127.0.0.1:$OS_PORT"
    fi
    echo "SEMSEARCH_BROKER_URL=redis://127.0.0.1:$REDIS_PORT/0"
    ;;
  down)
    if (( nodes > 1 )); then  # down --nodes N [--engine E]: that cluster alone
      down_cluster "$engine"
    else
      down_cluster opensearch
      down_cluster elasticsearch
      stop_pidfile OpenSearch "$OS_PIDFILE"
      stop_pidfile Elasticsearch "$ES_PIDFILE"
      stop_pidfile Redis "$REDIS_PIDFILE"
    fi
    ;;
  status) status ;;
  restart)  # restart one service, e.g. for fault-injection tests: restart redis|opensearch|elasticsearch
    case "$target" in
      redis) stop_pidfile Redis "$REDIS_PIDFILE"; up_redis ;;
      opensearch) stop_pidfile OpenSearch "$OS_PIDFILE"; up_opensearch ;;
      elasticsearch) stop_pidfile Elasticsearch "$ES_PIDFILE"; up_elasticsearch ;;
      *) echo "usage: $0 restart redis|opensearch|elasticsearch" >&2; exit 2 ;;
    esac ;;
  kill-node) kill_node "$engine" "$target" ;;
  stop-node) node_number "$engine" "$target"; stop_pidfile "$engine node $target" "$(node_pidfile "$engine" "$target")" ;;
  start-node) start_node "$engine" "$target" ;;
  *) echo "usage: $0 up [--engine opensearch|elasticsearch] [--nodes N] | down | status | restart redis|opensearch|elasticsearch | kill-node|stop-node|start-node N [--engine E]" >&2; exit 2 ;;
esac
