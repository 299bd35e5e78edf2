// The pointer as a lease holder moves it: every move is a compare-and-swap on the
// version this holder last wrote or read, so a holder that was taken over (paused past
// its lease, or cut off from the store) can never move the pointer back, whatever the
// length of the pause. Taking the lease rewrites the pointer with the new generation
// (pointer.ts says why the bytes must change), which is what makes the older holders'
// versions stale. The deletions that follow a move are safe for the same reason: they
// are the ones the checkpoint just committed already dropped, and a successor resumes
// from that checkpoint's state or from a later one.
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { LeaseHeldError, PreconditionFailedError, type SavepointError } from '../store/errors.js';
import { POINTER_NAME } from './layout.js';
import { formatPointer, readPointer } from './pointer.js';

/** What the fence needs of the lease it stands for (a `RunLease`, or its stand-in in the save worker). */
export interface FenceHolder {
  readonly path: string;
  readonly generation: number;
  readonly tookOver: boolean;
  readonly lost: SavepointError | undefined;
  markLost(error: SavepointError): void;
}

/** A fence handed to another thread: the version last written or read, and the generation writing. */
export interface FenceState {
  version: string | undefined;
  generation: number;
}

/** Rounds of read + compare-and-swap when taking the pointer while an old holder still writes it. */
const TAKE_ATTEMPTS = 6;

export class FencedPointer {
  readonly #store: StorageBackend;
  readonly #path: string;
  readonly #workDir: string;
  readonly #lease: FenceHolder;
  /** The version this holder last wrote or read; undefined while there is no pointer (the first move creates it). */
  #version: string | undefined;

  private constructor(store: StorageBackend, workDir: string, lease: FenceHolder, version: string | undefined) {
    this.#store = store;
    this.#workDir = workDir;
    this.#path = store.joinPath(workDir, POINTER_NAME);
    this.#lease = lease;
    this.#version = version;
  }

  get generation(): number {
    return this.#lease.generation;
  }

  /** What another thread needs to go on moving the pointer as this holder (`FencedPointer.resume`). */
  get state(): FenceState {
    return { version: this.#version, generation: this.generation };
  }

  /** The fence handed over from another thread (no I/O). */
  static resume(store: StorageBackend, workDir: string, holder: FenceHolder, state: FenceState): FencedPointer {
    return new FencedPointer(store, workDir, holder, state.version);
  }

  /**
   * Fences the pointer for `lease`: rewrites it with the lease's generation (by
   * compare-and-swap, so a move of the previous holder either lands first and is kept,
   * or fails). After a take-over a run with no pointer yet gets one that names nothing,
   * so that a previous holder's first move (a create) fails too.
   */
  static async take(
    store: StorageBackend,
    workDir: string,
    lease: FenceHolder,
    options: SignalOptions = {},
  ): Promise<FencedPointer> {
    const path = store.joinPath(workDir, POINTER_NAME);
    for (let attempt = 0; attempt < TAKE_ATTEMPTS; attempt++) {
      const now = await readPointer(store, workDir, options);
      if (now === undefined) {
        if (!lease.tookOver) return new FencedPointer(store, workDir, lease, undefined);
        if (await store.putIfAbsent(path, formatPointer({ text: undefined, generation: lease.generation }), options)) {
          return new FencedPointer(store, workDir, lease, (await store.stat(path, options)).version);
        }
        continue;
      }
      if (now.generation > lease.generation) throw lost(lease, path, now.generation);
      try {
        await store.put(
          path,
          formatPointer({ text: now.text, generation: lease.generation, runtimeInfo: now.runtimeInfo, seal: now.seal }),
          {
            ...options,
            ifMatch: now.version,
          },
        );
      } catch (error) {
        if (error instanceof PreconditionFailedError) continue; // the previous holder moved it just now: read again
        throw error;
      }
      return new FencedPointer(store, workDir, lease, (await store.stat(path, options)).version);
    }
    throw lost(lease, path, undefined);
  }

  /** Moves the pointer to `text` (with the run's bookkeeping, when given), only if it is still what this holder last wrote or read. */
  async move(
    text: string,
    options: SignalOptions & { runtimeInfo?: Record<string, unknown> | undefined; seal?: string | undefined } = {},
  ): Promise<void> {
    const { runtimeInfo, seal, ...signal } = options;
    await this.#write(formatPointer({ text, generation: this.generation, runtimeInfo, seal }), text, signal);
  }

  /**
   * (ours) Checks, before a deletion that is not a pointer move (garbage collection),
   * that the pointer is still what this holder last wrote or read: a job taken over
   * since then is told so (its lease marked lost) and deletes nothing.
   */
  async confirm(options: SignalOptions = {}): Promise<void> {
    if (this.#lease.lost) throw this.#lease.lost;
    const now = await readPointer(this.#store, this.#workDir, options);
    if (now?.version !== this.#version) throw lost(this.#lease, this.#path, now?.generation);
  }

  /** Deletes the pointer (the run starts over), only if it is still what this holder last wrote or read. */
  async clear(options: SignalOptions = {}): Promise<void> {
    if (this.#lease.lost) throw this.#lease.lost;
    if (this.#version === undefined) return;
    try {
      await this.#store.remove(this.#path, { ...options, ifMatch: this.#version });
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      throw lost(this.#lease, this.#path, (await readPointer(this.#store, this.#workDir, options))?.generation);
    }
    this.#version = undefined;
  }

  async #write(body: string, text: string | undefined, options: SignalOptions): Promise<void> {
    if (this.#lease.lost) throw this.#lease.lost;
    try {
      if (this.#version === undefined) {
        if (!(await this.#store.putIfAbsent(this.#path, body, options))) throw new PreconditionFailedError(this.#path, '(none)');
      } else {
        await this.#store.put(this.#path, body, { ...options, ifMatch: this.#version });
      }
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      const now = await readPointer(this.#store, this.#workDir, options);
      // Our own write, whose answer was lost and whose retry then saw it: it stands.
      if (now && now.text === text && now.generation === this.generation) {
        this.#version = now.version;
        return;
      }
      throw lost(this.#lease, this.#path, now?.generation);
    }
    this.#version = (await this.#store.stat(this.#path, options)).version;
  }
}

/** The holder was taken over: marks its lease lost (every later write refused) and says so. */
function lost(lease: FenceHolder, path: string, generation: number | undefined): LeaseHeldError {
  const by = generation === undefined ? 'another job' : `a job of generation ${generation}`;
  const error = new LeaseHeldError(
    `${path} was moved by ${by} since this job (generation ${lease.generation}) last wrote it: the run was taken over (this job was paused or cut off past its lease, ${lease.path}). This job stopped writing so that two jobs never write one run; the run continues from the other job's checkpoints.`,
  );
  lease.markLost(error);
  return error;
}
