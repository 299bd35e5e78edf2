#!/usr/bin/env bash
# Starts (or stops) the local servers that speak each cloud's wire protocol, on
# 127.0.0.1: moto (S3), Versity S3 Gateway (a second, production S3 server),
# fake-gcs-server (GCS), Azurite (Azure Blob). Installs them first when missing.
# Writes their addresses to .cache/servers.env, which the tests read; `stop` kills
# them by PID.
#   bash scripts/servers.sh start | stop
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="$PWD/.cache"
mkdir -p "$CACHE/logs"
ENV_FILE="$CACHE/servers.env"

FAKE_GCS_VERSION="v1.56.1"
# The Versity S3 Gateway (versitygw, Apache-2.0): a production S3 server over a POSIX
# folder. SeaweedFS was tried first: its build took over two hours on this 2-core
# machine (README, "Two S3 servers").
VERSITYGW_VERSION="v1.8.0"
S3_PORT="${SAVEPOINT_S3_PORT:-45001}"
GCS_PORT="${SAVEPOINT_GCS_PORT:-45002}"
AZURE_PORT="${SAVEPOINT_AZURE_PORT:-45003}"
VERSITYGW_PORT="${SAVEPOINT_VERSITYGW_PORT:-45004}"
TEST_ACCESS_KEY="testing-access-key"
TEST_SECRET_KEY="testing-secret-key-0123456789"

log() { printf '[servers] %s\n' "$*" >&2; }

wait_for() { # name url
  for _ in $(seq 1 120); do
    if curl -s -m 2 -o /dev/null "$2"; then log "$1 is up at $2"; return 0; fi
    sleep 0.5
  done
  log "$1 did not answer at $2; see $CACHE/logs/$1.log"
  tail -20 "$CACHE/logs/$1.log" >&2 || true
  return 1
}

start_one() { # name pidfile command...
  local name=$1; shift
  local pidfile="$CACHE/$name.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "$name already running (pid $(cat "$pidfile"))"
    return 0
  fi
  nohup "$@" >"$CACHE/logs/$name.log" 2>&1 &
  echo $! >"$pidfile"
}

install_moto() {
  # moto lives in the project's virtualenv (.cache/venv), never in the system Python.
  bash "$PWD/scripts/python-env.sh"
}

go_tool() { # name package version: builds a Go server once per machine, prints its path
  # Outside the checkout, so a fresh clone does not rebuild it.
  local name=$1 package=$2 version=$3
  local bin="${XDG_CACHE_HOME:-$HOME/.cache}/savepoint-tools/$name-$version"
  if [ ! -x "$bin" ]; then
    log "building $name $version with go install (first run: a few minutes on 2 cores)"
    mkdir -p "$(dirname "$bin")" "$CACHE/gobin"
    GOBIN="$CACHE/gobin" go install "$package@$version" >&2
    mv "$CACHE/gobin/$(basename "$package")" "$bin.tmp" && mv "$bin.tmp" "$bin"
  fi
  echo "$bin"
}

install_fake_gcs() {
  FAKE_GCS_BIN=$(go_tool fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_VERSION")
}

install_versitygw() {
  VERSITYGW_BIN=$(go_tool versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION")
}

start_versitygw() {
  # A fresh data folder per start (the tests expect empty buckets to be creatable), and
  # the static test credentials as its one (root) account.
  local data="$CACHE/versitygw"
  if ! { [ -f "$CACHE/versitygw.pid" ] && kill -0 "$(cat "$CACHE/versitygw.pid")" 2>/dev/null; }; then
    rm -rf "$data"
  fi
  mkdir -p "$data"
  start_one versitygw "$VERSITYGW_BIN" --port "127.0.0.1:$VERSITYGW_PORT" --access "$TEST_ACCESS_KEY" \
    --secret "$TEST_SECRET_KEY" --region us-east-1 --quiet posix "$data"
}

wait_for_versitygw() {
  # Ready means an authenticated bucket create, object write and read have worked end to end.
  local url="http://127.0.0.1:$VERSITYGW_PORT"
  local sign=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$TEST_ACCESS_KEY:$TEST_SECRET_KEY"
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
  for _ in $(seq 1 120); do
    if curl -sf -m 5 "${sign[@]}" -X PUT "$url/savepoint-ready" -o /dev/null 2>/dev/null ||
      curl -sf -m 5 "${sign[@]}" "$url/savepoint-ready" -o /dev/null 2>/dev/null; then
      if curl -sf -m 5 "${sign[@]}" -X PUT --data-binary ready "$url/savepoint-ready/probe" -o /dev/null &&
        [ "$(curl -sf -m 5 "${sign[@]}" "$url/savepoint-ready/probe")" = ready ]; then
        curl -sf -m 5 "${sign[@]}" -X DELETE "$url/savepoint-ready/probe" -o /dev/null || true
        log "versitygw is up at $url"
        return 0
      fi
    fi
    kill -0 "$(cat "$CACHE/versitygw.pid")" 2>/dev/null || break
    sleep 0.5
  done
  log "versitygw did not answer at $url; see $CACHE/logs/versitygw.log"
  tail -20 "$CACHE/logs/versitygw.log" >&2 || true
  return 1
}

start() {
  install_moto
  install_fake_gcs
  install_versitygw
  [ -f "$PWD/node_modules/azurite/dist/src/blob/main.js" ] || { log "azurite is missing: run pnpm install first"; exit 1; }

  start_one moto "$PWD/.cache/venv/bin/python" "$PWD/scripts/moto-s3.py" -H 127.0.0.1 -p "$S3_PORT"
  start_one fake-gcs "$FAKE_GCS_BIN" -scheme http -host 127.0.0.1 -port "$GCS_PORT" \
    -public-host "127.0.0.1:$GCS_PORT" -external-url "http://127.0.0.1:$GCS_PORT" -backend memory -log-level warn
  start_one azurite node "$PWD/scripts/azurite-blob.cjs" --blobHost 127.0.0.1 --blobPort "$AZURE_PORT" --inMemoryPersistence --silent \
    --disableTelemetry --skipApiVersionCheck
  start_versitygw

  wait_for moto "http://127.0.0.1:$S3_PORT/"
  wait_for fake-gcs "http://127.0.0.1:$GCS_PORT/storage/v1/b"
  wait_for azurite "http://127.0.0.1:$AZURE_PORT/devstoreaccount1?comp=list"
  cat >"$ENV_FILE" <<ENV
SAVEPOINT_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
SAVEPOINT_TEST_GCS_ENDPOINT=http://127.0.0.1:$GCS_PORT
SAVEPOINT_TEST_AZURE_ENDPOINT=http://127.0.0.1:$AZURE_PORT/devstoreaccount1
ENV
  wait_for_versitygw
  echo "SAVEPOINT_TEST_S3_VERSITYGW_ENDPOINT=http://127.0.0.1:$VERSITYGW_PORT" >>"$ENV_FILE"
  log "addresses written to $ENV_FILE"
}

stop() {
  for name in moto fake-gcs azurite versitygw; do
    local pidfile="$CACHE/$name.pid"
    if [ -f "$pidfile" ]; then
      local pid
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      # Wait for the port to be free, so that the next start does not race the old server.
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
  rm -f "$ENV_FILE"
  rm -rf "$CACHE/versitygw"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
