// The `last_checkpoint` pointer: a small object in the work dir naming the run's
// newest committed checkpoint. Only `Run` reads or moves it (run.ts), so the rules
// about what it may name (layout.ts) and who may move it are kept in one place.
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { NotFoundError } from '../store/errors.js';
import { POINTER_NAME, resolvePointerText } from './layout.js';

/** The pointer is a name, never large: a longer one is not read past this (a hostile multi-GB "pointer" stays out of memory). */
const MAX_POINTER_BYTES = 4096;

/** The pointer's text exactly as stored (trimmed), or undefined when there is no pointer. */
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
    const text = new TextDecoder().decode(bytes).trim();
    return text.length > 0 ? text : undefined;
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

/** Replaces the pointer atomically (a single put) with `text`: a name relative to the work dir, or a full path. */
export async function writeLastCheckpoint(
  backend: StorageBackend,
  workDir: string,
  text: string,
  options: SignalOptions = {},
): Promise<void> {
  await backend.put(backend.joinPath(workDir, POINTER_NAME), text, options);
}
