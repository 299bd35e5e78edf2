// One run of the fit benchmark (scripts/bench.mjs section "fit"), in its own process:
// a TensorFlow.js model (CPU backend: every epoch computes synchronously for seconds)
// trained for EPOCHS epochs with the `SavepointCheckpoint` callback saving every epoch
// to S3 on the local server (or to local disk), in one of three modes: no checkpoints,
// synchronous saves, or asyncSave. Prints the end-to-end time of `fit` (the last save
// committed included).
//   node scripts/bench-fit.mjs none|sync|async [s3|s3-versitygw|local]

import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import * as tf from '@tensorflow/tfjs';
import { registerLocalBackend } from '../packages/backend-local/dist/index.js';
import { registerS3Backend } from '../packages/backend-s3/dist/index.js';
import { SavepointCheckpoint } from '../packages/tfjs/dist/index.js';

const mode = process.argv[2];
const storeKind = process.argv[3] ?? 's3';
const EPOCHS = Number(process.env.BENCH_FIT_EPOCHS ?? 8);
const SAMPLES = Number(process.env.BENCH_FIT_SAMPLES ?? 32);
// s3: moto (a Python server); s3-versitygw: the Versity S3 Gateway (Go), which costs the
// two cores it shares with training far less CPU per save.
const versitygw = storeKind === 's3-versitygw';
const endpointVariable = versitygw ? 'SAVEPOINT_TEST_S3_VERSITYGW_ENDPOINT' : 'SAVEPOINT_TEST_S3_ENDPOINT';
const endpoint = process.env[endpointVariable];
if (!endpoint) throw new Error(`${endpointVariable} is not set: start the servers (bash scripts/servers.sh start)`);
const credentials = versitygw
  ? { accessKeyId: 'testing-access-key', secretAccessKey: 'testing-secret-key-0123456789' }
  : { accessKeyId: 'testing', secretAccessKey: 'testing' };
const s3 = { endpoint, forcePathStyle: true, region: 'us-east-1', credentials };
await new S3Client(s3).send(new CreateBucketCommand({ Bucket: 'savepoint-bench' })).catch(() => {});
registerS3Backend();
registerLocalBackend();
const target =
  storeKind === 'local'
    ? { workDir: join(mkdtempSync(join(tmpdir(), 'savepoint-fit-')), 'run'), backendArgs: {} }
    : { workDir: `s3://savepoint-bench/fit-${mode}-${Date.now().toString(36)}`, backendArgs: s3 };

await tf.setBackend('cpu');
tf.util.seedrandom?.(1);
// About 10.5 M weights (42 MB of float32): 512 -> 4096 -> 2048 -> 10, with Adam's two
// slots per weight: a checkpoint of about 126 MB, whose save costs a synchronous loop
// about a second on the local server.
const model = tf.sequential({
  layers: [
    tf.layers.dense({ inputShape: [512], units: 4096, activation: 'relu' }),
    tf.layers.dense({ units: 2048, activation: 'relu' }),
    tf.layers.dense({ units: 10, activation: 'softmax' }),
  ],
});
model.compile({ optimizer: tf.train.adam(0.001), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
const xs = tf.randomNormal([SAMPLES, 512]);
const ys = tf.oneHot(tf.randomUniform([SAMPLES], 0, 10, 'int32'), 10);
const weightBytes = model.getWeights().reduce((sum, w) => sum + w.size * 4, 0);

const callbacks =
  mode === 'none'
    ? []
    : [
        new SavepointCheckpoint({
          ...target,
          interval: 1,
          maxKeepCkpts: 2,
          asyncSave: mode === 'async',
        }),
      ];
// The time `fit` waits on the callback at each epoch end: what a save point takes from
// training directly; and at the train end (`drain`): the last save finishing, which no
// epoch is left to overlap (with asyncSave), and the lease's release; at the train
// begin (`begin`): the lease taken, the save worker started.
const spent = { onEpochEnd: 0, onTrainBegin: 0, onTrainEnd: 0 };
for (const callback of callbacks) {
  for (const method of Object.keys(spent)) {
    const original = callback[method].bind(callback);
    callback[method] = async (...args) => {
      const t = performance.now();
      await original(...args);
      spent[method] += performance.now() - t;
    };
  }
}
// BENCH_FIT_PIN=1 (scripts/bench.mjs starts this process on CPU 1): the main thread
// alone moves to CPU 0 once the save worker thread exists (at the train begin; threads
// take their creator's CPUs when they start), so TensorFlow.js computes on a core of
// its own and the worker and the servers share the other.
const pinMainThread = () => {
  if (process.env.BENCH_FIT_PIN === '1') execFileSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
};
if (callbacks.length === 0) pinMainThread();
else {
  const onTrainBegin = callbacks[0].onTrainBegin.bind(callbacks[0]);
  callbacks[0].onTrainBegin = async (...args) => {
    await onTrainBegin(...args);
    pinMainThread();
  };
}
const start = performance.now();
await model.fit(xs, ys, { epochs: EPOCHS, batchSize: 32, callbacks, verbose: 0 });
const seconds = (performance.now() - start) / 1000;
process.stdout.write(
  `${JSON.stringify({ mode, store: storeKind, seconds, blocked: spent.onEpochEnd / 1000, drain: spent.onTrainEnd / 1000, begin: spent.onTrainBegin / 1000, epochs: EPOCHS, weightBytes })}\n`,
);
