// Runs the contract checks outside vitest's `it`, collecting failures: used by the
// suite's own tests to prove that a broken backend fails.
import { randomBytes } from 'node:crypto';
import type { StorageBackend } from '@savepoint/core';
import type { ThroughProxy } from './contract-check.js';
import { type Capabilities, CONTRACT_CHECKS, DEFAULT_CAPABILITIES, type ScratchStore } from './contract-checks.js';

export interface CheckFailure {
  check: string;
  error: unknown;
}

export async function runChecks(
  backend: StorageBackend,
  root: string,
  options: {
    caps?: Partial<Capabilities>;
    storeRoot?: string;
    scratchStore?: () => Promise<ScratchStore>;
    throughProxy?: ThroughProxy;
    only?: readonly string[];
  } = {},
): Promise<CheckFailure[]> {
  const caps = { ...DEFAULT_CAPABILITIES, ...options.caps };
  const runRoot = backend.joinPath(root, `savepoint-selftest-${randomBytes(4).toString('hex')}`);
  const failures: CheckFailure[] = [];
  let index = 0;
  for (const check of CONTRACT_CHECKS) {
    index++;
    if (options.only && !options.only.includes(check.name)) continue;
    if (check.requires && !caps[check.requires]) continue;
    try {
      await check.run({
        backend,
        dir: backend.joinPath(runRoot, `c${index}`),
        storeRoot: options.storeRoot,
        scratchStore: options.scratchStore,
        throughProxy: options.throughProxy,
        caps,
      });
    } catch (error) {
      failures.push({ check: check.name, error });
    }
  }
  await backend.rmtree(runRoot).catch(() => {});
  return failures;
}
