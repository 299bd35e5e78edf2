// The job the paused-writer tests stop: it trains with synchronous, CPU-bound steps
// (as a TensorFlow.js `fit` does) and stops itself with SIGSTOP at a chosen moment:
// just before a chosen store write, or in the middle of a step. The parent lets its
// lease expire, has another job take the run over and train on, then continues it
// with SIGCONT and checks that it changes nothing of the other job's run.
import { registerAzureBackend } from '@savepoint/backend-azure';
import { registerGcsBackend } from '@savepoint/backend-gcs';
import { registerLocalBackend } from '@savepoint/backend-local';
import { registerS3Backend } from '@savepoint/backend-s3';
import { InstrumentedBackend, ToyModel } from '@savepoint/backend-test-suite';
import { type BackendArgs, CheckpointHook, getBackend, ReferenceTrainer } from '@savepoint/core';

export interface PausedConfig {
  workDir: string;
  backendArgs: BackendArgs;
  epochs: number;
  leaseTtlMs: number;
  /** How long each training step holds the thread. */
  stepMs: number;
  asyncSave: boolean;
  /** Stores built from `backendArgs` (no instance): then `asyncSave` runs on the save worker thread. Only with an `epoch` pause. */
  storesFromArgs?: boolean;
  /** Stop just before the `occurrence`-th call (1-based) of `op` on a path ending with `pathEnd`, or in the step of `epoch`. */
  pause: { op: string; pathEnd: string; occurrence: number } | { epoch: number };
}

export const PAUSED_HOOK = { interval: 1, maxKeepCkpts: 2, saveBest: 'acc' } as const;
/** Accuracy rises every epoch: every save point also writes a new best and deletes the previous one. */
export const pausedMetrics = ({ epoch }: { epoch: number }) => ({ acc: epoch / 100 });

/** Holds the thread for `ms`, as a synchronous training step does. */
export function busyStep(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // computing
  }
}

function pauseHere(where: string): void {
  process.stdout.write(`paused ${where}\n`);
  process.kill(process.pid, 'SIGSTOP');
  process.stdout.write('continued\n');
}

class SlowModel extends ToyModel {
  constructor(
    private readonly config: PausedConfig,
    metrics: typeof pausedMetrics,
  ) {
    super(metrics);
  }
  override trainStep(position: { epoch: number; iter: number }): number {
    const { pause, stepMs } = this.config;
    busyStep(stepMs / 2);
    if ('epoch' in pause && position.epoch + 1 === pause.epoch) pauseHere(`in the step of epoch ${pause.epoch}`);
    busyStep(stepMs / 2);
    return super.trainStep(position);
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env.SAVEPOINT_PAUSED_CONFIG ?? '{}') as PausedConfig;
  registerLocalBackend();
  registerS3Backend();
  registerGcsBackend();
  registerAzureBackend();
  let seen = 0;
  const { pause } = config;
  const store = new InstrumentedBackend(getBackend(config.workDir, config.backendArgs), (call) => {
    if ('op' in pause && call.op === pause.op && call.path.endsWith(pause.pathEnd) && ++seen === pause.occurrence) {
      pauseHere(`before ${call.op} ${call.path}`);
    }
    return undefined;
  });
  const stores = config.storesFromArgs ? { backendArgs: config.backendArgs } : { backend: store };
  const trainer = new ReferenceTrainer({
    workDir: config.workDir,
    model: new SlowModel(config, pausedMetrics),
    checkpointHook: new CheckpointHook({
      ...PAUSED_HOOK,
      asyncSave: config.asyncSave,
      leaseTtlMs: config.leaseTtlMs,
      ...stores,
    }),
    itersPerEpoch: 1,
    maxEpochs: config.epochs,
    valInterval: 1,
    resume: true,
    ...stores,
  });
  await trainer.train();
  process.stdout.write('done\n');
}

if (process.env.SAVEPOINT_PAUSED_CONFIG) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}\n`);
    process.exitCode = 1;
  });
}
