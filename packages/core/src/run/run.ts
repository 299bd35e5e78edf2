// The one owner of a run folder. A `Run` opens the run's stores once (from the
// registry, or the store it is given) and closes only what it opened; it is the only
// code that reads or moves the pointer, and every save, load, removal, publication,
// scan, copy and verification of a run goes through it, with the ownership
// rules of the layout (layout.ts): only names this run writes, inside its folders,
// are ever loaded for resume or deleted. The engine, the training loops and every
// CLI command use it; none of them touches the run's stores on its own.

import { checkpointSeal } from '../format/seal.js';
import { MANIFEST_NAME } from '../format/sharded.js';
import type { Checkpoint } from '../format/tensor.js';
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { ConfigError } from '../store/errors.js';
import { type BackendArgs, getBackend, storeArgsFor, uriScheme } from '../store/registry.js';
import {
  type CheckpointShape,
  checkpointShape,
  loadCheckpoint,
  publishCheckpoint,
  type RemoveResult,
  removeCheckpoint,
  saveCheckpointDir,
  writeCheckpointFile,
} from './checkpoint-files.js';
import { type CopyProgress, copyRun } from './copy.js';
import { FencedPointer, type FenceHolder, type FenceState } from './fenced-pointer.js';
import type { RunFolder, RunScan } from './folder.js';
import { type CheckpointHeader, inspectCheckpoint } from './inspect.js';
import {
  absoluteWorkDir,
  DEFAULT_FILENAME_TEMPLATE,
  POINTER_NAME,
  RunLayout,
  recognisedLayouts,
  resolvePointerText,
} from './layout.js';
import { type AcquireLeaseOptions, RunLease } from './lease.js';
import { RUN_MARKER_NAME, type RunMarker, readRunMarker, writeRunMarker } from './marker.js';
import { type ObjectUsage, TensorObjects } from './objects.js';
import { readLastCheckpoint, readPointer, readPointerText, writeLastCheckpoint } from './pointer.js';
import { scanRun } from './scan.js';
import { type VerifyReport, verifyPath } from './verify.js';

/** Seals a run remembers of its own saves (a save point names at most a few: the new checkpoint and a best). */
const MAX_SEALS_KEPT = 16;

export interface RunOptions extends SignalOptions {
  /** An already-built store for the checkpoint folder (skips the registry). Not together with `backendArgs`. */
  backend?: StorageBackend | undefined;
  /** An already-built store for the work dir (the pointer and the lease), when it is not `backend`. */
  workDirBackend?: StorageBackend | undefined;
  /** Chooses and configures the stores the registry builds (see `storeArgsFor`). */
  backendArgs?: BackendArgs | undefined;
  /** Where checkpoints go; defaults to the work dir. If different, `join(outDir, basename(workDir))`. */
  outDir?: string | undefined;
  /** Regular checkpoint names; `{}` is the step. Default `epoch_{}.safetensors`. */
  filenameTmpl?: string | undefined;
  /** Metrics tracked by `saveBest`, to map best names back to metrics. */
  metrics?: readonly string[] | undefined;
}

/** How a checkpoint is written: one file, or a folder of shards with its manifest written last. */
export type CheckpointLayout =
  | { kind: 'file' }
  | { kind: 'directory'; maxShardBytes: number; concurrency?: number }
  /** (ours) A manifest naming content-addressed tensor objects of the run (objects.ts); `chunkBytes` splits large tensors. */
  | { kind: 'incremental'; chunkBytes?: number | undefined };

export class Run implements RunFolder {
  readonly layout: RunLayout;
  readonly #signal: AbortSignal | undefined;
  /** Stores this run built itself: the only ones `close()` closes. */
  readonly #owned: StorageBackend[];
  #closed = false;
  /** Set while this run holds its lease: pointer moves are then compare-and-swaps (fenced-pointer.ts). */
  #fence: FencedPointer | undefined;
  /** Set while another thread (the save worker) moves the pointer for this run's lease: this one must not. */
  #fenceAway = false;
  /** (ours) The run's tensor objects (incremental checkpoints), and the index of what is stored. */
  readonly #objects: TensorObjects;
  /** The registry arguments the work dir's store was built with, when this run built it (the lease's renewer needs them). */
  readonly #workDirArgs: BackendArgs | undefined;

  private constructor(
    layout: RunLayout,
    owned: StorageBackend[],
    signal: AbortSignal | undefined,
    workDirArgs?: BackendArgs | undefined,
  ) {
    this.layout = layout;
    this.#owned = owned;
    this.#signal = signal;
    this.#workDirArgs = workDirArgs;
    this.#objects = new TensorObjects(layout);
  }

  /** The run whose work dir is `workDirInput`. No I/O: stores are built, nothing is read. */
  static open(workDirInput: string, options: RunOptions = {}): Run {
    const workDir = absoluteWorkDir(workDirInput);
    const owned: StorageBackend[] = [];
    const built = new Map<StorageBackend, BackendArgs>();
    const build = (path: string) => {
      const args = storeArgsFor(path, options.backendArgs ?? {}, [workDir, options.outDir ?? workDir]);
      const store = getBackend(path, args);
      owned.push(store);
      built.set(store, args);
      return store;
    };
    let outDir = options.outDir ?? workDir;
    const store = options.backend ?? build(outDir);
    if (options.outDir !== undefined && options.outDir !== workDir) {
      const base = workDir.replace(/[\\/]+$/, '');
      outDir = store.joinPath(outDir, base.slice(Math.max(base.lastIndexOf('/'), base.lastIndexOf('\\')) + 1));
    }
    const sameStore = options.outDir === undefined || uriScheme(workDir) === uriScheme(options.outDir);
    const workDirStore = options.workDirBackend ?? (sameStore ? store : build(workDir));
    const layout = new RunLayout({
      workDir,
      outDir,
      store,
      workDirStore,
      filenameTmpl: options.filenameTmpl ?? DEFAULT_FILENAME_TEMPLATE,
      metrics: options.metrics,
    });
    return new Run(layout, owned, options.signal, built.get(workDirStore));
  }

  /**
   * The run a folder belongs to, for tools given a folder (the CLI): the folder itself
   * when it is a work dir, or, when it is the checkpoint folder (`outDir`) of a run whose
   * work dir is elsewhere, that run, found through the marker its trainer left there.
   * A marker that does not hold up (the work dir's pointer names another folder: the
   * folder was copied or moved) is refused, saying why, unless the folder has a pointer
   * of its own: then it is a work dir (a run trained in a copy that brought the marker
   * along), and its own pointer and lease are the ones that count. A folder that is both
   * (the marker holds up and it has its own pointer) is shared by two runs: refused.
   */
  static async locate(dirInput: string, options: Omit<RunOptions, 'outDir'> = {}): Promise<Run> {
    const here = Run.open(dirInput, options);
    const dir = here.outDir;
    const signal = { signal: options.signal };
    let marker: RunMarker | undefined;
    let ownPointer: string | undefined;
    try {
      marker = await readRunMarker(here.store, dir, signal);
      if (!marker) return here;
      ownPointer = await readPointerText(here.store, dir, signal);
    } catch (error) {
      await here.close();
      throw error;
    }
    const store = here.store;
    const workDirStore =
      uriScheme(marker.workDir) === uriScheme(dir)
        ? store
        : getBackend(marker.workDir, storeArgsFor(marker.workDir, options.backendArgs ?? {}, [dir, marker.workDir]));
    const layout = new RunLayout({
      workDir: marker.workDir,
      outDir: dir,
      store,
      workDirStore,
      filenameTmpl: options.filenameTmpl ?? marker.filenameTmpl ?? DEFAULT_FILENAME_TEMPLATE,
      metrics: options.metrics,
    });
    const run = new Run(layout, [...here.#owned, ...(workDirStore === store ? [] : [workDirStore])], options.signal);
    let text: string | undefined;
    try {
      text = await readPointerText(workDirStore, marker.workDir, { signal: options.signal });
    } catch (error) {
      await run.close();
      throw error;
    }
    let holds = false;
    if (text !== undefined) {
      try {
        layout.resolvePointer(text);
        holds = true;
      } catch {
        holds = false;
      }
    }
    if (ownPointer !== undefined) {
      if (!holds) {
        // A run of its own: only the stores `here` uses stay open.
        if (workDirStore !== store) await workDirStore.close?.();
        return here;
      }
      await run.close();
      throw new ConfigError(
        `${dir} is the checkpoint folder of the run in ${marker.workDir} (its last_checkpoint names ${JSON.stringify(text)}, in this folder), and it is also a work dir with a pointer of its own (${store.joinPath(dir, POINTER_NAME)}): two runs share it and would delete each other's checkpoints. Refused; give one of them another folder.`,
        { option: 'dir' },
      );
    }
    if (text === undefined || holds) return run;
    await run.close();
    throw new ConfigError(
      `${dir} says it holds the checkpoints of the run in ${marker.workDir}, but that run's last_checkpoint names ${JSON.stringify(text)}, outside this folder: the folder was copied or moved. Refused: the lease and the pointer that protect this folder's checkpoints are not known. Delete ${store.joinPath(dir, RUN_MARKER_NAME)} to treat the folder as a run of its own.`,
      { option: 'dir' },
    );
  }

  get workDir(): string {
    return this.layout.workDir;
  }
  get outDir(): string {
    return this.layout.outDir;
  }
  get store(): StorageBackend {
    return this.layout.store;
  }
  get workDirStore(): StorageBackend {
    return this.layout.workDirStore;
  }

  /** A run with the same folders and stores whose layout knows `metrics` (after `saveBest: 'auto'` picks one). */
  withMetrics(metrics: readonly string[]): Run {
    return new Run(this.layout.withMetrics(metrics), this.#owned, this.#signal);
  }

  /** The call's signal and the run's own: either one aborts the call. */
  #options(options?: SignalOptions): SignalOptions {
    const own = this.#signal;
    const call = options?.signal;
    return { signal: call && own && call !== own ? AbortSignal.any([call, own]) : (call ?? own) };
  }

  // The pointer

  /** The path the pointer names (a bare name resolved against the work dir), whoever owns it; undefined before the first save. */
  async latest(options?: SignalOptions): Promise<string | undefined> {
    return readLastCheckpoint(this.workDirStore, this.workDir, this.#options(options));
  }

  /**
   * The checkpoint to resume from: what the pointer names, if it is a checkpoint of this
   * run. Anything else is refused with `ForeignPathError`, saying how to load it on purpose.
   */
  async resumeTarget(
    options?: SignalOptions,
  ): Promise<
    { name: string; path: string; runtimeInfo?: Record<string, unknown> | undefined; seal?: string | undefined } | undefined
  > {
    const pointer = await readPointer(this.workDirStore, this.workDir, this.#options(options));
    if (pointer?.text === undefined) return undefined;
    return { ...this.layout.resolvePointer(pointer.text), runtimeInfo: pointer.runtimeInfo, seal: pointer.seal };
  }

  /** (ours) The path the pointer names and the seal it records for it (undefined: an older pointer, unsealed). */
  async latestSealed(options?: SignalOptions): Promise<{ path: string; seal: string | undefined } | undefined> {
    const pointer = await readPointer(this.workDirStore, this.workDir, this.#options(options));
    if (pointer?.text === undefined) return undefined;
    return { path: resolvePointerText(this.workDirStore, this.workDir, pointer.text), seal: pointer.seal };
  }

  /**
   * Moves the pointer to `name` (a checkpoint of this run, complete before this is called).
   * Under the lease the move is fenced: it fails with `LeaseHeldError`, and the lease is
   * marked lost, when another job has taken the run over since this one last wrote it.
   */
  async movePointer(
    name: string,
    options?: SignalOptions & { runtimeInfo?: Record<string, unknown> | undefined },
  ): Promise<void> {
    this.#checkFenceHere();
    const text = this.layout.pointerText(name);
    const runtimeInfo = options?.runtimeInfo;
    // The seal of what this run wrote is known; of anything else, read from its header or manifest.
    const seal = this.#seals.get(name) ?? (await checkpointSeal(this.store, this.layout.pathOf(name), this.#options(options)));
    if (this.#fence) await this.#fence.move(text, { ...this.#options(options), runtimeInfo, seal });
    else await writeLastCheckpoint(this.workDirStore, this.workDir, text, { ...this.#options(options), runtimeInfo, seal });
  }

  /**
   * (ours) Writes the checkpoint `to` as a copy of `from`, on the store's side (no bytes
   * through this process): a best at the step of a regular checkpoint. `to` is complete
   * before this returns, as after `save`.
   */
  async copyCheckpoint(from: string, to: string, options?: SignalOptions): Promise<void> {
    const source = this.layout.pathOf(from);
    const signal = this.#options(options);
    if (await this.store.isFile(source, signal)) {
      await this.store.copy(source, this.layout.pathOf(to), signal);
    } else {
      // (ours) An incremental checkpoint is its manifest: the copy names the same objects.
      const manifest = this.store.joinPath(source, MANIFEST_NAME);
      await this.store.copy(manifest, this.store.joinPath(this.layout.pathOf(to), MANIFEST_NAME), signal);
    }
    // The copy is byte for byte: its seal is the source's.
    const seal = this.#seals.get(from);
    if (seal !== undefined) this.#remember(to, seal);
  }

  /** (ours) The run's tensor objects against what its checkpoints name: missing, unreferenced, shared and exclusive bytes. */
  async objectUsage(options?: SignalOptions): Promise<ObjectUsage> {
    return this.#objects.usage(this.#options(options));
  }

  /**
   * (ours) Deletes the tensor objects no checkpoint in the run's folder names any more
   * (incremental checkpoints). Call it after the pointer has moved and the dropped
   * checkpoints are deleted, under the lease: the fence is checked before anything is
   * deleted, so a job that was taken over deletes nothing.
   */
  async collectGarbage(options?: SignalOptions) {
    this.#checkFenceHere();
    return this.#objects.collect(async () => {
      await this.#fence?.confirm(this.#options(options));
    }, this.#options(options));
  }

  /** Deletes the pointer: the run starts over (its checkpoints stay until removed). Fenced like `movePointer`. */
  async clearPointer(options?: SignalOptions): Promise<void> {
    this.#checkFenceHere();
    if (this.#fence) await this.#fence.clear(this.#options(options));
    else await this.workDirStore.remove(this.layout.pointerPath, this.#options(options));
  }

  #checkFenceHere(): void {
    if (this.#fenceAway) throw new ConfigError('the pointer of this run is moved by its save worker now; move it there', {});
  }

  /**
   * Hands the fenced pointer to another thread (the save worker): from now on only that
   * thread moves the pointer, until `takeBackFence` with the state it ends with.
   * Undefined when this run holds no lease (nothing to fence).
   */
  handOverFence(): FenceState | undefined {
    if (!this.#fence) return undefined;
    const state = this.#fence.state;
    this.#fenceAway = true;
    return state;
  }

  /** Takes the fence back from the thread it was handed to, as that thread left it. */
  takeBackFence(holder: FenceHolder, state: FenceState | undefined): void {
    this.#fenceAway = false;
    if (state) this.#fence = FencedPointer.resume(this.workDirStore, this.workDir, holder, state);
  }

  /** In the thread a fence was handed to: moves of this run are fenced for `holder` from `state` on. */
  adoptFence(holder: FenceHolder, state: FenceState): void {
    this.#fence = FencedPointer.resume(this.workDirStore, this.workDir, holder, state);
  }

  /** The fence's state now (the save worker hands it back when it stops). */
  get fenceState(): FenceState | undefined {
    return this.#fence?.state;
  }

  // The lease

  /**
   * Takes the run's one-writer lease, or throws `LeaseHeldError` naming the live holder.
   * Its generation is above the one the pointer records, and the pointer is rewritten
   * with it: from then on only this holder can move the pointer (`movePointer`).
   */
  async acquireLease(options: Omit<AcquireLeaseOptions, 'signal'>): Promise<RunLease> {
    const signal = this.#options();
    const recorded = (await readPointer(this.workDirStore, this.workDir, signal))?.generation ?? 0;
    const lease = await RunLease.acquire(this.workDirStore, this.layout.leasePath, {
      ...options,
      minGeneration: Math.max(options.minGeneration ?? 1, recorded + 1),
      signal: this.#signal,
      backendArgs: this.#workDirArgs,
    });
    try {
      this.#fence = await FencedPointer.take(this.workDirStore, this.workDir, lease, signal);
    } catch (error) {
      await lease.release().catch(() => {});
      throw error;
    }
    return lease;
  }

  /**
   * Records, in a checkpoint folder that is not the work dir, which run it belongs to,
   * so that tools given the folder find the run's lease and pointer. Refuses a folder
   * that another run's marker claims (two runs would delete each other's checkpoints),
   * unless this run's pointer already names a checkpoint in it (the same run, moved).
   */
  async claimOutDir(options?: SignalOptions): Promise<void> {
    if (this.outDir === this.workDir) return;
    const signal = this.#options(options);
    const marker = await readRunMarker(this.store, this.outDir, signal);
    if (marker && marker.workDir !== this.workDir) {
      const text = await readPointerText(this.workDirStore, this.workDir, signal);
      let ours = false;
      try {
        ours = text !== undefined && this.layout.resolvePointer(text) !== undefined;
      } catch {
        ours = false;
      }
      if (!ours) {
        throw new ConfigError(
          `${this.outDir} holds the checkpoints of another run (work dir ${marker.workDir}); this run (work dir ${this.workDir}) would share the folder, and the two would delete each other's checkpoints. Give this run another outDir or work dir name, or delete ${this.store.joinPath(this.outDir, RUN_MARKER_NAME)} if that run is gone.`,
          { option: 'outDir' },
        );
      }
    }
    if (!marker || marker.workDir !== this.workDir || marker.filenameTmpl !== this.layout.filenameTmpl) {
      await writeRunMarker(this.store, this.outDir, { workDir: this.workDir, filenameTmpl: this.layout.filenameTmpl }, signal);
    }
  }

  // Checkpoints

  /** Writes the checkpoint `name` (nothing names it yet: the pointer moves after). */
  async save(name: string, checkpoint: Checkpoint, layout: CheckpointLayout, options?: SignalOptions): Promise<void> {
    const path = this.layout.pathOf(name);
    const signal = this.#options(options).signal;
    if (layout.kind === 'incremental') {
      await this.#objects.save(path, checkpoint, { chunkBytes: layout.chunkBytes, signal });
    } else if (layout.kind === 'directory') {
      const { seal } = await saveCheckpointDir(this.store, path, checkpoint, {
        maxShardBytes: layout.maxShardBytes,
        concurrency: layout.concurrency,
        signal,
      });
      this.#remember(name, seal);
    } else {
      this.#remember(name, (await writeCheckpointFile(this.store, path, checkpoint, { signal })).seal);
    }
  }

  /** Seals of the checkpoints this run wrote, for the pointer (a few: the oldest are dropped). */
  readonly #seals = new Map<string, string>();
  #remember(name: string, seal: string): void {
    this.#seals.delete(name);
    this.#seals.set(name, seal);
    for (const oldest of this.#seals.keys()) {
      if (this.#seals.size <= MAX_SEALS_KEPT) break;
      this.#seals.delete(oldest);
    }
  }

  /** Loads a checkpoint of this run by name, or any checkpoint by its full path on the run's checkpoint store. */
  async load(nameOrPath: string, options: Parameters<typeof loadCheckpoint>[2] = {}): Promise<Checkpoint> {
    return loadCheckpoint(this.store, this.#pathFor(nameOrPath), { ...options, signal: options.signal ?? this.#signal });
  }

  async shape(nameOrPath: string, options?: SignalOptions): Promise<CheckpointShape> {
    return checkpointShape(this.store, this.#pathFor(nameOrPath), this.#options(options));
  }

  #pathFor(nameOrPath: string): string {
    return /[\\/]/.test(nameOrPath) || uriScheme(nameOrPath) !== undefined ? nameOrPath : this.layout.pathOf(nameOrPath);
  }

  /**
   * Deletes the checkpoint `name` of this run. Only names the layout parses as this
   * run's checkpoints are deleted, and a folder only when it is a checkpoint (or what an
   * interrupted save of one left): a folder named like one that holds other files is kept.
   */
  async remove(name: string, options?: SignalOptions): Promise<RemoveResult> {
    const owned = this.layout.ownedName(name) === name;
    const kind = owned
      ? recognisedLayouts(this.layout)
          .map((layout) => layout.parse(name)?.kind)
          .find(Boolean)
      : undefined;
    if (kind !== 'regular' && kind !== 'best' && kind !== 'published') {
      throw new ConfigError(`refusing to delete ${JSON.stringify(name)}: it is not a checkpoint name of this run`, {
        option: 'name',
      });
    }
    return removeCheckpoint(this.store, this.layout.pathOf(name), this.#options(options));
  }

  /** Writes the slim copy of a checkpoint keeping only `keys`, named by the hash of its bytes. */
  async publish(nameOrPath: string, keys: readonly string[], options?: SignalOptions) {
    return publishCheckpoint(this.store, this.#pathFor(nameOrPath), keys, this.#options(options));
  }

  /** Deletes what killed writes left in the checkpoint folder (call it under the lease). Returns how many. */
  async removeIncompleteWrites(options?: SignalOptions): Promise<number> {
    return (await this.store.removeIncompleteWrites?.(this.outDir, this.#options(options))) ?? 0;
  }

  /** Every checkpoint of this run in its folder, and what the pointer names. */
  async scan(options?: SignalOptions): Promise<RunScan> {
    return scanRun(this, this.#options(options));
  }

  /** Plans (and with `yes`, does, under the lease) the deletion of all but the newest `keep` regular checkpoints. */

  /** A checkpoint's tensors and metadata, from its header alone (range reads). */
  async inspect(path: string): Promise<CheckpointHeader> {
    return inspectCheckpoint(this, path);
  }

  /** Opens and checks every checkpoint of the run (or the one at `path`), and the pointer. */
  async verify(path?: string): Promise<VerifyReport> {
    return verifyPath(this, path ?? this.outDir);
  }

  /** Copies this run (or the one checkpoint file this run was opened at) to `target`'s folder, streaming; the pointer last. */
  async copyTo(target: Run, progress?: CopyProgress) {
    return copyRun(this, this.outDir, { store: target.store, path: target.outDir }, progress, this.#options());
  }

  /** Closes the stores this run built (never one it was given). Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const owned = this.#owned.splice(0);
    await Promise.all([...new Set(owned)].map((store) => store.close?.()));
  }
}

export type { RunMarker };
