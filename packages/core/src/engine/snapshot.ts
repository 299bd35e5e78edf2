// What an asynchronous save writes while training goes on: a copy of the state's
// tensors, in buffers reused from earlier saves. For the save worker the copy is made
// in shared memory, so handing it to the worker copies nothing more.
import { isTypedArray, Tensor, type TypedArray } from '../format/tensor.js';

/**
 * A copy of a checkpoint's tensors (typed arrays and `Tensor`s, at any depth) that the
 * training loop cannot change: what an asynchronous save writes while training goes on.
 * `copy` makes each array's copy (a `SnapshotPool` reuses earlier buffers); JSON leaves
 * are copied too; nothing else is shared with the input.
 */
export function snapshotCheckpoint<T>(value: T, copy: (data: TypedArray) => TypedArray = (data) => data.slice()): T {
  if (value instanceof Tensor) return new Tensor(copy(value.data), value.shape, value.dtype) as T;
  if (isTypedArray(value)) return copy(value) as T;
  if (Array.isArray(value)) return value.map((item) => snapshotCheckpoint(item, copy)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, snapshotCheckpoint(item, copy)])) as T;
  }
  return value;
}

/**
 * Snapshot buffers kept between asynchronous saves. A fresh 256 MiB allocation costs
 * its page faults on every save (about four times the copy itself); reusing the
 * buffers of a finished save leaves only the copy. Buffers are matched by type and
 * length, so a state of the same shapes reuses all of them.
 */
export class SnapshotPool {
  readonly #free = new Map<string, TypedArray[]>();
  readonly #shared: boolean;

  /**
   * `shared`: copies live in `SharedArrayBuffer`s. A save point handed to the save worker
   * is then sent by reference (postMessage shares such memory): the state is copied once,
   * here. A structured clone of ordinary buffers copies it twice (serialised, then
   * rebuilt in the worker), which measured 2.2x to 2.6x the state in extra memory at the
   * hand-over; transferring ordinary buffers detaches them from this thread, and slowed
   * a TensorFlow.js `fit` by 15% in the fit bench.
   */
  constructor(options: { shared?: boolean } = {}) {
    this.#shared = options.shared ?? false;
  }

  /** A copy of `data`, in a free buffer of the same type and length when there is one. */
  copy(data: TypedArray): TypedArray {
    const reused = this.#free.get(SnapshotPool.#key(data))?.pop();
    if (reused) {
      (reused as Float32Array).set(data as Float32Array);
      return reused;
    }
    if (!this.#shared) return data.slice();
    const Kind = data.constructor as new (buffer: SharedArrayBuffer) => TypedArray;
    const copy = new Kind(new SharedArrayBuffer(data.byteLength));
    (copy as Float32Array).set(data as Float32Array);
    return copy;
  }

  /** Whether copies live in shared memory. */
  get shared(): boolean {
    return this.#shared;
  }

  /** Gives back the buffers of a save that no longer reads them. */
  release(buffers: readonly TypedArray[]): void {
    for (const buffer of buffers) {
      const key = SnapshotPool.#key(buffer);
      const list = this.#free.get(key);
      if (list) list.push(buffer);
      else this.#free.set(key, [buffer]);
    }
  }

  clear(): void {
    this.#free.clear();
  }

  static #key(data: TypedArray): string {
    return `${data.constructor.name}:${data.length}`;
  }
}
