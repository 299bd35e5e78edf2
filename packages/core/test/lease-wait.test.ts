// leaseWaitMs: a job restarted while another job still holds the run's lease (a
// preempted job restarted on another host within the lease time) waits for it instead
// of failing at once, saying who holds it; past the budget it fails as before.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { CheckpointHook, ConfigError, LeaseHeldError, type Runner, RuntimeInfo } from '../src/index.js';

function runner(workDir: string, logs: string[]): Runner {
  return {
    workDir,
    epoch: 0,
    iter: 0,
    maxEpochs: 1,
    maxIters: 1,
    runtimeInfo: new RuntimeInfo(),
    logger: { info: (m) => logs.push(m), warn: (m) => logs.push(`WARN ${m}`) },
    rank: 0,
    modelState: () => ({ w: new Float32Array(2) }),
  };
}

describe('leaseWaitMs', () => {
  let dir: string;
  const backend = new LocalBackend();
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'savepoint-lease-wait-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('waits for a held lease and takes it once the holder releases it, logging who holds it', async () => {
    const holder = new CheckpointHook({ interval: 1, backend, leaseTtlMs: 3000 });
    await holder.beforeTrain(runner(dir, []));
    const logs: string[] = [];
    const waiter = new CheckpointHook({ interval: 1, backend, leaseTtlMs: 3000, leaseWaitMs: 60_000 });
    let started = false;
    const starting = waiter.beforeTrain(runner(dir, logs)).then(() => {
      started = true;
    });
    await expect.poll(() => logs.some((m) => m.includes('waiting up to'))).toBe(true);
    expect(started).toBe(false);
    expect(logs.find((m) => m.includes('waiting up to'))).toMatch(/held until \d{4}-\d\d-\d\dT/);
    await holder.close();
    await starting;
    expect(started).toBe(true);
    await waiter.close();
  });

  it('past its budget fails with LeaseHeldError, as without it', async () => {
    const holder = new CheckpointHook({ interval: 1, backend, leaseTtlMs: 3000 });
    await holder.beforeTrain(runner(dir, []));
    try {
      const waiter = new CheckpointHook({ interval: 1, backend, leaseTtlMs: 3000, leaseWaitMs: 300 });
      await expect(waiter.beforeTrain(runner(dir, []))).rejects.toBeInstanceOf(LeaseHeldError);
      const impatient = new CheckpointHook({ interval: 1, backend, leaseTtlMs: 3000 });
      await expect(impatient.beforeTrain(runner(dir, []))).rejects.toBeInstanceOf(LeaseHeldError);
    } finally {
      await holder.close();
    }
  });

  it('is checked at construction', () => {
    expect(() => new CheckpointHook({ leaseWaitMs: -1 })).toThrow(ConfigError);
    expect(() => new CheckpointHook({ leaseWaitMs: 1.5 })).toThrow(/leaseWaitMs.*integer >= 0/);
    expect(() => new CheckpointHook({ leaseTtlMs: false, leaseWaitMs: 1000 })).toThrow(/leaseWaitMs.*only together with a lease/);
  });
});
