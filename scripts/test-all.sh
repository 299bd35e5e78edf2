#!/usr/bin/env bash
# The one test command (README quickstart, and what .ci/run calls): installs
# everything, builds, starts the local S3/GCS/Azure servers, runs every test,
# stops the servers, and prints the totals from vitest's JSON report.
set -uo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION="12.4.2"
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  echo "[test-all] installing pnpm $PNPM_VERSION" >&2
  npm install --global "pnpm@$PNPM_VERSION" >&2 || exit 1
fi
pnpm install --frozen-lockfile >&2 || exit 1
pnpm run build >&2 || exit 1

# Python tools (moto; numpy and safetensors for the format checks) in .cache/venv.
bash scripts/python-env.sh || exit 1

trap 'bash scripts/servers.sh stop' EXIT
bash scripts/servers.sh start || exit 1

mkdir -p test-results
rm -rf test-results/vitest.json test-results/reliability
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json
status=$?
node scripts/reliability-report.mjs || true
node scripts/test-totals.mjs test-results/vitest.json || status=1
exit $status
