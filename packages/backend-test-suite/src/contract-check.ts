// What a contract check is and what it is given: one module, so that the check lists
// (contract-checks.ts, cas-checks.ts) and the runners import it without a cycle.
import type { StorageBackend } from '@savepoint/core';

/** The server a backend talks to, and the same backend built to talk to another origin. */
export interface ThroughProxy {
  /** The server's HTTP origin, e.g. `http://127.0.0.1:45001`: what the proxy forwards to. */
  origin: string;
  /**
   * The backend under test with `origin` as its endpoint, configured as in the main
   * context but with a short retry policy (at most 3 retries, delays of a few ms), so
   * that the check's run of failures ends quickly.
   */
  make(origin: string): StorageBackend | Promise<StorageBackend>;
}

export interface Capabilities {
  /** Bytes streamed through the large-object check. */
  largeObjectBytes: number;
  /** Keys written for the paging checks; object stores page at 1,000. */
  manyKeys: number;
  /** A file and a folder may share a name (`a/b` and `a/b/c`): true on object stores, false on disk. */
  fileAndFolderSameName: boolean;
  /** Random key sets tried by the property check (each run writes and deletes a few dozen keys). */
  propertyRuns: number;
  /** The backend talks HTTP to a server, so the context gives `throughProxy` for the fault check; false on local disk or in memory. */
  http: boolean;
}

export const DEFAULT_CAPABILITIES: Capabilities = {
  largeObjectBytes: 64 * 1024 * 1024,
  manyKeys: 1_100,
  fileAndFolderSameName: true,
  propertyRuns: 20,
  http: true,
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
  /** The server's origin and the backend aimed at another one, for the fault check (`http` stores). */
  throughProxy?: ThroughProxy | undefined;
}

export interface ContractCheck {
  name: string;
  timeoutMs?: number;
  /** Skipped (and reported as such) when the capability is false. */
  requires?: keyof Capabilities;
  run(ctx: CheckContext): Promise<void>;
}
