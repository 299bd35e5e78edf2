// The process the crash tests kill: trains with checkpointing (resuming when a
// pointer exists) and prints one line per store write or delete before making it,
// so the parent can SIGKILL it in the middle of uploads, pointer moves and deletes.
import { registerAzureBackend } from '@savepoint/backend-azure';
import { registerGcsBackend } from '@savepoint/backend-gcs';
import { registerLocalBackend } from '@savepoint/backend-local';
import { registerS3Backend } from '@savepoint/backend-s3';
import { InstrumentedBackend, MUTATING_OPERATIONS, ToyModel } from '@savepoint/backend-test-suite';
import { CheckpointHook, getBackend, ReferenceTrainer } from '@savepoint/core';
import { type CrashConfig, crashHookOptions, crashMetrics } from './crash-plan.js';

const config = JSON.parse(process.env.SAVEPOINT_CRASH_CONFIG ?? '{}') as CrashConfig;
registerLocalBackend();
registerS3Backend();
registerGcsBackend();
registerAzureBackend();

let op = 0;
const store = new InstrumentedBackend(getBackend(config.workDir, config.backendArgs), (call) => {
  if (MUTATING_OPERATIONS.includes(call.op)) process.stdout.write(`op ${op++} ${call.op} ${call.path}\n`);
  return undefined;
});
// On the save worker the writes happen in another thread: the child announces each save
// point as the hook logs it (the worker is handed the save point right then).
const saveWorkerLogger = {
  info(message: string) {
    if (/^Saving checkpoint|^The best checkpoint/.test(message)) process.stdout.write(`op ${op++} save save-worker\n`);
  },
  warn() {},
};
const stores = config.saveWorker ? { backendArgs: config.backendArgs } : { backend: store };
const trainer = new ReferenceTrainer({
  workDir: config.workDir,
  model: new ToyModel(crashMetrics),
  checkpointHook: new CheckpointHook({ ...crashHookOptions(config), ...stores }),
  itersPerEpoch: 1,
  maxEpochs: config.epochs,
  valInterval: 1,
  resume: true,
  ...(config.saveWorker ? { logger: saveWorkerLogger } : {}),
  ...stores,
});
await trainer.train();
process.stdout.write('done\n');
