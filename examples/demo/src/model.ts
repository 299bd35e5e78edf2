// The demo's data and network: three interleaved spirals in 2-D (generated, no
// download) and a small dense network that learns them in a few seconds on a CPU.
import * as tf from '@tensorflow/tfjs';

/** `count` points on three noisy spiral arms; the same points for the same seed. */
export function makeDataset(count: number, seed: number): { x: tf.Tensor2D; y: tf.Tensor2D } {
  let state = seed * 7919 + 17;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const xs: number[][] = [];
  const ys: number[][] = [];
  for (let i = 0; i < count; i++) {
    const arm = i % 3;
    const r = random();
    const angle = r * 3.5 + (arm * 2 * Math.PI) / 3 + (random() - 0.5) * 0.4;
    xs.push([r * Math.cos(angle), r * Math.sin(angle)]);
    ys.push([0, 1, 2].map((c) => (c === arm ? 1 : 0)));
  }
  return { x: tf.tensor2d(xs), y: tf.tensor2d(ys) };
}

/** Named layers: checkpoints key weights by name, and names stay the same in every process. */
export function buildModel(): tf.LayersModel {
  const model = tf.sequential();
  model.add(
    tf.layers.dense({
      name: 'hidden1',
      units: 32,
      inputShape: [2],
      activation: 'relu',
      kernelInitializer: tf.initializers.heNormal({ seed: 1 }),
    }),
  );
  model.add(
    tf.layers.dense({ name: 'hidden2', units: 32, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 2 }) }),
  );
  model.add(
    tf.layers.dense({
      name: 'classes',
      units: 3,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
    }),
  );
  model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy', metrics: ['acc'] });
  return model;
}
