// A training process for the kill test: fits the fixture model with SavepointCheckpoint
// on the store its config names, announcing each finished epoch on stdout, and prints
// the final weights as JSON. With `resume` it resumes from the run's last checkpoint.
import { registerAzureBackend } from '@savepoint/backend-azure';
import { registerGcsBackend } from '@savepoint/backend-gcs';
import { registerLocalBackend } from '@savepoint/backend-local';
import { registerS3Backend } from '@savepoint/backend-s3';
import * as tf from '@tensorflow/tfjs';
import { SavepointCheckpoint } from '../dist/index.js';
import { buildModel, dataset } from './fixture-model.mjs';

for (const register of [registerLocalBackend, registerS3Backend, registerGcsBackend, registerAzureBackend]) register();
const config = JSON.parse(process.env.SAVEPOINT_FIT_CONFIG ?? '{}');
const model = buildModel();
const { x, y } = dataset();
const checkpoint = new SavepointCheckpoint({
  workDir: config.workDir,
  backendArgs: config.backendArgs,
  interval: 1,
  maxKeepCkpts: 2,
  asyncSave: config.asyncSave === true,
  leaseTtlMs: 2000,
});
const { initialEpoch } = config.resume ? await checkpoint.resume(model) : { initialEpoch: 0 };
const announce = new tf.CustomCallback({
  onEpochEnd: async (epoch) => {
    process.stdout.write(`epoch ${epoch + 1}\n`);
  },
});
await model.fit(x, y, {
  epochs: config.epochs,
  initialEpoch,
  batchSize: 32,
  shuffle: false,
  verbose: 0,
  callbacks: [checkpoint, announce],
});
const weights = await Promise.all(model.getWeights().map(async (w) => Array.from(await w.data())));
process.stdout.write(`weights ${JSON.stringify({ initialEpoch, weights })}\n`);
