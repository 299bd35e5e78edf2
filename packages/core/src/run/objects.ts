// (ours) The content-addressed tensor objects of an incremental run, and their garbage
// collection. A save writes the objects its manifest names that are not stored yet,
// then the manifest: a checkpoint is complete only once every object it names is. A
// deletion removes a checkpoint's manifest; the objects no kept checkpoint names any
// more are collected afterwards, under the lease, with the fence checked first.
import {
  type IncrementalManifest,
  objectFileBytes,
  planIncremental,
  readIncrementalManifest,
  type TensorObject,
} from '../format/incremental.js';
import { MANIFEST_NAME } from '../format/sharded.js';
import type { Checkpoint } from '../format/tensor.js';
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { CorruptCheckpointError, NotFoundError } from '../store/errors.js';
import { settledMap } from '../store/settled-map.js';
import { isTempName } from '../store/temp-names.js';
import { objectName, parseObjectName, type RunLayout, recognisedLayouts } from './layout.js';

/** Objects uploaded at once. */
export const OBJECT_CONCURRENCY = 8;

export interface IncrementalSaveResult {
  manifest: IncrementalManifest;
  /** Objects written by this save, and their bytes (the new content). */
  written: number;
  writtenBytes: number;
  /** Objects already stored, not written again. */
  reused: number;
}

export interface GarbageReport {
  /** Objects deleted, and their bytes. */
  removed: number;
  removedBytes: number;
  /** Objects kept (named by a kept checkpoint). */
  kept: number;
}

/** (ours) An incremental run's objects: what is stored, what its checkpoints name, and what each checkpoint shares. */
export interface ObjectUsage {
  /** Objects in the objects folder, and their bytes. */
  stored: number;
  storedBytes: number;
  /** Object name -> bytes and the checkpoints naming it. */
  referenced: ObjectReferences['objects'];
  /** Objects a checkpoint names that are not stored (or not at their size): that checkpoint does not load. */
  missing: { checkpoint: string; object: string }[];
  /** Stored objects no checkpoint names (what the next collection deletes). */
  unreferenced: string[];
  /** Per checkpoint: bytes of objects it shares with another checkpoint, and bytes only it names (what deleting it frees). */
  byCheckpoint: Map<string, { shared: number; exclusive: number; objects: number }>;
  unreadable: ObjectReferences['unreadable'];
}

/** What the checkpoints of a run name: each object once, with the checkpoints naming it. */
export interface ObjectReferences {
  /** Object name -> file bytes and the checkpoint names that reference it. */
  objects: Map<string, { bytes: number; by: string[] }>;
  /** Checkpoints whose manifest could not be read as one (corrupt): collection is unsafe while they are there. */
  unreadable: { name: string; error: string }[];
}

/**
 * The objects of one run. It keeps an index of the objects the store holds (name and
 * size), built from a listing of the objects folder and kept up to date by this
 * writer's own writes and deletions: a save then needs no request per tensor to learn
 * what is stored. A stored object counts only at the size its name implies (a truncated
 * or foreign file of that name is written again); its bytes are checked against its
 * hash whenever it is read.
 */
export class TensorObjects {
  readonly #layout: RunLayout;
  #index: Map<string, number> | undefined;

  constructor(layout: RunLayout) {
    this.#layout = layout;
  }

  get #store(): StorageBackend {
    return this.#layout.store;
  }

  /** Lists the objects folder: every object name with its size. */
  async #list(options: SignalOptions): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    if (!(await this.#store.isDir(this.#layout.objectsDir, options))) return found;
    for await (const entry of this.#store.list(this.#layout.objectsDir, options)) {
      if (entry.type === 'file' && parseObjectName(entry.name)) found.set(entry.name, entry.size ?? -1);
    }
    return found;
  }

  /** What the run's checkpoints name against what is stored (`ObjectUsage`). */
  async usage(options: SignalOptions = {}): Promise<ObjectUsage> {
    const stored = await this.#list(options);
    const refs = await referencedObjects(this.#layout, options);
    const missing: ObjectUsage['missing'] = [];
    const byCheckpoint = new Map<string, { shared: number; exclusive: number; objects: number }>();
    for (const [name, { bytes, by }] of refs.objects) {
      if (stored.get(name) !== bytes) for (const checkpoint of by) missing.push({ checkpoint, object: name });
      for (const checkpoint of by) {
        const entry = byCheckpoint.get(checkpoint) ?? { shared: 0, exclusive: 0, objects: 0 };
        entry.objects++;
        if (by.length === 1) entry.exclusive += bytes;
        else entry.shared += bytes;
        byCheckpoint.set(checkpoint, entry);
      }
    }
    const unreferenced = [...stored.keys()].filter((name) => !refs.objects.has(name));
    const storedBytes = [...stored.values()].reduce((a, b) => a + Math.max(b, 0), 0);
    return {
      stored: stored.size,
      storedBytes,
      referenced: refs.objects,
      missing,
      unreferenced,
      byCheckpoint,
      unreadable: refs.unreadable,
    };
  }

  /** Writes the checkpoint `path` (a folder: objects first, the manifest last). */
  async save(
    path: string,
    checkpoint: Checkpoint,
    options: SignalOptions & { chunkBytes?: number | undefined },
  ): Promise<IncrementalSaveResult> {
    const signal = { signal: options.signal };
    const { manifest, objects } = await planIncremental(checkpoint, options.chunkBytes);
    this.#index ??= await this.#list(signal);
    const index = this.#index;
    const missing: TensorObject[] = [];
    for (const object of objects) {
      const name = objectName(object.dtype, object.sha256);
      if (index.get(name) !== objectFileBytes(object.dtype, object.sha256, object.data.byteLength)) missing.push(object);
    }
    let writtenBytes = 0;
    await settledMap(
      missing,
      async (object) => {
        const name = objectName(object.dtype, object.sha256);
        const encoded = object.encode();
        await this.#store.put(this.#layout.objectPath(object.dtype, object.sha256), encoded.chunks(), signal);
        index.set(name, encoded.byteLength);
        writtenBytes += object.data.byteLength;
      },
      OBJECT_CONCURRENCY,
    );
    // The manifest last: it is what makes the checkpoint, and every object it names is stored by now.
    await this.#store.put(this.#store.joinPath(path, MANIFEST_NAME), JSON.stringify(manifest), signal);
    return { manifest, written: missing.length, writtenBytes, reused: objects.length - missing.length };
  }

  /**
   * Deletes every object that no checkpoint in the run's folder names. `beforeDelete`
   * runs first (the fence: it throws when the run was taken over). Skipped, and said
   * so, when a checkpoint's manifest cannot be read: the objects it may name are kept.
   */
  async collect(beforeDelete: () => Promise<void>, options: SignalOptions = {}): Promise<GarbageReport & { skipped?: string }> {
    const signal = { signal: options.signal };
    const stored = await this.#list(signal);
    this.#index = stored;
    if (stored.size === 0) return { removed: 0, removedBytes: 0, kept: 0 };
    const refs = await referencedObjects(this.#layout, signal);
    if (refs.unreadable.length > 0) {
      const first = refs.unreadable[0] as { name: string; error: string };
      return {
        removed: 0,
        removedBytes: 0,
        kept: stored.size,
        skipped: `${first.name} has a manifest that does not read (${first.error})`,
      };
    }
    const garbage = [...stored].filter(([name]) => !refs.objects.has(name));
    if (garbage.length === 0) return { removed: 0, removedBytes: 0, kept: stored.size };
    await beforeDelete();
    let removedBytes = 0;
    await settledMap(
      garbage,
      async ([name, size]) => {
        await this.#store.remove(this.#store.joinPath(this.#layout.objectsDir, name), signal);
        stored.delete(name);
        removedBytes += Math.max(size, 0);
      },
      OBJECT_CONCURRENCY,
    );
    return { removed: garbage.length, removedBytes, kept: stored.size };
  }
}

/**
 * Every object the checkpoints in a run's folder name (regular, best, published, of
 * any recognised name), read from their manifests. Objects names come from the
 * manifest's dtype and hash, checked there, so a manifest never makes this name a file
 * outside the objects folder.
 */
export async function referencedObjects(layout: RunLayout, options: SignalOptions = {}): Promise<ObjectReferences> {
  const store = layout.store;
  const layouts = recognisedLayouts(layout);
  const objects: ObjectReferences['objects'] = new Map();
  const unreadable: ObjectReferences['unreadable'] = [];
  for await (const entry of store.list(layout.outDir, options)) {
    if (entry.type !== 'dir' || isTempName(entry.name)) continue;
    const kind = layouts.map((l) => l.parse(entry.name)?.kind).find(Boolean);
    if (kind !== 'regular' && kind !== 'best' && kind !== 'published') continue;
    let manifest: IncrementalManifest | undefined;
    try {
      manifest = await readIncrementalManifest(store, entry.path, options);
    } catch (error) {
      if (error instanceof NotFoundError) continue;
      if (error instanceof CorruptCheckpointError) {
        unreadable.push({ name: entry.name, error: error.message });
        continue;
      }
      throw error;
    }
    for (const tensor of manifest?.tensors ?? []) {
      for (const chunk of tensor.chunks) {
        const name = objectName(tensor.dtype, chunk.sha256);
        const found = objects.get(name);
        if (found) {
          if (!found.by.includes(entry.name)) found.by.push(entry.name);
        } else objects.set(name, { bytes: objectFileBytes(tensor.dtype, chunk.sha256, chunk.bytes), by: [entry.name] });
      }
    }
  }
  return { objects, unreadable };
}
