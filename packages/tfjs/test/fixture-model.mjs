// The model and data of the TensorFlow.js tests, in plain JavaScript so that the
// child processes of the kill test (fit-child.mjs) build exactly the same ones.
import * as tf from '@tensorflow/tfjs';

await tf.setBackend('cpu');

/** A 2-layer network with seeded initialisers: the same weights in every process. */
export function buildModel(optimizer = 'momentum') {
  const model = tf.sequential();
  model.add(
    tf.layers.dense({
      units: 8,
      inputShape: [4],
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      biasInitializer: 'zeros',
    }),
  );
  model.add(tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }));
  model.compile({
    optimizer: optimizer === 'adam' ? tf.train.adam(0.01) : optimizer === 'sgd' ? tf.train.sgd(0.1) : tf.train.momentum(0.1, 0.9),
    loss: 'categoricalCrossentropy',
    metrics: ['acc'],
  });
  return model;
}

/** 96 points in 3 classes, generated from a fixed recurrence (no randomness). */
export function dataset() {
  const xs = [];
  const ys = [];
  let state = 12345;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  for (let i = 0; i < 96; i++) {
    const label = i % 3;
    xs.push([label + next() * 0.8, -label + next() * 0.8, next(), label * 0.5 + next() * 0.3]);
    ys.push([0, 1, 2].map((c) => (c === label ? 1 : 0)));
  }
  return { x: tf.tensor2d(xs), y: tf.tensor2d(ys) };
}
