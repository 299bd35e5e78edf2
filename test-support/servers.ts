// Finds the local server a backend's tests need. `scripts/servers.sh start` (run by
// `pnpm test:all` and CI) writes their addresses to .cache/servers.env. Without a
// server the tests skip on a laptop, saying how to start it, and fail under CI=true
// (unless the run is serverless on purpose: SAVEPOINT_TEST_SERVERS=none).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ENV_FILE = fileURLToPath(new URL('../.cache/servers.env', import.meta.url));

export type ServerKind = 'S3' | 'S3_VERSITYGW' | 'GCS' | 'AZURE';

const HINTS: Record<ServerKind, string> = {
  S3: 'moto (pip install "moto[server]==5.2.1")',
  S3_VERSITYGW: 'the Versity S3 Gateway (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)',
  GCS: 'fake-gcs-server (go install github.com/fsouza/fake-gcs-server@v1.56.1)',
  AZURE: 'Azurite (pnpm install brings it)',
};

function fromEnvFile(name: string): string | undefined {
  if (!existsSync(ENV_FILE)) return undefined;
  for (const line of readFileSync(ENV_FILE, 'utf8').split('\n')) {
    const [key, ...rest] = line.split('=');
    if (key === name) return rest.join('=').trim();
  }
  return undefined;
}

/** The server's endpoint, or a reason to skip. Under CI=true a missing server throws, failing the file. */
export function localServer(
  kind: ServerKind,
): { endpoint: string; skipReason?: undefined } | { endpoint?: undefined; skipReason: string } {
  if (serverlessRun()) return { skipReason: SERVERLESS_REASON };
  const name = `SAVEPOINT_TEST_${kind}_ENDPOINT`;
  const endpoint = process.env[name] ?? fromEnvFile(name);
  if (endpoint) return { endpoint };
  const reason = `no ${kind} server: run "bash scripts/servers.sh start" (it installs ${HINTS[kind]}) or set ${name}`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  return { skipReason: reason };
}

const SERVERLESS_REASON =
  'this run tests without servers (SAVEPOINT_TEST_SERVERS=none: scripts/test-all.sh runs the server tests on one Node version)';

/**
 * A run on purpose without servers (scripts/test-all.sh on its extra Node versions):
 * the tests needing one skip, saying so, even under CI=true.
 */
export function serverlessRun(): boolean {
  return process.env.SAVEPOINT_TEST_SERVERS === 'none';
}

/** Whether a missing server fails the test rather than skipping it: under CI=true, unless the run is serverless. */
export function serversRequired(): boolean {
  return process.env.CI === 'true' && !serverlessRun();
}
