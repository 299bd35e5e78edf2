// The names a store gives the temporary files of writes in flight (local disk writes
// a temp file and renames it). The run layout treats them as never a checkpoint, and
// `removeIncompleteWrites` finds them by this marker.
/** Marks a local backend's temporary file: `.<name>.savepoint-tmp-<random>`. */
export const TEMP_MARKER = '.savepoint-tmp-';

/** Hex digits of the random token in a local temp name: the longest name a write needs is the file's plus this marker and token. */
export const TEMP_TOKEN_LENGTH = 12;

/** The local temp name of a file being written (see backend-local). */
export function tempNameFor(name: string, token: string): string {
  return `.${name}${TEMP_MARKER}${token}`;
}

export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.includes(TEMP_MARKER);
}
