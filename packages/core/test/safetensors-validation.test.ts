// The decoder validates what the reference safetensors implementation validates, and
// hostile headers (hand-written and generated) get CorruptCheckpointError, nothing else.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { recordFigures } from '../../reliability/src/report.js';
import { decodeCheckpoint, decodeSafetensors, encodeSafetensors } from '../src/format/index.js';
import { CorruptCheckpointError } from '../src/store/index.js';

const FUZZ_RUNS = 2000;
const tried = { corruptFiles: 0, fuzzedHeaders: 0 };
afterAll(() => recordFigures('hostile-bytes', tried));

/** A file from a header object and a data section, as an attacker would write one. */
function file(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

const f32 = (begin: number, end: number, shape = [(end - begin) / 4]) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

describe('safetensors validation', () => {
  it('accepts a valid file, including one with no tensors', () => {
    expect(decodeSafetensors(file({ a: f32(0, 8), b: f32(8, 12) }, new Uint8Array(12))).tensors.size).toBe(2);
    expect(decodeSafetensors(file({ __metadata__: { k: 'v' } })).metadata).toEqual({ k: 'v' });
  });

  it.each([
    ['a null header', file('null'), /not a JSON object \(got null\)/],
    ['an array header', file('[1,2]'), /not a JSON object/],
    ['invalid JSON', file('{"a":'), /not valid UTF-8 JSON/],
    ['a non-string metadata value', file({ __metadata__: { epoch: 3 } }), /__metadata__ value of "epoch" is not a string/],
    ['metadata that is not an object', file({ __metadata__: 'x' }), /__metadata__ is not an object/],
    [
      'an unknown dtype',
      file({ a: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, new Uint8Array(16)),
      /unknown dtype "F128"/,
    ],
    [
      'a dtype from Object.prototype',
      file({ a: { dtype: 'toString', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)),
      /unknown dtype/,
    ],
    ['negative offsets', file({ a: f32(-4, 4, [2]) }, new Uint8Array(8)), /data_offsets is not \[begin, end\]/],
    ['reversed offsets', file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, new Uint8Array(4)), /data_offsets/],
    ['overlapping tensors', file({ a: f32(0, 8), b: f32(4, 12) }, new Uint8Array(12)), /starts at 4, expected 8 \(overlap\)/],
    ['a gap between tensors', file({ a: f32(0, 4), b: f32(8, 12) }, new Uint8Array(12)), /starts at 8, expected 4 \(gap\)/],
    ['data not starting at 0', file({ a: f32(4, 8) }, new Uint8Array(8)), /starts at 4, expected 0/],
    ['shape and span that disagree', file({ a: f32(0, 8, [3]) }, new Uint8Array(8)), /needs 12 bytes, its offsets span 8/],
    ['a negative dimension', file({ a: f32(0, 4, [-1]) }, new Uint8Array(4)), /shape is not a list of non-negative integers/],
    ['trailing bytes', file({ a: f32(0, 4) }, new Uint8Array(8)), /holds 8 bytes, its tensors cover 4 \(trailing bytes\)/],
    ['a truncated data section', file({ a: f32(0, 8) }, new Uint8Array(4)), /truncated file/],
    ['a header length past the end', file({ a: f32(0, 4) }).subarray(0, 20), /truncated file/],
    ['a tensor named __proto__.x', file({ '__proto__.x': f32(0, 4) }, new Uint8Array(4)), /reserved/],
  ])('refuses %s with CorruptCheckpointError', (_what, bytes, message) => {
    tried.corruptFiles++;
    const codec = { decode: decodeCheckpoint };
    expect(() => codec.decode(bytes)).toThrow(CorruptCheckpointError);
    expect(() => codec.decode(bytes)).toThrow(message);
  });

  it('a header length over the bound is refused before anything is allocated', () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 1_500_000_000n, true);
    expect(() => decodeSafetensors(bytes)).toThrow(/over the .*-byte bound/);
  });

  it('fuzz: generated hostile headers get CorruptCheckpointError or decode, never another error', () => {
    const offset = fc.oneof(fc.integer({ min: -8, max: 64 }), fc.constant(2 ** 60), fc.double(), fc.string(), fc.constant(null));
    const entry = fc.record(
      {
        dtype: fc.oneof(fc.constantFrom('F32', 'F64', 'I64', 'U8', 'BOOL', 'F16', 'X', 'constructor'), fc.jsonValue()),
        shape: fc.oneof(fc.array(fc.integer({ min: -2, max: 8 }), { maxLength: 4 }), fc.jsonValue()),
        data_offsets: fc.oneof(fc.tuple(offset, offset), fc.array(offset, { maxLength: 3 }), fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    const header = fc.oneof(
      fc.dictionary(
        fc.oneof(fc.string(), fc.constantFrom('__metadata__', '__proto__', 'a.b', 'constructor')),
        fc.oneof(entry, fc.jsonValue()),
        {
          maxKeys: 5,
        },
      ),
      fc.jsonValue(),
    );
    fc.assert(
      fc.property(header, fc.integer({ min: 0, max: 96 }), (h, dataBytes) => {
        tried.fuzzedHeaders++;
        const bytes = file(h, new Uint8Array(dataBytes));
        try {
          decodeCheckpoint(bytes);
        } catch (error) {
          if (!(error instanceof CorruptCheckpointError)) throw error;
        }
      }),
      { numRuns: FUZZ_RUNS, seed: 20261129 },
    );
  });

  it('what the encoder writes always passes the validation', () => {
    const encoded = encodeSafetensors({ meta: '{"epoch":1}' }, [
      { name: 'a', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
      { name: 'b', dtype: 'U8', shape: [0], data: new Uint8Array(0) },
      { name: 'c', dtype: 'F64', shape: [1], data: new Float64Array([3]) },
    ]);
    const parts: Uint8Array[] = [];
    return (async () => {
      for await (const chunk of encoded.chunks()) parts.push(chunk);
      const bytes = new Uint8Array(Buffer.concat(parts));
      expect([...decodeSafetensors(bytes).tensors.keys()].sort()).toEqual(['a', 'b', 'c']);
    })();
  });
});
