// The CRC32C each upload request carries for S3 to check, computed natively. The SDK's
// own CRC32C on Node is pure JavaScript (@aws-sdk/checksums' Crc32cJs): it held
// savepoint's 1 GiB uploads to versitygw at 0.77 of the raw SDK's speed, whose default
// CRC32 goes through zlib. @node-rs/crc32 (SIMD, a prebuilt binary per common platform,
// no install script; the GCS backend's too) does about 5 GB/s. Given as ChecksumCRC32C,
// the SDK sends it instead of computing one; where no binary loads, the SDK computes it.
import { createRequire } from 'node:module';

type NativeCrc32c = (input: Uint8Array, initialState?: number) => number;

const native: NativeCrc32c | undefined = (() => {
  try {
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: NativeCrc32c }).crc32c;
  } catch {
    return undefined;
  }
})();

/** The checksum fields of a PutObject or UploadPart of `bytes`. */
export function checksumOf(bytes: Uint8Array): { ChecksumAlgorithm: 'CRC32C'; ChecksumCRC32C?: string } {
  if (!native) return { ChecksumAlgorithm: 'CRC32C' };
  const value = Buffer.alloc(4);
  value.writeUInt32BE(native(bytes) >>> 0);
  return { ChecksumAlgorithm: 'CRC32C', ChecksumCRC32C: value.toString('base64') };
}
