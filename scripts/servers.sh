#!/usr/bin/env bash
# Starts (or stops) the local servers that speak each cloud's wire protocol, on
# 127.0.0.1: moto (S3), SeaweedFS (a second, production S3 server),
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
# SeaweedFS tags its releases "4.53", which Go does not read as module versions: the
# module proxy serves them as pseudo-versions. This one is SeaweedFS 4.53 (2026-11-09).
SEAWEED_VERSION="v0.0.0-20261109003541-7506e5f91cd6"
S3_PORT="${SAVEPOINT_S3_PORT:-45001}"
GCS_PORT="${SAVEPOINT_GCS_PORT:-45002}"
AZURE_PORT="${SAVEPOINT_AZURE_PORT:-45003}"
# SeaweedFS takes six ports from here: S3, master (+ gRPC), volume (+ gRPC), filer. The
# filer's and the S3 gateway's gRPC ports are SeaweedFS's own choice: their HTTP port + 10000.
SEAWEED_PORT="${SAVEPOINT_SEAWEED_PORT:-45004}"
# Opt-in for now: its first build takes 30-60 minutes on a busy 2-core machine, and its
# run of the S3 suites is not yet part of CI's budget (README, "Two S3 servers").
SEAWEED="${SAVEPOINT_SEAWEED:-0}"
SEAWEED_S3_PORT=$SEAWEED_PORT
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

install_fake_gcs() {
  # Built once per machine (outside the checkout, so a fresh clone does not rebuild it).
  local tools="${XDG_CACHE_HOME:-$HOME/.cache}/savepoint-tools"
  FAKE_GCS_BIN="$tools/fake-gcs-server-$FAKE_GCS_VERSION"
  if [ -x "$FAKE_GCS_BIN" ]; then return 0; fi
  log "building fake-gcs-server $FAKE_GCS_VERSION with go install (first run takes a few minutes)"
  mkdir -p "$tools" "$CACHE/gobin"
  GOBIN="$CACHE/gobin" go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION" >&2
  mv "$CACHE/gobin/fake-gcs-server" "$FAKE_GCS_BIN.tmp" && mv "$FAKE_GCS_BIN.tmp" "$FAKE_GCS_BIN"
}

install_seaweed() {
  # Built once per machine, like fake-gcs-server. Its go.mod has a replace directive,
  # which `go install pkg@version` refuses: it is built inside the downloaded module.
  local tools="${XDG_CACHE_HOME:-$HOME/.cache}/savepoint-tools"
  SEAWEED_BIN="$tools/weed-$SEAWEED_VERSION"
  if [ -x "$SEAWEED_BIN" ]; then return 0; fi
  log "building SeaweedFS ($SEAWEED_VERSION) with go build (first run: 10-40 minutes on 2 cores)"
  mkdir -p "$tools"
  local dir
  dir=$(go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEED_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { log "go mod download of github.com/seaweedfs/seaweedfs@$SEAWEED_VERSION failed"; return 1; }
  (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$SEAWEED_BIN.tmp" ./weed) >&2
  mv "$SEAWEED_BIN.tmp" "$SEAWEED_BIN"
}

start_seaweed() {
  # A fresh data folder per start (the tests expect empty buckets to be creatable), and
  # the static test credentials as its one S3 identity.
  local data="$CACHE/seaweedfs"
  if ! { [ -f "$CACHE/seaweedfs.pid" ] && kill -0 "$(cat "$CACHE/seaweedfs.pid")" 2>/dev/null; }; then
    rm -rf "$data"
  fi
  mkdir -p "$data"
  cat >"$CACHE/seaweedfs-s3.json" <<JSON
{"identities": [{"name": "savepoint-test", "credentials": [{"accessKey": "$TEST_ACCESS_KEY", "secretKey": "$TEST_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
  # One volume per new collection (a bucket is one), not seven: the tests make many buckets.
  WEED_MASTER_VOLUME_GROWTH_COPY_1=1 start_one seaweedfs "$SEAWEED_BIN" server -ip 127.0.0.1 -ip.bind 127.0.0.1 -dir "$data" \
    -master.port "$((SEAWEED_PORT + 1))" -master.port.grpc "$((SEAWEED_PORT + 2))" -master.volumeSizeLimitMB 64 \
    -master.telemetry=false -volume.port "$((SEAWEED_PORT + 3))" -volume.port.grpc "$((SEAWEED_PORT + 4))" -volume.max 0 \
    -filer -filer.port "$((SEAWEED_PORT + 5))" -s3 -s3.port "$SEAWEED_S3_PORT" -s3.config "$CACHE/seaweedfs-s3.json" \
    -s3.port.iceberg 0 -s3.port.lance 0
}

wait_for_seaweed() {
  # The S3 port answers before a volume server has joined the master: ready means an
  # authenticated bucket create, object write and read have worked end to end.
  local url="http://127.0.0.1:$SEAWEED_S3_PORT"
  local sign=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$TEST_ACCESS_KEY:$TEST_SECRET_KEY")
  for _ in $(seq 1 240); do
    if curl -sf -m 5 "${sign[@]}" -X PUT "$url/savepoint-ready" -o /dev/null 2>/dev/null ||
      curl -sf -m 5 "${sign[@]}" "$url/savepoint-ready" -o /dev/null 2>/dev/null; then
      if curl -sf -m 5 "${sign[@]}" -X PUT --data-binary ready "$url/savepoint-ready/probe" -o /dev/null &&
        [ "$(curl -sf -m 5 "${sign[@]}" "$url/savepoint-ready/probe")" = ready ]; then
        curl -sf -m 5 "${sign[@]}" -X DELETE "$url/savepoint-ready/probe" -o /dev/null || true
        log "seaweedfs is up at $url"
        return 0
      fi
    fi
    kill -0 "$(cat "$CACHE/seaweedfs.pid")" 2>/dev/null || break
    sleep 0.5
  done
  log "seaweedfs did not answer at $url; see $CACHE/logs/seaweedfs.log"
  tail -20 "$CACHE/logs/seaweedfs.log" >&2 || true
  return 1
}

start() {
  install_moto
  install_fake_gcs
  if [ "$SEAWEED" = 1 ]; then install_seaweed; fi
  [ -f "$PWD/node_modules/azurite/dist/src/blob/main.js" ] || { log "azurite is missing: run pnpm install first"; exit 1; }

  start_one moto "$PWD/.cache/venv/bin/python" "$PWD/scripts/moto-s3.py" -H 127.0.0.1 -p "$S3_PORT"
  start_one fake-gcs "$FAKE_GCS_BIN" -scheme http -host 127.0.0.1 -port "$GCS_PORT" \
    -public-host "127.0.0.1:$GCS_PORT" -external-url "http://127.0.0.1:$GCS_PORT" -backend memory -log-level warn
  start_one azurite node "$PWD/scripts/azurite-blob.cjs" --blobHost 127.0.0.1 --blobPort "$AZURE_PORT" --inMemoryPersistence --silent \
    --disableTelemetry --skipApiVersionCheck
  if [ "$SEAWEED" = 1 ]; then start_seaweed; fi

  wait_for moto "http://127.0.0.1:$S3_PORT/"
  wait_for fake-gcs "http://127.0.0.1:$GCS_PORT/storage/v1/b"
  wait_for azurite "http://127.0.0.1:$AZURE_PORT/devstoreaccount1?comp=list"
  cat >"$ENV_FILE" <<ENV
SAVEPOINT_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
SAVEPOINT_TEST_GCS_ENDPOINT=http://127.0.0.1:$GCS_PORT
SAVEPOINT_TEST_AZURE_ENDPOINT=http://127.0.0.1:$AZURE_PORT/devstoreaccount1
ENV
  if [ "$SEAWEED" = 1 ]; then
    wait_for_seaweed
    echo "SAVEPOINT_TEST_S3_SEAWEED_ENDPOINT=http://127.0.0.1:$SEAWEED_S3_PORT" >>"$ENV_FILE"
  else
    log "SeaweedFS (the second S3 server) not started: SAVEPOINT_SEAWEED=1 builds and starts it"
  fi
  log "addresses written to $ENV_FILE"
}

stop() {
  for name in moto fake-gcs azurite seaweedfs; do
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
  rm -rf "$CACHE/seaweedfs"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
