// `verify`: checking every checkpoint of a run (or one checkpoint) in full, streaming its
// bytes (bounded memory, for a checkpoint of any size, on every store): a file against
// the SHA-256 of its data in its header, a folder's shards against the sizes and
// SHA-256s in its manifest, an incremental checkpoint's objects against the hashes that
// name them; and, for a run, that the pointer names a checkpoint that verifies and
// matches the seal the pointer records for it.
import { checkCheckpointBytes } from '../format/check-bytes.js';
import { checkIncrementalManifest, isIncrementalManifest, objectFileBytes } from '../format/incremental.js';
import { readManifestJson } from '../format/sharded.js';
import { CorruptCheckpointError, NotFoundError, SavepointError } from '../store/errors.js';
import { checkpointShape } from './checkpoint-files.js';
import type { RunFolder } from './folder.js';
import { objectPathNear } from './layout.js';

export interface VerifyResult {
  /** The checkpoint checked, or the pointer's own path. */
  path: string;
  /** For the pointer: the checkpoint it names. */
  target?: string;
  ok: boolean;
  error?: string;
  /** What could not be checked (a file another tool wrote, which records no data hash). */
  note?: string;
}

export interface VerifyReport {
  results: VerifyResult[];
  ok: boolean;
}

/** A failure as one line for the report: savepoint's own messages, and never a raw JavaScript error's stack or name. */
function describe(error: unknown): string {
  if (error instanceof SavepointError) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  return `could not be read (${message})`;
}

async function verifyOne(run: RunFolder, path: string, seal?: string): Promise<VerifyResult> {
  try {
    const { store } = run;
    const objectPath = objectPathNear(store, path);
    const { dataHashChecked } = await checkCheckpointBytes(store, path, { seal, objectPath });
    if ((await checkpointShape(store, path)) === 'directory') {
      const { path: manifestPath, json } = await readManifestJson(store, path);
      if (isIncrementalManifest(json)) {
        // (ours) Every object's bytes were checked against its hash; each must also be exactly the file savepoint wrote.
        for (const t of checkIncrementalManifest(json, manifestPath, store.name).tensors) {
          for (const c of t.chunks) {
            const object = objectPath(t.dtype, c.sha256);
            const size = (await store.stat(object)).size;
            if (size !== objectFileBytes(t.dtype, c.sha256, c.bytes)) {
              throw new CorruptCheckpointError(`${object}: ${size} bytes, not the object its name says`, { backend: store.name });
            }
          }
        }
      }
    }
    // A header savepoint wrote without its hash failed above: one without is another tool's.
    const note = dataHashChecked
      ? undefined
      : 'structure checked; its bytes could not be: it records no data SHA-256 (not written by savepoint)';
    return note ? { path, ok: true, note } : { path, ok: true };
  } catch (error) {
    return { path, ok: false, error: describe(error) };
  }
}

export async function verifyPath(run: RunFolder, path: string): Promise<VerifyReport> {
  const { store } = run;
  const shape = await checkpointShape(store, path);
  if (shape === 'file' || shape === 'directory') {
    const result = await verifyOne(run, path);
    return { results: [result], ok: result.ok };
  }
  if (!(await store.isDir(path))) {
    throw new NotFoundError(path, { backend: store.name, message: `nothing at ${path}; check the path` });
  }
  const results: VerifyResult[] = [];
  // A run folder: its pointer must name a checkpoint that exists, verifies and matches its seal.
  const pointer = await run.latestSealed();
  if (pointer !== undefined) {
    const pointerPath = run.layout.pointerPath;
    const checked = await verifyOne(run, pointer.path, pointer.seal);
    results.push(
      checked.ok
        ? { path: pointerPath, target: pointer.path, ok: true }
        : {
            path: pointerPath,
            target: pointer.path,
            ok: false,
            error: `the pointer names a checkpoint that does not load: ${checked.error}`,
          },
    );
  }
  // Every checkpoint in it (a folder checkpoint without its manifest fails below).
  const scanned = (await run.scan()).checkpoints.map((c) => c.path);
  for (const target of scanned.length > 0 ? scanned : [path]) results.push(await verifyOne(run, target));
  return { results, ok: results.length > 0 && results.every((r) => r.ok) };
}
