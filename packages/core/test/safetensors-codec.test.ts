import { describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint, parseSafetensorsHeader, Tensor } from '../src/format/index.js';
import { collect } from '../src/kit/index.js';
import { CorruptCheckpointError } from '../src/store/index.js';

const codec = { encode: encodeCheckpoint, decode: decodeCheckpoint };

async function encode(checkpoint: Record<string, unknown>) {
  const encoded = codec.encode(checkpoint);
  const bytes = await collect(encoded.chunks());
  expect(bytes.byteLength).toBe(encoded.byteLength);
  return bytes;
}

describe('safetensors codec', () => {
  it('writes the format: LE header length, 8-aligned JSON header, contiguous offsets, string metadata', async () => {
    const bytes = await encode({
      meta: { epoch: 3, note: 'x' },
      state_dict: { 'fc.weight': new Tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]), 'fc.bias': new Float64Array([0.5]) },
    });
    const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    expect(length % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
    expect(header['state_dict.fc.weight']).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(header['state_dict.fc.bias']).toEqual({ dtype: 'F64', shape: [1], data_offsets: [24, 32] });
    expect(typeof header.__metadata__.meta).toBe('string');
    expect(JSON.parse(header.__metadata__.meta)).toEqual({ epoch: 3, note: 'x' });
    expect(bytes.byteLength).toBe(8 + length + 32);
    expect(new Float32Array(bytes.slice(8 + length, 8 + length + 24).buffer)[5]).toBe(6);
  });

  it('round-trips nested trees, every integer dtype, infinities and empty tensors', async () => {
    const checkpoint = {
      meta: { epoch: 1, best: -Infinity, nan: Number.NaN, list: [1, 'two', null] },
      optimizer: { state: { 0: { exp_avg: new Float32Array([1, 2]) } }, param_groups: [{ lr: 0.1 }] },
      ints: {
        a: new Int8Array([-1]),
        b: new Int16Array([-2]),
        c: new Int32Array([-3]),
        d: new Uint8Array([4]),
        e: new Uint16Array([5]),
        f: new Uint32Array([6]),
        g: new BigInt64Array([-7n]),
        h: new BigUint64Array([8n]),
        empty: new Float32Array(0),
      },
    };
    const back = codec.decode(await encode(checkpoint));
    expect(back.meta).toEqual({ epoch: 1, best: -Infinity, nan: Number.NaN, list: [1, 'two', null] });
    expect(back.optimizer).toEqual(checkpoint.optimizer);
    expect(back.ints).toEqual(checkpoint.ints);
  });

  it('refuses two tensors with the same dotted name', () => {
    expect(() => codec.encode({ s: { 'a.b': new Float32Array(1), a: { b: new Float32Array(1) } } })).toThrow(
      /both be named "s.a.b"/,
    );
  });

  it('reports truncated and corrupt files as CorruptCheckpointError', async () => {
    const bytes = await encode({ state_dict: { w: new Float32Array(100) } });
    expect(() => codec.decode(bytes.subarray(0, bytes.byteLength - 10))).toThrow(CorruptCheckpointError);
    expect(() => codec.decode(bytes.subarray(0, 20))).toThrow(CorruptCheckpointError);
    expect(() => codec.decode(new Uint8Array([255, 255, 255, 255, 255, 255, 255, 255]))).toThrow(CorruptCheckpointError);
    expect(parseSafetensorsHeader(bytes).tensors['state_dict.w']?.shape).toEqual([100]);
  });
});
