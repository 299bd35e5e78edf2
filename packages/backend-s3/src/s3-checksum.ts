// The CRC32C each upload request carries for S3 to check, computed natively. The SDK's
// own CRC32C on Node is pure JavaScript (@aws-sdk/checksums' Crc32cJs): it held
// savepoint's 1 GiB uploads to versitygw at 0.77 of the raw SDK's speed, whose default
// CRC32 goes through zlib. @node-rs/crc32 (SIMD, a prebuilt binary per common platform,
// no install script; the GCS backend's too) does about 5 GB/s. Given as ChecksumCRC32C,
// the SDK sends it instead of computing one; where no binary loads, the SDK computes it.
// Downloads too: a whole read asks for the stored checksum (ChecksumMode) and the SDK
// checks the body against it with the client's CRC32C, which took 2 s per GiB in pure
// JavaScript (full loads from S3 at 1.3x the time of GetObject + SHA-256); the clients
// savepoint builds get the native one through the SDK's `checksumAlgorithms` option.
import { createRequire } from 'node:module';
import { partChunks } from '@savepoint/core/kit';

type Crc32cFn = (input: Uint8Array, initialState?: number) => number;
/** The SDK's Checksum (@smithy/types), the part of it the SDK calls. */
interface Checksum {
  update(chunk: Uint8Array): void;
  digest(): Promise<Uint8Array>;
  reset(): void;
}

const native: Crc32cFn | undefined = (() => {
  try {
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: Crc32cFn }).crc32c;
  } catch {
    return undefined;
  }
})();

/** The checksum fields of a PutObject or UploadPart of `bytes` (one buffer, or views sent in order). */
export function checksumOf(bytes: Uint8Array | readonly Uint8Array[]): { ChecksumAlgorithm: 'CRC32C'; ChecksumCRC32C?: string } {
  if (!native) return { ChecksumAlgorithm: 'CRC32C' };
  let crc = 0;
  for (const view of partChunks(bytes)) crc = native(view, crc);
  const value = Buffer.alloc(4);
  value.writeUInt32BE(crc >>> 0);
  return { ChecksumAlgorithm: 'CRC32C', ChecksumCRC32C: value.toString('base64') };
}

/** Whether the CRC32C is computed here; without it the SDK computes it, from one buffer only. */
export const nativeChecksum = native !== undefined;

/**
 * A CRC32C as the SDK's `checksumAlgorithms.CRC32C` takes it (a Checksum constructor),
 * computed natively; undefined where the binary does not load (the SDK keeps its own).
 */
export const NativeCrc32c: (new () => Checksum) | undefined = native
  ? class NativeCrc32c implements Checksum {
      #state = 0;
      update(chunk: Uint8Array): void {
        this.#state = (native as Crc32cFn)(chunk, this.#state);
      }
      async digest(): Promise<Uint8Array> {
        const out = new Uint8Array(4);
        new DataView(out.buffer).setUint32(0, this.#state >>> 0);
        return out;
      }
      reset(): void {
        this.#state = 0;
      }
    }
  : undefined;

/** The part of an SDK command that a middleware is added to. */
interface WithMiddleware {
  middlewareStack: { add(middleware: unknown, options: { step: 'build'; name: string }): void };
}

/**
 * Sends `command`'s body unsigned (`x-amz-content-sha256: UNSIGNED-PAYLOAD`) instead of
 * signing its SHA-256: for the data of a checkpoint (a whole object, or a multipart
 * part), whose bytes the signed CRC32C header already covers, which S3 checks before it
 * stores them. Signing a buffer's body cost the SDK a SHA-256 pass over every byte
 * uploaded: a third of the save worker's CPU in the fit bench (117 of 375 ms of hashing
 * per 126 MB save), on the two cores training runs on. The SDK itself sends every
 * stream body unsigned; conditional records (the pointer, the lease) stay signed.
 */
export function unsignedPayload<C extends WithMiddleware>(command: C): C {
  command.middlewareStack.add(
    (next: (args: { request: { headers: Record<string, string> } }) => unknown) =>
      (args: { request: { headers: Record<string, string> } }) => {
        args.request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        return next(args);
      },
    { step: 'build', name: 'savepointUnsignedPayload' },
  );
  return command;
}
