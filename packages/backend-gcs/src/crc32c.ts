// The CRC32C that every whole GCS read is checked against, at memory speed:
// @node-rs/crc32 (SIMD, a prebuilt binary for each common platform, no install
// script). The client's own CRC32C goes a byte at a time, about 200 MiB/s: it, not
// the network, set the speed of a GCS download (1.3 s for 256 MiB on the test
// machine). Where no prebuilt binary loads, that portable one is used.
import { createRequire } from 'node:module';
import { CRC32C } from '@google-cloud/storage';

export interface Crc32cHasher {
  update(bytes: Uint8Array): void;
  /** Whether the bytes so far have the CRC32C `base64` (as in `x-goog-hash: crc32c=...`). */
  matches(base64: string): boolean;
  /** The CRC32C of the bytes so far, as GCS writes it (big-endian, base64): what an upload sends for the server to check. */
  digest(): string;
}

type NativeCrc32c = (input: Uint8Array, initialState?: number) => number;

const native: NativeCrc32c | undefined = (() => {
  try {
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: NativeCrc32c }).crc32c;
  } catch {
    return undefined;
  }
})();

/** Which implementation `crc32cHasher()` uses here. */
export const CRC32C_IMPLEMENTATION: 'native' | 'portable' = native ? 'native' : 'portable';

export function crc32cHasher(implementation: 'native' | 'portable' = CRC32C_IMPLEMENTATION): Crc32cHasher {
  if (implementation === 'native' && native) {
    const crc32c = native;
    let state = 0;
    return {
      update(bytes) {
        state = crc32c(bytes, state);
      },
      matches(base64) {
        const expected = Buffer.from(base64, 'base64');
        return expected.byteLength === 4 && expected.readUInt32BE(0) === state >>> 0;
      },
      digest() {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(state >>> 0, 0);
        return out.toString('base64');
      },
    };
  }
  const portable = new CRC32C();
  return {
    update(bytes) {
      portable.update(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    },
    matches(base64) {
      return portable.validate(base64);
    },
    digest() {
      return portable.toString();
    },
  };
}

/** The CRC32C of `bytes`, as GCS writes it. */
export function crc32cOf(bytes: Uint8Array): string {
  const hasher = crc32cHasher();
  hasher.update(bytes);
  return hasher.digest();
}
