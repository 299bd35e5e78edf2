#!/usr/bin/env node
// `pnpm demo`: trains a small TensorFlow.js network with model.fit, checkpointing
// through SavepointCheckpoint (every 2 epochs, the newest 2 kept, the best val_acc
// tracked, slim copies published, saves in the background); the first process is
// interrupted after epoch 6 as a preempted job would be; a second one resumes from
// last_checkpoint and finishes; then it prints what is on the store. Any store works:
// --work-dir s3://bucket/demo --backend-args '{"region":"eu-west-1"}'.
import { parseArgs } from 'node:util';
import { cliPath, ls, parseBackendArgs, quietHostNotices, registerAllBackends, storeFor } from '@savepoint/cli';
import { ConfigError, type Logger, Run, redact } from '@savepoint/core';
import { SavepointCheckpoint } from '@savepoint/tfjs';
import * as tf from '@tensorflow/tfjs';
import { buildModel, makeDataset } from './model.js';

const EPOCHS = 10;
const STOP_AFTER = 6;
/** Written first into the demo's work dir: the demo deletes only inside folders that carry it. */
const DEMO_MARKER = 'savepoint-demo.json';

class Preempted extends Error {}

const USAGE = `Usage: pnpm demo [--work-dir <path or URI>] [--backend-args '<json>']

Trains a small TensorFlow.js model with the SavepointCheckpoint callback, is
interrupted after epoch ${STOP_AFTER} as a preempted job would be, resumes, and lists what is on the store.

  --work-dir <path>      the run folder (default ./work_dirs/demo), or s3://, gs://, az:// URI
  --backend-args <json>  the store's options, e.g. '{"region":"eu-west-1"}' (default: $SAVEPOINT_BACKEND_ARGS)
  -h, --help             this text
`;

function parseDemoArgs(): { 'work-dir'?: string; 'backend-args'?: string } {
  try {
    const { values } = parseArgs({
      options: {
        'work-dir': { type: 'string', default: './work_dirs/demo' },
        'backend-args': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    return values;
  } catch (error) {
    // A usage mistake gets the usage, not a stack trace.
    process.stderr.write(`savepoint demo: ${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}

// The demo owns its process: the AWS SDK's Node-version notice and TensorFlow.js's Node.js
// banner are noise to someone trying savepoint out (see host-notices.ts in @savepoint/cli).
quietHostNotices();
const values = parseDemoArgs();
// `--work-dir ../x` means what the shell means by it (see cliPath).
const workDir = cliPath(values['work-dir'] as string);
registerAllBackends();
const backendArgs = parseBackendArgs(values['backend-args'] ?? process.env.SAVEPOINT_BACKEND_ARGS, '--backend-args');
const store = storeFor(workDir, backendArgs);
await tf.setBackend('cpu');

const logger: Logger = {
  info: (m) => console.log(`  [savepoint] ${m}`),
  warn: (m) => console.warn(`  [savepoint] warning: ${m}`),
};

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
    const run = Run.open(workDir, { backend: store });
    console.log(`Starting fresh: removing the previous demo run's checkpoints in ${workDir}`);
    await run.clearPointer();
    for (const checkpoint of (await run.scan()).checkpoints) await run.remove(checkpoint.name);
  }
  await store.put(marker, JSON.stringify({ createdBy: 'savepoint demo', at: new Date().toISOString() }));
}

const started = Date.now();
try {
  await prepareWorkDir();
} catch (error) {
  console.error(`savepoint demo: ${redact(error instanceof Error ? error.message : String(error))}`);
  process.exit(2);
}

const train = makeDataset(600, 1);
const val = makeDataset(200, 2);

function checkpointCallback(): SavepointCheckpoint {
  return new SavepointCheckpoint({
    workDir,
    backend: store,
    interval: 2,
    maxKeepCkpts: 2,
    saveBest: 'val_acc',
    publishedKeys: ['meta', 'state_dict'],
    asyncSave: true,
    logger,
  });
}

const progress = (stopAfter?: number) =>
  new tf.CustomCallback({
    onEpochEnd: async (epoch, logs) => {
      console.log(
        `epoch ${String(epoch + 1).padStart(2)}/${EPOCHS}  loss ${logs?.loss?.toFixed(4)}  val_acc ${logs?.val_acc?.toFixed(4)}`,
      );
      if (stopAfter !== undefined && epoch + 1 >= stopAfter) throw new Preempted(`preempted after epoch ${epoch + 1}`);
    },
  });

console.log(`\n== training ${EPOCHS} epochs into ${workDir} (TensorFlow.js ${tf.version.tfjs}, ${tf.getBackend()} backend) ==`);
const first = checkpointCallback();
try {
  await buildModel().fit(train.x, train.y, {
    epochs: EPOCHS,
    batchSize: 32,
    validationData: [val.x, val.y],
    verbose: 0,
    callbacks: [first, progress(STOP_AFTER)],
  });
} catch (error) {
  if (!(error instanceof Preempted)) throw error;
  // What a preempted job leaves: saves in flight finish or not; the lease is given up.
  await first.close();
  console.log(`!! interrupted after epoch ${STOP_AFTER} (as a preempted job would be)`);
}

console.log('\n== a new process resumes from last_checkpoint ==');
const model = buildModel();
const second = checkpointCallback();
const { initialEpoch, path } = await second.resume(model);
await model.fit(train.x, train.y, {
  epochs: EPOCHS,
  initialEpoch,
  batchSize: 32,
  validationData: [val.x, val.y],
  verbose: 0,
  callbacks: [second, progress()],
});
console.log(`resumed from ${path} at epoch ${initialEpoch} and finished epoch ${EPOCHS}`);

const { checkpoints, pointer } = await ls(workDir, { backendArgs });
console.log('\n== what is on the store ==');
const names = (kind: string) =>
  checkpoints
    .filter((c) => c.kind === kind)
    .map((c) => c.name)
    .join(', ');
console.log(`regular checkpoints kept (maxKeepCkpts 2): ${names('regular')}`);
console.log(`best checkpoint (val_acc): ${names('best')}`);
console.log(`published copies: ${names('published')}`);
console.log(`last_checkpoint -> ${pointer}`);
// Never echo the settings themselves: they may hold credentials.
const argsHint = values['backend-args'] ? ' (with the same --backend-args)' : '';
console.log(`\ndone in ${((Date.now() - started) / 1000).toFixed(1)} s. Try: pnpm savepoint ls ${workDir}${argsHint}`);
