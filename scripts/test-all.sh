#!/usr/bin/env bash
# The one test command (README quickstart, and what .ci/run calls): installs
# everything, builds, starts the local S3 (two servers)/GCS/Azure servers, runs every
# test on this machine's Node, then the tests needing no server on Node 22 and 24,
# stops the servers, and prints the totals summed over the runs' JSON reports.
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
rm -rf test-results/vitest*.json test-results/reliability
# The whole suite, servers included, on this machine's Node.
echo "[test-all] the whole suite on Node $(node --version)" >&2
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json
status=$?
reports=(test-results/vitest.json)

# The tests that need no server again on Node 22 and 24 (npm's "node" package brings
# each one; SAVEPOINT_NODE_VERSIONS picks others, "" none). The server tests run once,
# above: three whole runs would not fit CI's 15 minutes on 2 cores.
for major in ${SAVEPOINT_NODE_VERSIONS-22 24}; do
  [ "$major" = "$(node -p 'process.versions.node.split(".")[0]')" ] && continue
  echo "[test-all] the tests that need no server on Node $major" >&2
  SAVEPOINT_TEST_SERVERS=none npx -y -p "node@$major" node node_modules/vitest/vitest.mjs run \
    --reporter=dot --reporter=json --outputFile.json="test-results/vitest-node$major.json" || status=1
  reports+=("test-results/vitest-node$major.json")
done

node scripts/reliability-report.mjs || true
node scripts/test-totals.mjs "${reports[@]}" || status=1
exit $status
