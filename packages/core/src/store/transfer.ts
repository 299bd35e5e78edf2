// Copying one file between any two stores (S3 to GCS, disk to Azure), streaming: the
// source's read stream is the destination's put body, so memory stays within what the
// destination holds of a stream (its part size, times its upload concurrency), never the
// object. Within one store, a server-side copy when the caller passes the same backend.

import { checkProgressListener } from './call-options.js';
import type { ObjectMetadata, SignalOptions, StorageBackend, TransferProgress } from './contract.js';

export interface TransferOptions extends SignalOptions {
  /** Bytes read from the source so far, and the source's size. */
  onProgress?: ((progress: TransferProgress) => void) | undefined;
  /** Kept from the source (when both stores keep metadata) unless given here. */
  contentType?: string | undefined;
  metadata?: ObjectMetadata | undefined;
}

/**
 * Copies the file at `from.path` to `to.path`. The destination's put is all or nothing, as
 * every put: a failed transfer leaves the old destination object (or none). Resolves the
 * bytes copied.
 */
export async function transferObject(
  from: { store: StorageBackend; path: string },
  to: { store: StorageBackend; path: string },
  options: TransferOptions = {},
): Promise<{ bytes: number }> {
  const onProgress = checkProgressListener(options.onProgress, to.store.name);
  const { signal } = options;
  const stat = await from.store.stat(from.path, { signal });
  if (from.store === to.store) {
    await to.store.copy(from.path, to.path, { signal, onProgress });
    return { bytes: stat.size };
  }
  const keep = from.store.capabilities.metadata && to.store.capabilities.metadata;
  const contentType = options.contentType ?? (keep ? stat.contentType : undefined);
  const metadata =
    options.metadata ?? (keep && stat.metadata && Object.keys(stat.metadata).length > 0 ? stat.metadata : undefined);
  const stream = await from.store.getStream(from.path, { signal });
  let bytes = 0;
  async function* counted() {
    for await (const chunk of stream) {
      bytes += chunk.byteLength;
      onProgress?.({ bytes, totalBytes: stat.size });
      yield chunk;
    }
  }
  await to.store.put(to.path, counted(), {
    signal,
    ...(contentType === undefined ? {} : { contentType }),
    ...(metadata === undefined ? {} : { metadata }),
  });
  if (bytes === 0) onProgress?.({ bytes, totalBytes: stat.size });
  return { bytes };
}
