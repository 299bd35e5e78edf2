// The CRC32C every whole GCS read is checked against: the native one and the portable
// fallback agree with each other and with the published check values, fed in one piece
// or in uneven chunks.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CRC32C_IMPLEMENTATION, crc32cHasher } from '../src/crc32c.js';

const base64Of = (crc: number) => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc >>> 0);
  return bytes.toString('base64');
};

describe('crc32c', () => {
  it('the native implementation loads on the platforms with a prebuilt binary (this one)', () => {
    expect(['linux', 'darwin', 'win32']).toContain(process.platform);
    expect(CRC32C_IMPLEMENTATION).toBe('native');
  });

  for (const implementation of ['native', 'portable'] as const) {
    it(`${implementation}: the standard check value, and what GCS sends for "hello world"`, () => {
      const check = crc32cHasher(implementation);
      check.update(new TextEncoder().encode('123456789'));
      expect(check.matches(base64Of(0xe3069283))).toBe(true);
      expect(check.matches(base64Of(0xe3069284))).toBe(false);
      const hello = crc32cHasher(implementation);
      hello.update(new TextEncoder().encode('hello world'));
      expect(hello.matches('yZRlqg==')).toBe(true);
    });
  }

  it('native and portable agree with a reference on random data fed in uneven chunks (views into a larger buffer)', () => {
    for (let round = 0; round < 10; round++) {
      const backing = randomBytes(70_000 + round * 997);
      const data = backing.subarray(13, backing.length - 29);
      const expected = base64Of(referenceCrc32c(data));
      const native = crc32cHasher('native');
      const portable = crc32cHasher('portable');
      for (let offset = 0, step = 1; offset < data.length; offset += step, step = ((step * 7 + 3) % 9000) + 1) {
        const chunk = new Uint8Array(data.buffer, data.byteOffset + offset, Math.min(step, data.length - offset));
        native.update(chunk);
        portable.update(chunk);
      }
      expect(native.matches(expected)).toBe(true);
      expect(portable.matches(expected)).toBe(true);
      data[0] = (data[0] as number) ^ 1;
      expect(base64Of(referenceCrc32c(data))).not.toBe(expected);
    }
  });
});

/** Bit by bit, from the definition (reflected polynomial 0x82F63B78): slow, and independent of both. */
function referenceCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
