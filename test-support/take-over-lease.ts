// A second job's take-over of a lease, as the lease protocol does it: a compare-and-swap on
// the version it read. A plain file write raced the holder's renewal on a loaded machine:
// the renewal checked the old version, the write landed, then the renewal's rename put the
// holder's lease back over it, and the test waited for a refusal that never came.

import { LocalBackend } from '@savepoint/backend-local';
import { PreconditionFailedError } from '@savepoint/core';

/** Replaces the lease at `leasePath` with `record` by compare-and-swap, again after each renewal that got in first. */
export async function takeOverLease(leasePath: string, record: object): Promise<void> {
  const store = new LocalBackend();
  // A bound in time, not in tries: a claimed version fails at once, and on a loaded machine the
  // holder may keep its claim for a while before its rename.
  const end = Date.now() + 20_000;
  while (Date.now() < end) {
    const { version } = await store.stat(leasePath);
    try {
      await store.put(leasePath, JSON.stringify(record), { ifMatch: version, contentType: 'application/json' });
      return;
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
    }
  }
  throw new Error(`takeOverLease: the holder's renewals kept getting in first for 20 s at ${leasePath}`);
}
