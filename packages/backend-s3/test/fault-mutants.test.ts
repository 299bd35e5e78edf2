// The contract suite's fault check fails backends that get a server's error answers
// wrong (issue 28: "a 5xx classified as permanent" survived the suite before). Each
// mutant is the real S3 backend on moto with one fault in how it treats an answer; the
// suite's own proxy answers 503 and 403 in front of the server.
import { FAULT_CHECK_NAME, runChecks } from '@savepoint/backend-test-suite';
import { BackendError, isTransient, type StorageBackend } from '@savepoint/core/store';
import { describe, expect, it } from 'vitest';
import { S3Backend } from '../src/index.js';
import { BUCKET, ensureBucket, s3Args, server } from './s3-setup.js';

const FAST = { retries: 3, minDelayMs: 1, maxDelayMs: 5 };

/** The backend's promise-returning calls wrapped by `around` (the check uses get, stat and put). */
function wrapCalls(backend: StorageBackend, around: (call: () => Promise<unknown>) => Promise<unknown>): StorageBackend {
  return new Proxy(backend, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function' || !['get', 'stat', 'put'].includes(String(key))) return value;
      return (...args: unknown[]) => around(() => value.apply(target, args));
    },
  });
}

const mutants: [string, (origin: string) => StorageBackend][] = [
  [
    'a backend that reports a 5xx past its retries as permanent',
    (origin) =>
      wrapCalls(new S3Backend(s3Args({ endpoint: origin, retry: FAST })), async (call) => {
        try {
          return await call();
        } catch (error) {
          if (isTransient(error)) throw new BackendError(`permanent: ${String(error)}`);
          throw error;
        }
      }),
  ],
  ['a backend that never retries a 5xx', (origin) => new S3Backend(s3Args({ endpoint: origin, retry: { retries: 0 } }))],
  [
    'a backend that retries a 403',
    (origin) =>
      wrapCalls(new S3Backend(s3Args({ endpoint: origin, retry: FAST })), async (call) => {
        for (let attempt = 0; ; attempt++) {
          try {
            return await call();
          } catch (error) {
            if (attempt >= 2) throw error;
          }
        }
      }),
  ],
];

describe.skipIf(!!server.skipReason)(
  `the fault check fails backends that mistreat error answers${server.skipReason ? ` (skipped: ${server.skipReason})` : ''}`,
  () => {
    const run = async (make: (origin: string) => StorageBackend) => {
      await ensureBucket();
      const backend = new S3Backend(s3Args());
      try {
        const failures = await runChecks(backend, `s3://${BUCKET}/fault-mutants`, {
          storeRoot: `s3://${BUCKET}`,
          throughProxy: { origin: server.endpoint as string, make },
          only: [FAULT_CHECK_NAME],
        });
        return failures.map((f) => f.check);
      } finally {
        await backend.close();
      }
    };

    it('passes the real S3 backend (the control)', async () => {
      expect(await run((origin) => new S3Backend(s3Args({ endpoint: origin, retry: FAST })))).toEqual([]);
    }, 60_000);

    for (const [what, make] of mutants) {
      it(`fails ${what}`, async () => {
        expect(await run(make)).toEqual([FAULT_CHECK_NAME]);
      }, 60_000);
    }
  },
);
