#!/usr/bin/env node
// `pnpm demo`: trains a small logistic regression with the reference loop,
// checkpointing with an interval, rotation, best tracking and publishing; stops
// itself mid-run as a preempted job would; resumes from last_checkpoint; and
// prints what is on the store. Any store works: --work-dir s3://bucket/demo.
import { parseArgs } from 'node:util';
import { CheckpointHook, ConfigError, type Logger, ReferenceTrainer, redact, removeCheckpoint } from '@savepoint/core';
import { ls } from './commands.js';
import { LogisticRegression, makeDataset } from './demo-model.js';
import { parseBackendArgs, registerAllBackends, storeFor } from './stores.js';

const EPOCHS = 10;
const STOP_AFTER = 6;
const ITERS_PER_EPOCH = 5;
/** Written first into the demo's work dir: the demo deletes only inside folders that carry it. */
const DEMO_MARKER = 'savepoint-demo.json';

const { values } = parseArgs({
  options: { 'work-dir': { type: 'string', default: './work_dirs/demo' }, 'backend-args': { type: 'string' } },
});
const workDir = values['work-dir'] as string;
registerAllBackends();
const backendArgs = parseBackendArgs(values['backend-args'] ?? process.env.SAVEPOINT_BACKEND_ARGS, '--backend-args');
const store = storeFor(workDir, backendArgs);

const logger: Logger = {
  info: (m) => console.log(`  [savepoint] ${m}`),
  warn: (m) => console.warn(`  [savepoint] warning: ${m}`),
};

const train = makeDataset(2000, 8, 1);
const val = makeDataset(600, 8, 2);

function session(label: string, resume: boolean, stopAfter?: number) {
  const model = new LogisticRegression({ dims: 8, train, val, lr: 0.002, batchSize: 8 });
  const hook = new CheckpointHook({
    interval: 2,
    maxKeepCkpts: 2,
    saveBest: 'acc',
    publishedKeys: ['meta', 'state_dict'],
    backend: store,
  });
  const trainer = new ReferenceTrainer({
    workDir,
    model: {
      ...model,
      trainStep: (p) => model.trainStep(p),
      evaluate: () => {
        const metrics = model.evaluate();
        console.log(
          `epoch ${String(trainer.epoch).padStart(2)}/${EPOCHS}  val acc ${metrics.acc?.toFixed(4)}  val loss ${metrics.loss?.toFixed(4)}  lr ${model.lr.toFixed(4)}`,
        );
        model.stepSchedule(trainer.epoch);
        return metrics;
      },
      stateDict: () => model.stateDict(),
      loadStateDict: (s) => model.loadStateDict(s),
      optimizerState: () => model.optimizerState(),
      loadOptimizerState: (s) => model.loadOptimizerState(s),
      schedulerState: () => model.schedulerState(),
      loadSchedulerState: (s) => model.loadSchedulerState(s),
    },
    checkpointHook: hook,
    maxEpochs: EPOCHS,
    itersPerEpoch: ITERS_PER_EPOCH,
    valInterval: 1,
    logger,
    resume,
    backend: store,
    meta: { experiment: 'savepoint-demo', seed: 1 },
    shouldStop: stopAfter ? (p) => p.epoch >= stopAfter && p.iter % ITERS_PER_EPOCH === 0 : undefined,
  });
  console.log(`\n== ${label} ==`);
  return trainer;
}

const started = Date.now();
try {
  await prepareWorkDir();
} catch (error) {
  console.error(`savepoint demo: ${redact(error instanceof Error ? error.message : String(error))}`);
  process.exit(2);
}

/**
 * The demo deletes only what it created: a folder holding its marker (a previous demo
 * run) loses the names the run layout parses as the demo's own, nothing else; any other
 * non-empty folder is refused. Writing the marker first also proves, before training
 * starts, that the store is reachable and writable (a missing bucket fails here).
 */
async function prepareWorkDir(): Promise<void> {
  const marker = store.joinPath(workDir, DEMO_MARKER);
  if (await store.isDir(workDir)) {
    if (!(await store.isFile(marker))) {
      throw new ConfigError(
        `${workDir} is not empty and is not a previous demo run (it has no ${DEMO_MARKER}); the demo never deletes files it did not create. Pass another --work-dir.`,
        { option: '--work-dir' },
      );
    }
    const layout = new CheckpointHook({ backend: store }).layoutFor(workDir);
    console.log(`Starting fresh: removing the previous demo run's checkpoints in ${workDir}`);
    for await (const entry of store.list(workDir)) {
      const kind = layout.parse(entry.name)?.kind;
      if (kind === 'regular' || kind === 'best' || kind === 'published' || kind === 'pointer') {
        await removeCheckpoint(store, entry.path);
      }
    }
  }
  await store.put(marker, JSON.stringify({ createdBy: 'savepoint demo', at: new Date().toISOString() }));
}

const first = session(`training ${EPOCHS} epochs into ${workDir}`, false, STOP_AFTER);
await first.train();
console.log(`!! interrupted after epoch ${first.epoch} (as a preempted job would be)`);

const second = session('a new process resumes from last_checkpoint', true);
await second.train();
console.log(`resumed from ${second.resumedFrom} and finished epoch ${second.epoch}`);

const { checkpoints, pointer } = await ls(store, workDir);
const score = second.runtimeInfo.get<number>('best_score');
console.log('\n== what is on the store ==');
console.log(
  `regular checkpoints kept (maxKeepCkpts 2): ${checkpoints
    .filter((c) => c.kind === 'regular')
    .map((c) => c.name)
    .join(', ')}`,
);
for (const best of checkpoints.filter((c) => c.kind === 'best'))
  console.log(`best checkpoint: ${best.name} (acc ${score?.toFixed(4)})`);
console.log(
  `published copies: ${checkpoints
    .filter((c) => c.kind === 'published')
    .map((c) => c.name)
    .join(', ')}`,
);
console.log(`last_checkpoint -> ${pointer}`);
// Never echo the settings themselves: they may hold credentials.
const argsHint = values['backend-args'] ? ' (with the same --backend-args)' : '';
console.log(
  `\ndone in ${((Date.now() - started) / 1000).toFixed(1)} s. Try: node packages/cli/dist/bin.js ls ${workDir}${argsHint}`,
);
