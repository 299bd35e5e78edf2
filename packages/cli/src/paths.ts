// A local path typed on the command line means what it means to the shell: `..`
// steps out of the working directory (`savepoint ls ../x` lists the run that
// training into `../x` wrote). The local store refuses `..` segments, since a path
// read back from a store could use them to climb out of a folder; a path the user
// typed is theirs, so it is resolved here, before any store sees it. Object-store
// URIs are left exactly as typed: `s3://b/../x` has no folder to climb out of on the
// user's machine, and the store refuses it as hostile.
import { resolve } from 'node:path';

/** Anything that starts like a URI (`s3://`, `file://`, or the typo `s3:/`): core checks those, as typed. */
const URI_LIKE = /^[a-z][a-z0-9+.-]+:/i;

/** `path` with its `..` segments resolved against the working directory, when it is a local path that has any. */
export function cliPath(path: string): string {
  if (URI_LIKE.test(path) || !path.split(/[\\/]/).includes('..')) return path;
  return resolve(path);
}
