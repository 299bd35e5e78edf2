// The memory a save holds, as the README states it: an upload holds at most
// (concurrency + 1) part buffers; a large buffer is uploaded from the caller's memory,
// never copied whole; an async save handed to the save worker is one copy of the state,
// in shared memory (the hand-over copies nothing more); after `close()` the hook holds
// no snapshot buffer. (`pnpm bench memory` measures the same in bytes.)
import { setImmediate } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { SaveQueue } from '../src/engine/save-queue.js';
import type { SaveStep, StepRunner } from '../src/engine/save-steps.js';
import { Tensor, type TypedArray } from '../src/format/tensor.js';
import { bufferIfSmall, fixedSizeParts, stageParts } from '../src/kit/parts.js';
import type { StreamWrite } from '../src/kit/primitives.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const write: StreamWrite = { part: (_operation, run) => run({ signal: new AbortController().signal }), progress() {} };

async function* chunks(count: number, size: number) {
  for (let i = 0; i < count; i++) yield new Uint8Array(size).fill(i);
}

describe('upload buffers', () => {
  it('stageParts holds at most concurrency + 1 part buffers, however many parts, and each part keeps its bytes until staged', async () => {
    const partSize = 1024;
    const seen = new Set<ArrayBufferLike>();
    const staged: number[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    const count = await stageParts(chunks(60, 700), write, { partSize, concurrency: 3 }, async (part, index) => {
      seen.add(part.buffer);
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      const first = part[0];
      // Other parts are filled while this one is "on the wire": its bytes must not change.
      await setImmediate();
      await setImmediate();
      expect(part[0]).toBe(first);
      staged[index] = part.byteLength;
      inFlight--;
    });
    expect(count).toBe(Math.ceil((60 * 700) / partSize));
    expect(staged.reduce((a, b) => a + b, 0)).toBe(60 * 700);
    expect(mostInFlight).toBe(3);
    expect(seen.size).toBeLessThanOrEqual(4);
  });

  it("with stable chunks, stageParts sends views of the caller's chunks (no part buffers) in order, across chunk ends", async () => {
    const given = Array.from({ length: 7 }, (_, i) => new Uint8Array(700 + i).fill(i + 1));
    async function* body() {
      yield* given;
    }
    const owners = new Set<ArrayBufferLike>(given.map((chunk) => chunk.buffer));
    const sent: Uint8Array[] = [];
    const count = await stageParts(
      body(),
      { ...write, stableChunks: true },
      { partSize: 1024, concurrency: 2, views: true },
      async (part, index) => {
        if (part instanceof Uint8Array) throw new Error('a copied part');
        for (const view of part) expect(owners.has(view.buffer), 'a view of memory the caller did not give').toBe(true);
        sent[index] = Buffer.concat(part);
      },
    );
    const whole = Buffer.concat(given);
    expect(count).toBe(Math.ceil(whole.byteLength / 1024));
    expect(sent.slice(0, -1).every((part) => part.byteLength === 1024)).toBe(true);
    expect(Buffer.concat(sent).equals(whole)).toBe(true);
  });

  it('without stable chunks (or a writer that takes views), stageParts copies into its part buffers', async () => {
    const given = [new Uint8Array(3000).fill(9)];
    async function* body() {
      yield* given;
    }
    const copied: boolean[] = [];
    await stageParts(body(), write, { partSize: 1024, concurrency: 2, views: true }, async (part) => {
      copied.push(part instanceof Uint8Array && part.buffer !== given[0]?.buffer);
    });
    await stageParts(body(), { ...write, stableChunks: true }, { partSize: 1024, concurrency: 2 }, async (part) => {
      copied.push(part.buffer !== given[0]?.buffer);
    });
    expect(copied).toEqual([true, true, true, true, true, true]);
  });

  it('a long stream: what bufferIfSmall held back is the first part as it is (one copy of each byte), bodies up to the limit come back whole', async () => {
    const limit = 4 * 1024 * 1024;
    // A producer that reuses one buffer, in chunks that do not divide the part size.
    const shared = new Uint8Array(300_000);
    const produce = (total: number) =>
      (async function* () {
        for (let offset = 0, i = 0; offset < total; offset += shared.byteLength, i++) {
          shared.fill(i % 251);
          yield shared.subarray(0, Math.min(shared.byteLength, total - offset));
        }
      })();
    const expected = (total: number) => {
      const out = new Uint8Array(total);
      for (let offset = 0, i = 0; offset < total; offset += shared.byteLength, i++) {
        out.fill(i % 251, offset, Math.min(total, offset + shared.byteLength));
      }
      return out;
    };
    for (const total of [1000, limit - 1, limit]) {
      const { bytes } = await bufferIfSmall(produce(total), limit);
      expect(bytes && Buffer.from(bytes).equals(Buffer.from(expected(total))), `${total} bytes`).toBe(true);
    }
    for (const total of [limit + 1, 3 * limit + 12_345]) {
      const { stream } = await bufferIfSmall(produce(total), limit);
      if (!stream) throw new Error(`${total} bytes came back whole`);
      const staged: Uint8Array[] = [];
      const buffers = new Set<ArrayBufferLike>();
      const count = await stageParts(stream, write, { partSize: limit, concurrency: 2 }, async (part, index) => {
        buffers.add(part.buffer);
        await setImmediate();
        staged[index] = part.slice();
      });
      expect(count).toBe(Math.ceil(total / limit));
      expect(Buffer.concat(staged).equals(Buffer.from(expected(total))), `${total} bytes`).toBe(true);
      expect(buffers.size, `${total} bytes`).toBeLessThanOrEqual(2);
      // The held-back bytes are not copied again: re-cut into parts, the first part needs
      // no part buffer (a copy of them into one cost 8 MiB more per S3 upload of a stream).
      const again = await bufferIfSmall(produce(total), limit);
      let taken = 0;
      const parts: Uint8Array[] = [];
      const provider = {
        take: () => {
          taken++;
          return new Uint8Array(limit);
        },
      };
      if (!again.stream) throw new Error(`${total} bytes came back whole`);
      for await (const part of fixedSizeParts(again.stream, limit, provider)) parts.push(part.slice());
      expect(taken, `${total} bytes`).toBe(parts.length - 1);
      expect(Buffer.concat(parts).equals(Buffer.from(expected(total)))).toBe(true);
    }
  });

  it("a writer that stops early ends the caller's body (its finally runs: a file or socket is released at once)", async () => {
    for (const [limit, chunk] of [
      [10, 4],
      [2 * 1024 * 1024, 512 * 1024],
    ] as const) {
      let closed = false;
      async function* body() {
        try {
          for (let i = 0; i < 40; i++) yield new Uint8Array(chunk).fill(i);
        } finally {
          closed = true;
        }
      }
      const { stream } = await bufferIfSmall(body(), limit);
      if (!stream) throw new Error('came back whole');
      let taken = 0;
      for await (const _ of stream) if (++taken === 2) break;
      expect(closed, `limit ${limit}`).toBe(true);
    }
  });

  it('bufferIfSmall keeps what it holds back as views when the chunks are stable, as copies otherwise', async () => {
    const given = Array.from({ length: 4 }, (_, i) => new Uint8Array(1000).fill(i));
    const read = async (stableChunks: boolean) => {
      async function* body() {
        yield* given;
      }
      const { stream } = await bufferIfSmall(body(), 1500, { stableChunks });
      const out: Uint8Array[] = [];
      for await (const chunk of stream ?? []) out.push(chunk);
      return out;
    };
    const stable = await read(true);
    expect(stable.map((chunk) => chunk.buffer)).toEqual(given.map((chunk) => chunk.buffer));
    const copied = await read(false);
    expect(copied[0]?.buffer).not.toBe(given[0]?.buffer);
    expect(Buffer.concat(copied).equals(Buffer.concat(given))).toBe(true);
  });

  it('stageParts stages the right bytes in each part when its buffers are reused', async () => {
    const parts: Uint8Array[] = [];
    await stageParts(chunks(10, 1000), write, { partSize: 2000, concurrency: 2 }, async (part, index) => {
      await setImmediate();
      parts[index] = part.slice();
    });
    expect(parts).toHaveLength(5);
    parts.forEach((part, i) => {
      expect(part.subarray(0, 1000).every((b) => b === 2 * i)).toBe(true);
      expect(part.subarray(1000).every((b) => b === 2 * i + 1)).toBe(true);
    });
  });

  it('stageParts rejects only once every part still on the wire has settled, so a writer aborting its upload after it frees every part', async () => {
    // S3 frees the parts an AbortMultipartUpload finds; a part that lands after it keeps
    // the upload alive (and billed). CI saw that as a dangling upload after a failed stream.
    const releases: (() => void)[] = [];
    let settled = 0;
    async function* dying() {
      for (let i = 0; i < 3; i++) yield new Uint8Array(1000).fill(i);
      throw new Error('source died');
    }
    const staging = stageParts(dying(), write, { partSize: 1000, concurrency: 3 }, async () => {
      await new Promise<void>((resolve) => releases.push(resolve));
      settled++;
    });
    let rejected = false;
    const outcome = staging.then(
      () => 'resolved',
      (error: Error) => {
        rejected = true;
        return error.message;
      },
    );
    // Let the stream run into its failure while all three parts are still in flight.
    while (releases.length < 3) await setImmediate();
    for (let i = 0; i < 5; i++) await setImmediate();
    expect(rejected).toBe(false);
    for (const release of releases) release();
    expect(await outcome).toBe('source died');
    expect(settled).toBe(3);
  });

  it("a body longer than one request is streamed from the caller's buffer, not copied whole", async () => {
    const body = new Uint8Array(10_000).fill(3);
    const result = await bufferIfSmall(body, 4096);
    expect(result.bytes).toBeUndefined();
    const pieces: Uint8Array[] = [];
    for await (const piece of result.stream as AsyncIterable<Uint8Array>) pieces.push(piece);
    expect(pieces.every((piece) => piece.buffer === body.buffer)).toBe(true);
    expect(pieces.reduce((n, piece) => n + piece.byteLength, 0)).toBe(10_000);
    // A small body is still our own copy: the caller may reuse its buffer once put resolves.
    const small = new Uint8Array(100);
    expect((await bufferIfSmall(small, 4096)).bytes?.buffer).not.toBe(small.buffer);
  });
});

/** A step runner standing in for the save worker: records what it was handed. */
function workerStandIn() {
  const handed: SaveStep[][] = [];
  let finish: (() => void) | undefined;
  const runner: StepRunner = {
    offThread: true,
    run(steps) {
      handed.push([...steps]);
      return new Promise<undefined>((resolve) => {
        finish = () => resolve(undefined);
      });
    },
    async close() {},
  };
  return { runner, handed, finish: () => finish?.() };
}

const arraysOf = (steps: SaveStep[]): TypedArray[] =>
  steps.flatMap((step) =>
    step.kind === 'save' ? Object.values(step.checkpoint).map((v) => (v instanceof Tensor ? v.data : (v as TypedArray))) : [],
  );

describe('async saves handed to the save worker', () => {
  it('hand over one copy of the state, in shared memory (the hand-over copies nothing more), reused by the next save point', async () => {
    const queue = new SaveQueue({ asyncSave: true, maxPendingSaves: 1, signal: undefined });
    const worker = workerStandIn();
    queue.useRunner(worker.runner);
    const live = { w: new Float32Array([1, 2, 3]), b: new Tensor(new Float32Array([4]), [1], 'F32') };
    // As the hook does: the snapshot is taken while the save point is planned.
    const savePoint = () =>
      queue.savePoint(async (steps) => {
        steps.push({ kind: 'save', name: 'c', checkpoint: await queue.snapshot(async () => live) });
      });
    await savePoint();
    const first = arraysOf(worker.handed[0] ?? []);
    expect(first).toHaveLength(2);
    for (const array of first) {
      expect(array.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(array).not.toBe(live.w);
    }
    // Training changes the state: the save in flight keeps what it was given.
    live.w[0] = 9;
    expect(Array.from(first[0] as Float32Array)).toEqual([1, 2, 3]);
    worker.finish();
    await queue.flush();
    await savePoint();
    const second = arraysOf(worker.handed[1] ?? []);
    expect(second.map((a) => a.buffer)).toEqual(first.map((a) => a.buffer));
    expect(Array.from(second[0] as Float32Array)).toEqual([9, 2, 3]);
    worker.finish();
    await queue.flush();
  });

  it('after drain (afterTrain, close) the queue holds no snapshot buffer', async () => {
    const queue = new SaveQueue({ asyncSave: true, maxPendingSaves: 2, signal: undefined });
    const worker = workerStandIn();
    queue.useRunner(worker.runner);
    const refs: WeakRef<ArrayBufferLike>[] = [];
    await (async () => {
      await queue.savePoint(async (steps) => {
        steps.push({ kind: 'save', name: 'c', checkpoint: await queue.snapshot(async () => ({ w: new Float32Array(1 << 20) })) });
      });
      for (const array of arraysOf(worker.handed[0] ?? [])) refs.push(new WeakRef(array.buffer));
    })();
    worker.finish();
    await queue.drain();
    worker.handed.length = 0;
    await setImmediate();
    gc();
    await setImmediate();
    gc();
    expect(refs).toHaveLength(1);
    expect(refs.every((ref) => ref.deref() === undefined)).toBe(true);
  });
});
