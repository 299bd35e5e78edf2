// A training process for the kill test: fits the fixture model with SavepointCheckpoint
// on the store its config names, announcing each finished epoch on stdout, and prints
// the final weights as JSON. With `resume` it resumes from the run's last checkpoint.
// With `byBatch` (iteration mode, SGD) it saves after every batch, announces each, and
// trains through `checkpoint.fit`, which resumes mid-epoch at the next batch.
import { registerAzureBackend } from '@savepoint/backend-azure';
import { registerGcsBackend } from '@savepoint/backend-gcs';
import { registerLocalBackend } from '@savepoint/backend-local';
import { registerS3Backend } from '@savepoint/backend-s3';
import * as tf from '@tensorflow/tfjs';
import { SavepointCheckpoint } from '../dist/index.js';
import { buildModel, dataset } from './fixture-model.mjs';

for (const register of [registerLocalBackend, registerS3Backend, registerGcsBackend, registerAzureBackend]) register();
const config = JSON.parse(process.env.SAVEPOINT_FIT_CONFIG ?? '{}');
const model = buildModel(config.byBatch ? 'sgd' : 'momentum');
const { x, y } = dataset();
const checkpoint = new SavepointCheckpoint({
  workDir: config.workDir,
  backendArgs: config.backendArgs,
  interval: 1,
  maxKeepCkpts: 2,
  asyncSave: config.asyncSave === true,
  leaseTtlMs: 2000,
  ...(config.byBatch ? { byEpoch: false } : {}),
});
const { initialEpoch, batchInEpoch } = config.resume ? await checkpoint.resume(model) : { initialEpoch: 0, batchInEpoch: 0 };
let iter = checkpoint.position.iter;
const announce = new tf.CustomCallback({
  onEpochEnd: async (epoch) => {
    process.stdout.write(`epoch ${epoch + 1}\n`);
  },
  onBatchEnd: async () => {
    process.stdout.write(`iter ${++iter}\n`);
  },
});
const args = { epochs: config.epochs, batchSize: 32, shuffle: false, verbose: 0, callbacks: [announce] };
if (config.byBatch) await checkpoint.fit(model, x, y, args);
else await model.fit(x, y, { ...args, initialEpoch, callbacks: [checkpoint, announce] });
const weights = await Promise.all(model.getWeights().map(async (w) => Array.from(await w.data())));
process.stdout.write(`weights ${JSON.stringify({ initialEpoch, batchInEpoch, weights })}\n`);
