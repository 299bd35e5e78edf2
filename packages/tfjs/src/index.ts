// @savepoint/tfjs: TensorFlow.js models on any savepoint store.
//   registerSavepointRouters()      model.save('s3://…') and tf.loadLayersModel('s3://…/model.json')
//   new SavepointCheckpoint({...})  a model.fit callback with rotation, bests and exact resume
//   new TrainingCheckpoint({...})   the same for a custom loop (optimizer.minimize): save(step, metrics), restore()
export { SavepointCheckpoint, type SavepointCheckpointOptions } from './checkpoint-callback.js';
export {
  MAX_MODEL_JSON_BYTES,
  MODEL_JSON,
  type RegisterRoutersOptions,
  registerSavepointRouters,
  type SavepointIOOptions,
  savepointIO,
} from './io-handler.js';
export { type TfTree, toSavepointTensor, toTfTensor, toTfTensors } from './tensors.js';
export { TrainingCheckpoint, type TrainingCheckpointOptions } from './training-checkpoint.js';
