// `testBackend(name, factory, options)`: registers one vitest test per contract
// rule. Each run works under a fresh random folder and removes it afterwards.
import { randomBytes } from 'node:crypto';
import type { StorageBackend } from '@savepoint/core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { type Capabilities, CONTRACT_CHECKS, DEFAULT_CAPABILITIES } from './contract-checks.js';

export interface BackendTestContext {
  backend: StorageBackend;
  /** A folder (URI or path) under which the suite may create its random run folder. */
  root: string;
  /** The store's own root (bucket, container), which `rmtree` must refuse. */
  storeRoot?: string;
  /** Called once after the run folder is removed. */
  cleanup?: () => Promise<void>;
}

export type BackendFactory = () => BackendTestContext | Promise<BackendTestContext>;

export interface TestBackendOptions {
  capabilities?: Partial<Capabilities>;
  /**
   * A reason to skip the whole suite (a server that is not running on a laptop).
   * Shown in the report; never set it in CI.
   */
  skipReason?: string | undefined;
}

export function testBackend(name: string, factory: BackendFactory, options: TestBackendOptions = {}): void {
  const caps: Capabilities = { ...DEFAULT_CAPABILITIES, ...options.capabilities };
  const suite = options.skipReason ? describe.skip : describe;
  suite(`${name} store contract${options.skipReason ? ` (skipped: ${options.skipReason})` : ''}`, () => {
    let ctx: BackendTestContext;
    let runRoot: string;

    beforeAll(async () => {
      ctx = await factory();
      runRoot = ctx.backend.joinPath(ctx.root, `savepoint-test-${randomBytes(6).toString('hex')}`);
    }, 60_000);

    afterAll(async () => {
      if (!ctx) return;
      try {
        await ctx.backend.rmtree(runRoot);
      } finally {
        await ctx.cleanup?.();
        await ctx.backend.close?.();
      }
    }, 120_000);

    CONTRACT_CHECKS.forEach((check, index) => {
      const enabled = !check.requires || caps[check.requires];
      (enabled ? it : it.skip)(
        check.name,
        () =>
          check.run({ backend: ctx.backend, dir: ctx.backend.joinPath(runRoot, `c${index}`), storeRoot: ctx.storeRoot, caps }),
        check.timeoutMs ?? 30_000,
      );
    });
  });
}
