import type * as tf from '@tensorflow/tfjs';
export declare function buildModel(optimizer?: 'momentum' | 'adam' | 'sgd'): tf.LayersModel;
export declare function dataset(): { x: tf.Tensor2D; y: tf.Tensor2D };
