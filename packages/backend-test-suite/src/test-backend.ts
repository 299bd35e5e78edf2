// `testBackend(name, factory, options)`: registers one vitest test per contract
// rule. Each run works under a fresh random folder and removes it afterwards.
import { randomBytes } from 'node:crypto';
import type { StorageBackend } from '@savepoint/core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { ThroughProxy } from './contract-check.js';
import { type Capabilities, CONTRACT_CHECKS, DEFAULT_CAPABILITIES, type ScratchStore } from './contract-checks.js';

export interface BackendTestContext {
  backend: StorageBackend;
  /** A folder (URI or path) under which the suite may create its random run folder. */
  root: string;
  /** The store's own root (bucket, container, root folder), which `rmtree` must refuse. Required. */
  storeRoot: string;
  /**
   * Makes a new, empty store (a new bucket, container or root folder, and a backend
   * for it) that the suite wipes with `rmtree(root, { allowRoot: true })`. Required:
   * without it the `allowRoot` rule would go untested.
   */
  scratchStore: () => Promise<ScratchStore>;
  /**
   * For a backend that talks HTTP (capability `http`, on by default): the server's
   * origin and the same backend aimed at another origin, where the fault check puts
   * a proxy that answers 503 and 403. Required unless `http` is false.
   */
  throughProxy?: ThroughProxy;
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

/**
 * Inside a `describe`: builds the backend once, gives the tests a fresh random folder
 * under its root, and removes that folder (then calls `cleanup` and `close`) afterwards.
 */
export function useFreshRoot(
  factory: BackendFactory,
  prefix: string,
): { readonly ctx: BackendTestContext; readonly runRoot: string } {
  const state = {} as { ctx: BackendTestContext; runRoot: string };
  beforeAll(async () => {
    state.ctx = await factory();
    state.runRoot = state.ctx.backend.joinPath(state.ctx.root, `${prefix}-${randomBytes(6).toString('hex')}`);
  }, 60_000);
  afterAll(async () => {
    if (!state.ctx) return;
    try {
      await state.ctx.backend.rmtree(state.runRoot);
    } finally {
      await state.ctx.cleanup?.();
      await state.ctx.backend.close?.();
    }
  }, 120_000);
  return state;
}

export function testBackend(name: string, factory: BackendFactory, options: TestBackendOptions = {}): void {
  const caps: Capabilities = { ...DEFAULT_CAPABILITIES, ...options.capabilities };
  const suite = options.skipReason ? describe.skip : describe;
  suite(`${name} store contract${options.skipReason ? ` (skipped: ${options.skipReason})` : ''}`, () => {
    const fresh = useFreshRoot(factory, 'savepoint-test');

    CONTRACT_CHECKS.forEach((check, index) => {
      const enabled = !check.requires || caps[check.requires];
      (enabled ? it : it.skip)(
        check.name,
        () => {
          const { ctx, runRoot } = fresh;
          return check.run({
            backend: ctx.backend,
            dir: ctx.backend.joinPath(runRoot, `c${index}`),
            storeRoot: ctx.storeRoot,
            scratchStore: ctx.scratchStore,
            throughProxy: ctx.throughProxy,
            caps,
          });
        },
        check.timeoutMs ?? 30_000,
      );
    });
  });
}
