// Bytes checked end to end (issue #25): a tensor once across a checkpoint; a header
// savepoint wrote without its data hash refused; publishing refuses a source that does
// not verify; manifests bounded, validated, and each shard listed once. Every hostile
// checkpoint here must get a CorruptCheckpointError naming what is wrong, nothing else.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { recordFigures } from '../../reliability/src/report.js';
import { encodeSafetensors, MANIFEST_NAME, MAX_MANIFEST_BYTES, type ShardManifest } from '../src/format/index.js';
import {
  CheckpointHook,
  CorruptCheckpointError,
  loadCheckpoint,
  openCheckpoint,
  ReferenceTrainer,
  saveCheckpointDir,
  saveCheckpointFile,
} from '../src/index.js';
import { publishCheckpoint } from '../src/run/checkpoint-files.js';
import type { PutBody, PutOptions } from '../src/store/index.js';

let refused = 0;
afterAll(() => recordFigures('hostile-checkpoints', { refused }));

const local = new LocalBackend();
let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'savepoint-integrity-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

const checkpoint = () => ({
  meta: { epoch: 2 },
  state_dict: { a: new Float32Array(64).fill(1), b: new Float32Array(64).fill(2) },
  optimizer: { m: new Float32Array(64).fill(3) },
});

/** Every way of reading a checkpoint refuses it with CorruptCheckpointError matching `message`. */
async function expectRefused(path: string, message: RegExp) {
  refused++;
  for (const read of [() => loadCheckpoint(local, path), () => openCheckpoint(local, path)]) {
    const error = await read().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, String(read)).toBeInstanceOf(CorruptCheckpointError);
    expect((error as Error).message).toMatch(message);
  }
}

async function bytesOf(encoded: { chunks(): AsyncIterable<Uint8Array> }): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of encoded.chunks()) parts.push(chunk);
  return new Uint8Array(Buffer.concat(parts));
}

/** The file's header as JSON and its data section. */
function splitFile(bytes: Uint8Array): { header: Record<string, unknown>; data: Uint8Array } {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  return {
    header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))),
    data: bytes.subarray(8 + length),
  };
}

function joinFile(header: Record<string, unknown>, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

/** A two-shard folder checkpoint, its manifest, and a way to write an edited manifest. */
async function shardedCheckpoint(name: string) {
  const dir = join(root, name);
  const manifest = await saveCheckpointDir(local, dir, checkpoint(), { maxShardBytes: 600 });
  expect(manifest.shards.length).toBeGreaterThanOrEqual(2);
  const writeManifest = (edited: unknown) => writeFile(join(dir, MANIFEST_NAME), JSON.stringify(edited));
  return { dir, manifest, writeManifest };
}

/** Replaces shard `i`'s file with `bytes`, recording its true size and SHA-256 in the manifest (so only the content is hostile). */
async function replaceShard(dir: string, manifest: ShardManifest, i: number, bytes: Uint8Array) {
  const shard = manifest.shards[i] as ShardManifest['shards'][number];
  await writeFile(join(dir, shard.file), bytes);
  shard.bytes = bytes.byteLength;
  shard.sha256 = createHash('sha256').update(bytes).digest('hex');
  await writeFile(join(dir, MANIFEST_NAME), JSON.stringify(manifest));
}

describe('a tensor name appears once across a checkpoint', () => {
  it('a tensor defined in two shards is refused on load and lazy open, naming it and both shards', async () => {
    const { dir, manifest } = await shardedCheckpoint('twice');
    const first = manifest.shards[0] as ShardManifest['shards'][number];
    const second = manifest.shards[1] as ShardManifest['shards'][number];
    const stolen = first.tensors[0] as string;
    // The second shard also defines the first shard's tensor, with other values (the last would win).
    const own = (second.tensors as string[]).map((name) => ({
      name,
      dtype: 'F32' as const,
      shape: [64],
      data: new Float32Array(64).fill(5),
    }));
    const bytes = await bytesOf(
      encodeSafetensors({}, [...own, { name: stolen, dtype: 'F32', shape: [64], data: new Float32Array(64).fill(9) }]),
    );
    await replaceShard(dir, manifest, 1, bytes);
    const both = new RegExp(`tensor "${stolen.replace('.', '\\.')}" is in two shards, ${first.file} and ${second.file}`);
    await expectRefused(dir, both);
  });
});

describe('a header savepoint wrote must record its data hash', () => {
  it('a file whose header lost savepoint:data_sha256, then had a tensor changed, is refused on load and lazy open', async () => {
    const path = join(root, 'no-hash.safetensors');
    await saveCheckpointFile(local, path, checkpoint());
    const { header, data } = splitFile(await readFile(path));
    delete (header.__metadata__ as Record<string, string>)['savepoint:data_sha256'];
    const changed = data.slice();
    changed[10] = (changed[10] ?? 0) ^ 0x40;
    await writeFile(path, joinFile(header, changed));
    await expectRefused(path, /written by savepoint but records no data SHA-256/);
  });

  it('a shard of a folder checkpoint without its hash is refused, even with the manifest brought in line', async () => {
    const { dir, manifest } = await shardedCheckpoint('shard-no-hash');
    const shardPath = join(dir, (manifest.shards[0] as ShardManifest['shards'][number]).file);
    const { header, data } = splitFile(await readFile(shardPath));
    delete (header.__metadata__ as Record<string, string>)['savepoint:data_sha256'];
    await replaceShard(dir, manifest, 0, joinFile(header, data));
    await expectRefused(dir, /written by savepoint but records no data SHA-256/);
  });

  it('a plain safetensors file from another tool (no savepoint metadata) still loads', async () => {
    const path = join(root, 'python.safetensors');
    const header = { __metadata__: { format: 'pt' }, weight: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    await writeFile(path, joinFile(header, new Uint8Array(new Float32Array([1, 2]).buffer)));
    expect(Array.from((await loadCheckpoint(local, path)).weight as Float32Array)).toEqual([1, 2]);
    expect((await openCheckpoint(local, path)).tensorNames).toEqual(['weight']);
  });
});

describe('publishing refuses a source that does not verify, writing nothing', () => {
  const published = async (dir: string) => (await readdir(dir)).filter((name) => /-[0-9a-f]{8}\.safetensors$/.test(name));

  it('a file with a flipped byte in a key that is not kept', async () => {
    const dir = join(root, 'publish-file');
    const path = join(dir, 'epoch_2.safetensors');
    await saveCheckpointFile(local, path, checkpoint());
    const bytes = await readFile(path);
    bytes[bytes.byteLength - 1] = (bytes[bytes.byteLength - 1] ?? 0) ^ 0x01; // the optimizer's last byte
    await writeFile(path, bytes);
    refused++;
    await expect(publishCheckpoint(local, path, ['meta', 'state_dict'])).rejects.toThrow(
      /not publishing .*does not match the SHA-256 its header records.*nothing was written/,
    );
    expect(await published(dir)).toEqual([]);
  });

  it('a folder checkpoint with a flipped shard byte, or a shard swapped for another checkpoint’s', async () => {
    const { dir, manifest } = await shardedCheckpoint('publish-dir');
    const shardPath = join(dir, (manifest.shards[0] as ShardManifest['shards'][number]).file);
    const original = await readFile(shardPath);
    const flipped = Buffer.from(original);
    flipped[flipped.byteLength - 2] = (flipped[flipped.byteLength - 2] ?? 0) ^ 0x08;
    await writeFile(shardPath, flipped);
    refused++;
    await expect(publishCheckpoint(local, dir, ['meta', 'state_dict'])).rejects.toBeInstanceOf(CorruptCheckpointError);

    // Another save of the same layout, with other values: its first shard in place of ours.
    const other = await saveCheckpointDir(
      local,
      join(root, 'publish-other'),
      { ...checkpoint(), state_dict: { a: new Float32Array(64).fill(7), b: new Float32Array(64).fill(8) } },
      { maxShardBytes: 600 },
    );
    await writeFile(shardPath, await readFile(join(root, 'publish-other', (other.shards[0] as { file: string }).file)));
    refused++;
    await expect(publishCheckpoint(local, dir, ['meta', 'state_dict'])).rejects.toThrow(
      /not publishing .*does not match the SHA-256 in its manifest/,
    );
    expect(await published(root)).toEqual([]);

    await writeFile(shardPath, original);
    const ok = await publishCheckpoint(local, dir, ['meta', 'state_dict']);
    expect(Object.keys(await loadCheckpoint(local, ok.path)).sort()).toEqual(['meta', 'state_dict']);
  });
});

describe('manifests are bounded and validated', () => {
  it('a manifest listing one shard 1,000 times is refused before any shard is read', async () => {
    const { dir, manifest, writeManifest } = await shardedCheckpoint('listed-often');
    const shard = manifest.shards[0];
    await writeManifest({ ...manifest, shards: Array.from({ length: 1000 }, () => shard) });
    await expectRefused(dir, /shard 2: shard-\S+ is listed twice/);
  });

  it('a manifest over the bound is refused without being read whole', async () => {
    const { dir } = await shardedCheckpoint('huge-manifest');
    await truncate(join(dir, MANIFEST_NAME), MAX_MANIFEST_BYTES + 4096); // sparse: costs no disk
    await expectRefused(dir, new RegExp(`over the ${MAX_MANIFEST_BYTES}-byte bound`));
  });

  it.each([
    ['a shard name that is a number', (s: Record<string, unknown>) => ({ ...s, file: 42 }), /shard 1: file is a number/],
    ['a shard name with a path in it', (s: Record<string, unknown>) => ({ ...s, file: '../x.safetensors' }), /not a shard file/],
    ['a shard entry that is a string', () => 'shard', /shard 1: is not an object/],
    ['a size that is not a number', (s: Record<string, unknown>) => ({ ...s, bytes: '12' }), /bytes is not/],
    ['a SHA-256 that is not hex', (s: Record<string, unknown>) => ({ ...s, sha256: 7 }), /sha256 is not 64 hex/],
    ['tensor names that are not strings', (s: Record<string, unknown>) => ({ ...s, tensors: [1] }), /tensors is not a list/],
  ])('%s is a CorruptCheckpointError saying so', async (_what, edit, message) => {
    const { dir, manifest, writeManifest } = await shardedCheckpoint(`bad-${refused}`);
    const [first, ...rest] = manifest.shards;
    await writeManifest({ ...manifest, shards: [edit(first as unknown as Record<string, unknown>), ...rest] });
    await expectRefused(dir, message);
  });
});

describe('publishedKeys at afterTrain', () => {
  /** Local disk that damages the bytes of one checkpoint as it writes them (a failing disk, a bad copy). */
  class DamagingDisk extends LocalBackend {
    override async put(path: string, body: PutBody, options?: PutOptions): Promise<void> {
      if (!path.endsWith('epoch_2.safetensors')) return super.put(path, body, options);
      const parts: Uint8Array[] = [];
      if (typeof body === 'string') parts.push(new TextEncoder().encode(body));
      else if (body instanceof Uint8Array) parts.push(body);
      else for await (const chunk of body) parts.push(chunk);
      const bytes = Buffer.concat(parts);
      bytes[bytes.byteLength - 1] = (bytes[bytes.byteLength - 1] ?? 0) ^ 0x01;
      return super.put(path, bytes, options);
    }
  }

  it('refuses to publish a last checkpoint that does not verify, and writes no published copy', async () => {
    const workDir = join(root, 'hook-publish');
    const disk = new DamagingDisk();
    refused++;
    const training = new ReferenceTrainer({
      workDir,
      model: {
        trainStep: () => 0,
        evaluate: () => ({ acc: 0.5 }),
        stateDict: () => ({ w: new Float32Array(16).fill(1) }),
        loadStateDict: () => {},
        optimizerState: () => ({ m: new Float32Array(16).fill(2) }),
      },
      checkpointHook: new CheckpointHook({ interval: 1, saveLast: true, publishedKeys: ['meta', 'state_dict'], backend: disk }),
      itersPerEpoch: 1,
      maxEpochs: 2,
      backend: disk,
      logger: { info: () => {}, warn: () => {} },
    }).train();
    await expect(training).rejects.toThrow(/not publishing .*epoch_2\.safetensors: it does not verify/);
    const files = await readdir(workDir, { recursive: true });
    expect(files.filter((name) => /-[0-9a-f]{8}\.safetensors$/.test(String(name)))).toEqual([]);
  });
});

describe('metadata nesting is bounded', () => {
  it('saving a tree deeper than a reader could rebuild is refused, naming where', async () => {
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 300; i++) deep = { d: deep };
    await expect(saveCheckpointFile(local, join(root, 'deep.safetensors'), { meta: deep })).rejects.toThrow(
      /nests deeper than 256 levels at "meta(\.d)+"/,
    );
    await expect(readdir(root)).resolves.not.toContain('deep.safetensors');
  });

  it('a header with JSON text nested deeper than the bound is a CorruptCheckpointError on load and lazy open', async () => {
    const path = join(root, 'deep-header.safetensors');
    await writeFile(
      path,
      joinFile({ __metadata__: { meta: `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}` } }, new Uint8Array(0)),
    );
    await expectRefused(path, /metadata value of "meta" nests deeper than 256 levels/);
  });
});
