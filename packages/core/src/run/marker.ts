// The run marker: a small object a trainer leaves in a checkpoint folder that is not
// its work dir (`outDir` set), naming the work dir that holds the run's lease and
// pointer. Tools given the folder (`savepoint prune`, `ls`, `verify`) find the run
// through it instead of mistaking the folder for a run without a pointer. Read back
// from a store, it is a stranger's input: bounded, parsed strictly, and checked
// against the work dir's own pointer before it is believed (run.ts).
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { NotFoundError } from '../store/errors.js';
import { RUN_MARKER_NAME } from './layout.js';

export { RUN_MARKER_NAME };

export interface RunMarker {
  format: 'savepoint.run';
  version: 1;
  /** The work dir holding the run's lease and `last_checkpoint`. */
  workDir: string;
  /** The run's `filenameTmpl`, so tools recognise its regular checkpoints. */
  filenameTmpl?: string | undefined;
}

const MAX_MARKER_BYTES = 16 * 1024;

/** The marker in `dir`, or undefined when there is none or it is not a savepoint marker. */
export async function readRunMarker(
  store: StorageBackend,
  dir: string,
  options: SignalOptions = {},
): Promise<RunMarker | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await store.get(store.joinPath(dir, RUN_MARKER_NAME), { ...options, range: { start: 0, end: MAX_MARKER_BYTES } });
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes)) as Partial<RunMarker>;
    if (value?.format !== 'savepoint.run' || typeof value.workDir !== 'string' || value.workDir.length === 0) return undefined;
    if (value.workDir.includes('\0')) return undefined;
    const filenameTmpl = typeof value.filenameTmpl === 'string' ? value.filenameTmpl : undefined;
    return { format: 'savepoint.run', version: 1, workDir: value.workDir, filenameTmpl };
  } catch {
    return undefined;
  }
}

export async function writeRunMarker(
  store: StorageBackend,
  dir: string,
  marker: { workDir: string; filenameTmpl: string },
  options: SignalOptions = {},
): Promise<void> {
  const record: RunMarker = { format: 'savepoint.run', version: 1, ...marker };
  await store.put(store.joinPath(dir, RUN_MARKER_NAME), JSON.stringify(record), { ...options, contentType: 'application/json' });
}
