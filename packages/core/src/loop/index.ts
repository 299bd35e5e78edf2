// A plain training loop that drives the hook: the tests' and the demo's, and a template.
export { ReferenceTrainer, type ReferenceTrainerOptions, silentLogger, type TrainableModel } from './reference-trainer.js';
