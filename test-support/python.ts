// The Python that reads our files in the format checks: the project's virtualenv
// (.cache/venv, made by scripts/python-env.sh) when it exists, else python3. Without
// numpy and safetensors a test skips on a laptop, saying why, and fails under CI=true.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const VENV_PYTHON = fileURLToPath(new URL('../.cache/venv/bin/python', import.meta.url));

export const PYTHON = process.env.SAVEPOINT_PYTHON ?? (existsSync(VENV_PYTHON) ? VENV_PYTHON : 'python3');

const probe = spawnSync(PYTHON, ['-c', 'import numpy, safetensors'], { encoding: 'utf8' });
if (probe.status !== 0 && process.env.CI === 'true') {
  throw new Error(`CI=true but ${PYTHON} cannot import numpy and safetensors: ${probe.stderr || probe.error}`);
}

/** Why the Python checks skip, or undefined when they run. */
export const pythonSkipReason: string | undefined =
  probe.status === 0
    ? undefined
    : `${PYTHON} cannot import numpy and safetensors: run "bash scripts/python-env.sh" (it makes .cache/venv)`;
