// The `last_checkpoint` pointer: a small object in the work dir naming the run's
// newest committed checkpoint. Only `Run` reads or moves it (run.ts), so the rules
// about what it may name (layout.ts) and who may move it are kept in one place.
//
// Its first line is the checkpoint's name (what a person or a script reading the file
// sees first). A pointer written under a lease has a second line, `generation: N`: the
// fencing generation of the job that wrote it. A job that takes a run over rewrites
// the pointer with its own generation by compare-and-swap, so the version every older
// holder last saw is gone, and their moves (compare-and-swap on that version) fail.
// The generation is in the bytes, not only in the version: an S3 ETag is a hash of
// the bytes, and a rewrite of the same bytes would keep it.
//
// (ours) A `seal: <sha256>` line records the named checkpoint's seal (format/seal.ts: the
// SHA-256 of its header or manifest, which cover its metadata and every byte's hash), so
// that an edit of the checkpoint the pointer names is caught on resume and by `verify`.
// A pointer without it (an older savepoint's) is read as before, its checkpoint unsealed.
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { NotFoundError } from '../store/errors.js';
import { POINTER_NAME, resolvePointerText } from './layout.js';

/** The pointer is a name and a little bookkeeping, never large: a longer one is not read past this (a hostile multi-GB "pointer" stays out of memory). */
const MAX_POINTER_BYTES = 64 * 1024;
const GENERATION_LINE = /^generation:\s*(\d{1,15})$/;
const RUNTIME_INFO_LINE = /^runtime_info:\s*(\{.*\})$/;
const SEAL_LINE = /^seal:\s*([0-9a-f]{64})$/;

export interface PointerRecord {
  /** The checkpoint it names, exactly as stored; undefined for a pointer that names none yet (written by a take-over). */
  text: string | undefined;
  /** The fencing generation that wrote it; 0 for a pointer written without a lease (or by an older savepoint). */
  generation: number;
  /**
   * (ours) The run's bookkeeping (the engine's runtime-info keys: keep list, bests,
   * removals to finish) when it is newer than what the named checkpoint holds: a new
   * best recorded without saving the checkpoint again. Undefined: the checkpoint's own.
   */
  runtimeInfo?: Record<string, unknown> | undefined;
  /** (ours) The seal of the checkpoint it names (format/seal.ts); undefined for a pointer written without one. */
  seal?: string | undefined;
}

/** Parses the pointer's bytes. Lines other than these are ignored (a later format may add some); malformed bookkeeping is left out. */
export function parsePointer(raw: string): PointerRecord {
  let text: string | undefined;
  let generation = 0;
  let runtimeInfo: Record<string, unknown> | undefined;
  let seal: string | undefined;
  for (const line of raw.split(/\r?\n/).map((l) => l.trim())) {
    const match = GENERATION_LINE.exec(line);
    const info = RUNTIME_INFO_LINE.exec(line);
    const sealed = SEAL_LINE.exec(line);
    if (match) generation = Number(match[1]);
    else if (info) runtimeInfo = parseInfo(info[1] as string);
    else if (sealed) seal = sealed[1];
    else if (text === undefined && line.length > 0) text = line;
  }
  return { text, generation, ...(runtimeInfo ? { runtimeInfo } : {}), ...(seal ? { seal } : {}) };
}

function parseInfo(json: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(json) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function formatPointer(record: PointerRecord): string {
  const lines = [
    ...(record.text === undefined ? [] : [record.text]),
    ...(record.generation > 0 ? [`generation: ${record.generation}`] : []),
    ...(record.seal !== undefined && record.text !== undefined ? [`seal: ${record.seal}`] : []),
    ...(record.runtimeInfo ? [`runtime_info: ${JSON.stringify(record.runtimeInfo)}`] : []),
  ];
  const body = lines.join('\n');
  if (new TextEncoder().encode(body).byteLength > MAX_POINTER_BYTES) {
    throw new RangeError(`the pointer would be longer than ${MAX_POINTER_BYTES} bytes: its runtime info is too large`);
  }
  return body;
}

/** The pointer and the store's version of it, or undefined when there is none. The version is read first (see lease.ts). */
export async function readPointer(
  backend: StorageBackend,
  workDir: string,
  options: SignalOptions = {},
): Promise<(PointerRecord & { version: string }) | undefined> {
  const path = backend.joinPath(workDir, POINTER_NAME);
  try {
    const { version } = await backend.stat(path, options);
    const bytes = await backend.get(path, { ...options, range: { start: 0, end: MAX_POINTER_BYTES } });
    return { ...parsePointer(new TextDecoder().decode(bytes)), version };
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/** The name the pointer holds exactly as stored (trimmed), or undefined when there is no pointer or it names nothing yet. */
export async function readPointerText(
  backend: StorageBackend,
  workDir: string,
  options: SignalOptions = {},
): Promise<string | undefined> {
  try {
    const bytes = await backend.get(backend.joinPath(workDir, POINTER_NAME), {
      ...options,
      range: { start: 0, end: MAX_POINTER_BYTES },
    });
    return parsePointer(new TextDecoder().decode(bytes)).text;
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/**
 * The path the pointer in `workDir` names (a bare name is resolved against the work dir),
 * or undefined when there is no pointer. It does not say whether the run owns that path:
 * resume checks that with `RunLayout.resolvePointer`.
 */
export async function readLastCheckpoint(
  backend: StorageBackend,
  workDir: string,
  options: SignalOptions = {},
): Promise<string | undefined> {
  const text = await readPointerText(backend, workDir, options);
  return text === undefined ? undefined : resolvePointerText(backend, workDir, text);
}

/** Replaces the pointer atomically (a single put), unfenced: for tools outside a lease (a copy's pointer). */
export async function writeLastCheckpoint(
  backend: StorageBackend,
  workDir: string,
  text: string,
  options: SignalOptions & { runtimeInfo?: Record<string, unknown> | undefined; seal?: string | undefined } = {},
): Promise<void> {
  const { runtimeInfo, seal, ...signal } = options;
  await backend.put(backend.joinPath(workDir, POINTER_NAME), formatPointer({ text, generation: 0, runtimeInfo, seal }), signal);
}
