// What a contract check is and what it is given: one module, so that the check lists
// (contract-checks.ts, cas-checks.ts) and the runners import it without a cycle.
import type { StorageBackend } from '@savepoint/core';

export interface Capabilities {
  /** Bytes streamed through the large-object check. */
  largeObjectBytes: number;
  /** Keys written for the paging checks; object stores page at 1,000. */
  manyKeys: number;
  /** A file and a folder may share a name (`a/b` and `a/b/c`): true on object stores, false on disk. */
  fileAndFolderSameName: boolean;
  /** Random key sets tried by the property check (each run writes and deletes a few dozen keys). */
  propertyRuns: number;
}

export const DEFAULT_CAPABILITIES: Capabilities = {
  largeObjectBytes: 64 * 1024 * 1024,
  manyKeys: 1_100,
  fileAndFolderSameName: true,
  propertyRuns: 20,
};

/** A new, empty store root (a bucket, container or root folder) and a backend configured for it. */
export interface ScratchStore {
  backend: StorageBackend;
  /** The store root itself, e.g. `s3://new-bucket` or the root folder of a local backend. */
  storeRoot: string;
  /** Removes what was made (the bucket or folder); called after the check, pass or fail. */
  dispose?: () => Promise<void>;
}

export interface CheckContext {
  backend: StorageBackend;
  /** A fresh, empty folder for this check alone. */
  dir: string;
  /** The store's root (a bucket, a container, a root folder), which `rmtree` must refuse. */
  storeRoot?: string | undefined;
  /** Makes a new, empty store (see `ScratchStore`) that the `allowRoot: true` check may wipe. */
  scratchStore?: (() => Promise<ScratchStore>) | undefined;
  caps: Capabilities;
}

export interface ContractCheck {
  name: string;
  timeoutMs?: number;
  /** Skipped (and reported as such) when the capability is false. */
  requires?: keyof Capabilities;
  run(ctx: CheckContext): Promise<void>;
}
