// The process the preemption tests send SIGTERM to: trains with `saveOnSignals` against
// one store (stores from backendArgs, so `asyncSave` runs on the save worker) and prints
// the position after each step, so the parent knows where training stood at the signal.
// With `hangAfterSignal` every store write after the signal hangs, so the save cannot
// commit within `preemptionGraceMs` and the hook must give up.
import { registerAzureBackend } from '@savepoint/backend-azure';
import { registerGcsBackend } from '@savepoint/backend-gcs';
import { registerLocalBackend } from '@savepoint/backend-local';
import { registerS3Backend } from '@savepoint/backend-s3';
import { ToyModel } from '@savepoint/backend-test-suite';
import { CheckpointHook, getBackend, ReferenceTrainer, type StorageBackend } from '@savepoint/core';
import { PREEMPT_INTERVAL, type PreemptConfig } from './preempt-plan.js';

const config = JSON.parse(process.env.SAVEPOINT_PREEMPT_CONFIG ?? '{}') as PreemptConfig;
registerLocalBackend();
registerS3Backend();
registerGcsBackend();
registerAzureBackend();

let signalled = false;
const MUTATING = new Set(['put', 'putStream', 'remove', 'rmtree', 'copy', 'putIfMatch', 'putIfAbsent', 'rename']);
/** A store whose writes hang once the signal came (methods bound to the real store: it has private fields). */
function hanging(store: StorageBackend): StorageBackend {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const bound = value.bind(target);
      return (...args: unknown[]) => (signalled && MUTATING.has(String(prop)) ? new Promise(() => {}) : bound(...args));
    },
  });
}
if (config.hangAfterSignal) process.on('SIGTERM', () => (signalled = true));

const stores = config.hangAfterSignal
  ? { backend: hanging(getBackend(config.workDir, config.backendArgs)) }
  : { backendArgs: config.backendArgs };

class SlowModel extends ToyModel {
  override trainStep(position: { epoch: number; iter: number }): number {
    const end = Date.now() + config.stepMs;
    while (Date.now() < end) {}
    return super.trainStep(position);
  }
}

const trainer = new ReferenceTrainer({
  workDir: config.workDir,
  model: new SlowModel(),
  checkpointHook: new CheckpointHook({
    interval: PREEMPT_INTERVAL,
    maxKeepCkpts: 2,
    asyncSave: config.asyncSave,
    saveOnSignals: ['SIGTERM', 'SIGINT'],
    ...(config.graceMs ? { preemptionGraceMs: config.graceMs } : {}),
    ...stores,
  }),
  itersPerEpoch: 1,
  maxEpochs: 100_000,
  resume: true,
  logger: { info: (m) => process.stdout.write(`log ${m}\n`), warn: (m) => process.stdout.write(`log ${m}\n`) },
  shouldStop: ({ epoch }) => {
    process.stdout.write(`step ${epoch}\n`);
    return false;
  },
  ...stores,
});
await trainer.train();
process.stdout.write('done\n');
