// The one module that owns every name a run writes: regular checkpoints (from
// `filenameTmpl`), bests, published copies, the pointer, the lease, manifests and
// temp files. It builds them and parses them back, and it decides what a path read
// back from a store (the pointer, runtime info) may mean: only names this run's
// layout produces, inside this run's folders, are loaded or deleted. Everything
// else is a stranger's path.
import { isAbsolute, resolve } from 'node:path';
import type { DType } from '../format/tensor.js';
import type { StorageBackend } from '../store/contract.js';
import { ConfigError, ForeignPathError, InvalidPathError } from '../store/errors.js';
import { checkUriTypo, uriScheme } from '../store/registry.js';
import { isTempName } from '../store/temp-names.js';

/** The pointer file in the work dir. It names the newest checkpoint relative to the work dir. */
export const POINTER_NAME = 'last_checkpoint';
/** (ours) In a checkpoint folder that is not the work dir: which run it belongs to (marker.ts). */
export const RUN_MARKER_NAME = 'savepoint-run.json';
/** The regular checkpoint name when `filenameTmpl` is not given: epoch mode, and iteration mode. */
export const DEFAULT_FILENAME_TEMPLATE = 'epoch_{}.safetensors';
export const DEFAULT_ITER_FILENAME_TEMPLATE = 'iter_{}.safetensors';
/** The one-writer-per-run lease in the work dir. */
export const LEASE_NAME = 'savepoint.lease';
/**
 * (ours) The folder of an incremental run's content-addressed tensor objects, in the
 * checkpoint folder: `savepoint-objects/<dtype>-<sha256 of the data>.safetensors`.
 */
export const OBJECTS_DIR_NAME = 'savepoint-objects';
const OBJECT_NAME = /^(F64|F32|F16|BF16|I64|I32|I16|I8|U64|U32|U16|U8|BOOL)-([0-9a-f]{64})\.safetensors$/;

/** The object holding a chunk of `dtype` whose data has SHA-256 `sha256`. */
export function objectName(dtype: DType, sha256: string): string {
  return `${dtype}-${sha256}.safetensors`;
}

/** What an object's name says (dtype and data hash), or undefined for a name no incremental save writes. */
export function parseObjectName(name: string): { dtype: DType; sha256: string } | undefined {
  const match = OBJECT_NAME.exec(name);
  return match ? { dtype: match[1] as DType, sha256: match[2] as string } : undefined;
}

/**
 * Where the objects of the incremental checkpoint at `checkpointPath` are: in the
 * objects folder next to it (its run's folder), for readers given a path, not a run.
 */
export function objectPathNear(store: StorageBackend, checkpointPath: string): (dtype: DType, sha256: string) => string {
  const trimmed = checkpointPath.replace(/[\\/]+$/, '');
  const parent = trimmed.slice(0, Math.max(trimmed.lastIndexOf('/'), trimmed.lastIndexOf('\\')));
  return (dtype, sha256) => store.joinPath(parent, OBJECTS_DIR_NAME, objectName(dtype, sha256));
}

/** Published copies end in `-<8 hex of the SHA-256 of their bytes>` before the extension. */
const PUBLISHED_SUFFIX = /-([0-9a-f]{8})(\.[A-Za-z0-9]+)?$/;

export type ParsedName =
  | { kind: 'regular'; step: number; name: string }
  | { kind: 'best'; step: number; metric: string; name: string }
  | { kind: 'published'; of: ParsedName & { kind: 'regular' | 'best' }; name: string }
  | { kind: 'pointer' | 'lease' | 'marker' | 'temp' | 'objects'; name: string };

/** `<tmpl with {} replaced by step>`. */
function fillTemplate(tmpl: string, step: number): string {
  return tmpl.replace('{}', String(step));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Checks a `filenameTmpl`: exactly one `{}`, a single file name (no separators, so every
 * store agrees on where it lands and a one-level listing finds it), none of the names
 * the run keeps for itself.
 */
export function checkFilenameTemplate(tmpl: unknown): string {
  const accepted = 'a file name with exactly one "{}" for the step and no "/" or "\\", e.g. "epoch_{}.safetensors"';
  if (typeof tmpl !== 'string' || tmpl.split('{}').length !== 2) {
    throw new ConfigError(`option "filenameTmpl" got ${JSON.stringify(tmpl)}; accepted: ${accepted}`, {
      option: 'filenameTmpl',
    });
  }
  if (/[\\/\0]/.test(tmpl) || tmpl.startsWith('.') || tmpl.startsWith('best_') || tmpl.includes('..')) {
    throw new ConfigError(
      `option "filenameTmpl" got ${JSON.stringify(tmpl)}; accepted: ${accepted}, not starting with "." or "best_" (names the run keeps for itself)`,
      { option: 'filenameTmpl' },
    );
  }
  return tmpl;
}

/** A plain relative local path becomes absolute (against the process's working directory); URIs are kept. */
export function absoluteWorkDir(path: string): string {
  if (uriScheme(path) !== undefined || isAbsolute(path)) return path;
  checkUriTypo(path);
  return resolve(path);
}

export interface RunLayoutOptions {
  /** Where the pointer and lease live. */
  workDir: string;
  /** Where checkpoints live (the work dir, or `join(outDir, basename(workDir))`). */
  outDir: string;
  /** Store of `outDir`. */
  store: StorageBackend;
  /** Store of `workDir` (the same object when both are on one store). */
  workDirStore: StorageBackend;
  filenameTmpl: string;
  /** Metrics tracked by `saveBest`; used to map `best_coco_bbox_mAP_...` back to `coco/bbox_mAP`. */
  metrics?: readonly string[] | undefined;
}

/** Every name and path of one run. */
export class RunLayout {
  readonly workDir: string;
  readonly outDir: string;
  readonly store: StorageBackend;
  readonly workDirStore: StorageBackend;
  readonly filenameTmpl: string;
  readonly #metrics: readonly string[];
  readonly #regular: RegExp;
  readonly #best: RegExp;

  constructor(options: RunLayoutOptions) {
    this.workDir = options.workDir;
    this.outDir = options.outDir;
    this.store = options.store;
    this.workDirStore = options.workDirStore;
    this.filenameTmpl = options.filenameTmpl;
    this.#metrics = options.metrics ?? [];
    const step = this.filenameTmpl.split('{}').map(escapeRegExp).join('(\\d+)');
    this.#regular = new RegExp(`^${step}$`);
    this.#best = new RegExp(`^best_(.+)_${step}$`);
  }

  /** A layout with the same folders and a different metric list (after `saveBest: 'auto'` picks one). */
  withMetrics(metrics: readonly string[]): RunLayout {
    return new RunLayout({ ...this, metrics });
  }

  regularName(step: number): string {
    return fillTemplate(this.filenameTmpl, step);
  }

  /** `best_<metric>_<regular name>`, every `/` made `_` (as the reference does). */
  bestName(metric: string, step: number): string {
    return `best_${metric}_${this.regularName(step)}`.replaceAll('/', '_');
  }

  pathOf(name: string): string {
    return this.store.joinPath(this.outDir, name);
  }

  /** (ours) The folder of this run's tensor objects (incremental checkpoints). */
  get objectsDir(): string {
    return this.store.joinPath(this.outDir, OBJECTS_DIR_NAME);
  }

  /** (ours) The path of one tensor object of this run. */
  objectPath(dtype: DType, sha256: string): string {
    return this.store.joinPath(this.outDir, OBJECTS_DIR_NAME, objectName(dtype, sha256));
  }

  get pointerPath(): string {
    return this.workDirStore.joinPath(this.workDir, POINTER_NAME);
  }

  get leasePath(): string {
    return this.workDirStore.joinPath(this.workDir, LEASE_NAME);
  }

  /** What a name in the checkpoint folder is, or undefined for a name this run never writes. */
  parse(name: string): ParsedName | undefined {
    if (name === POINTER_NAME) return { kind: 'pointer', name };
    if (name === LEASE_NAME) return { kind: 'lease', name };
    if (name === RUN_MARKER_NAME) return { kind: 'marker', name };
    if (name === OBJECTS_DIR_NAME) return { kind: 'objects', name };
    if (isTempName(name)) return { kind: 'temp', name };
    const own = this.#parseCheckpoint(name);
    if (own) return own;
    const published = PUBLISHED_SUFFIX.exec(name);
    if (published) {
      const ext = published[2] ?? '';
      const original = this.#parseCheckpoint(`${name.slice(0, published.index)}${ext}`);
      if (original) return { kind: 'published', of: original, name };
    }
    return undefined;
  }

  #parseCheckpoint(name: string): (ParsedName & { kind: 'regular' | 'best' }) | undefined {
    const regular = this.#regular.exec(name);
    if (regular) return { kind: 'regular', step: Number(regular[1]), name };
    const best = this.#best.exec(name);
    if (best) {
      const encoded = best[1] as string;
      const metric = this.#metrics.find((m) => m.replaceAll('/', '_') === encoded) ?? encoded;
      return { kind: 'best', step: Number(best[2]), metric, name };
    }
    return undefined;
  }

  /**
   * The name inside `outDir` that a stored value refers to, or undefined when it points
   * elsewhere. Accepts a bare name (what this version writes) and a full path equal to
   * `join(outDir, name)` (what earlier versions wrote).
   */
  ownedName(value: unknown): string | undefined {
    if (typeof value !== 'string' || value.length === 0 || value.includes('\0')) return undefined;
    if (!/[\\/]/.test(value) && uriScheme(value) === undefined) {
      return value === '.' || value === '..' ? undefined : value;
    }
    const slash = Math.max(value.lastIndexOf('/'), value.lastIndexOf('\\'));
    const name = value.slice(slash + 1);
    if (name.length === 0 || name === '.' || name === '..') return undefined;
    try {
      return this.store.joinPath(this.outDir, name) === value ? name : undefined;
    } catch {
      return undefined;
    }
  }

  /** Like `ownedName`, and the name must also parse as one of this run's checkpoints (what may be deleted). */
  ownedCheckpointName(value: unknown): string | undefined {
    const name = this.ownedName(value);
    const parsed = name === undefined ? undefined : this.parse(name);
    return parsed && (parsed.kind === 'regular' || parsed.kind === 'best') ? name : undefined;
  }

  /** What the pointer holds for a checkpoint: its name when it lives in the work dir, else its full path. */
  pointerText(name: string): string {
    const full = this.pathOf(name);
    return this.store.name === this.workDirStore.name && this.workDirStore.joinPath(this.workDir, name) === full ? name : full;
  }

  /**
   * The checkpoint the pointer's text names, resolved against the work dir, if this
   * run owns it: a direct child of `outDir`. Anything else is refused with a message
   * saying how to load a foreign checkpoint on purpose.
   */
  resolvePointer(text: string): { name: string; path: string } {
    const name = this.ownedName(text);
    const kind = name === undefined ? undefined : this.parse(name)?.kind;
    const inRun = name !== undefined && (this.pointerText(name) === text || this.pathOf(name) === text);
    if (
      name === undefined ||
      !inRun ||
      kind === 'pointer' ||
      kind === 'lease' ||
      kind === 'marker' ||
      kind === 'temp' ||
      kind === 'objects'
    ) {
      throw new ForeignPathError(
        text,
        `last_checkpoint in ${this.workDir} names ${JSON.stringify(text)}, which is not a checkpoint of this run (it must be a file or folder directly in ${this.outDir}). ` +
          'Resume refuses it because its runtime info would decide what gets deleted here. To start from that checkpoint on purpose, pass it as loadFrom: it loads the weights and deletes nothing.',
      );
    }
    return { name, path: this.pathOf(name) };
  }
}

/** The pointer's text as a path: a bare name is relative to the work dir, anything else is kept as written. */
export function resolvePointerText(store: StorageBackend, workDir: string, text: string): string {
  if (!/[\\/]/.test(text) && uriScheme(text) === undefined) {
    if (text === '.' || text === '..') throw new InvalidPathError(text, 'the pointer names no checkpoint');
    return store.joinPath(workDir, text);
  }
  return text;
}

/**
 * The layouts a folder's names are recognised with: the run's own, and, with the default
 * epoch template, the iteration one too (a tool given a folder does not know the run's mode).
 */
export function recognisedLayouts(layout: RunLayout): RunLayout[] {
  if (layout.filenameTmpl !== DEFAULT_FILENAME_TEMPLATE) return [layout];
  return [layout, new RunLayout({ ...layout, metrics: [], filenameTmpl: DEFAULT_ITER_FILENAME_TEMPLATE })];
}
