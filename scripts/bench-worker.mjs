// One benchmark measurement in its own process (so peak RSS is its own); prints JSON.
import { randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

// Each store's SDK is imported only by the process that measures it, so that peak
// RSS shows that store's cost and not the other SDKs'.

const PART = 8 * 1024 * 1024;
const CONCURRENCY = 4;
const CHUNK = 1024 * 1024;
// The static credentials scripts/servers.sh gives versitygw (moto takes any).
const creds = { accessKeyId: 'testing-access-key', secretAccessKey: 'testing-secret-key-0123456789' };
/** The S3 servers: moto, and versitygw (a production S3 server). */
const S3_ENDPOINTS = { s3: 'SAVEPOINT_TEST_S3_ENDPOINT', 's3-versitygw': 'SAVEPOINT_TEST_S3_VERSITYGW_ENDPOINT' };
const AZURITE =
  'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;';

let requests = 0;
diagnostics.subscribe('http.client.request.start', () => {
  requests++;
});

async function* source(bytes) {
  // Buffers (which are Uint8Arrays): the Azure SDK's uploadStream needs Buffer chunks.
  for (let left = bytes; left > 0; left -= CHUNK) yield Buffer.alloc(Math.min(CHUNK, left), left & 0xff);
}
async function drain(stream) {
  let n = 0;
  for await (const chunk of stream) n += chunk.byteLength;
  return n;
}
const timed = async (fn) => {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
};

async function setup(store) {
  if (store in S3_ENDPOINTS) {
    const { CreateBucketCommand, GetObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
    const { Upload } = await import('@aws-sdk/lib-storage');
    const { S3Backend } = await import('@savepoint/backend-s3');
    const endpoint = process.env[S3_ENDPOINTS[store]];
    const client = new S3Client({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { ...creds } });
    await client.send(new CreateBucketCommand({ Bucket: 'savepoint-bench' })).catch(() => {});
    return {
      client,
      backend: new S3Backend({
        endpoint,
        forcePathStyle: true,
        region: 'us-east-1',
        credentials: { ...creds },
        partSize: PART,
        queueSize: CONCURRENCY,
      }),
      root: 's3://savepoint-bench',
      rawUp: (key, body) =>
        new Upload({
          client,
          params: { Bucket: 'savepoint-bench', Key: key, Body: Readable.from(body) },
          partSize: PART,
          queueSize: CONCURRENCY,
        }).done(),
      rawDown: async (key) => drain((await client.send(new GetObjectCommand({ Bucket: 'savepoint-bench', Key: key }))).Body),
    };
  }
  if (store === 'gcs') {
    const { Storage } = await import('@google-cloud/storage');
    const { GcsBackend } = await import('@savepoint/backend-gcs');
    const apiEndpoint = process.env.SAVEPOINT_TEST_GCS_ENDPOINT;
    const storage = new Storage({ apiEndpoint, projectId: 'bench' });
    const [exists] = await storage.bucket('savepoint-bench').exists();
    if (!exists) await storage.createBucket('savepoint-bench');
    const bucket = storage.bucket('savepoint-bench');
    return {
      backend: new GcsBackend({ apiEndpoint, projectId: 'bench', chunkSize: PART }),
      root: 'gs://savepoint-bench',
      rawUp: (key, body) =>
        pipeline(
          Readable.from(body),
          bucket.file(key).createWriteStream({ resumable: true, chunkSize: PART, validation: 'crc32c' }),
        ),
      rawDown: (key) => drain(bucket.file(key).createReadStream({ validation: 'crc32c' })),
    };
  }
  const { BlobServiceClient } = await import('@azure/storage-blob');
  const { AzureBackend } = await import('@savepoint/backend-azure');
  const cs = `${AZURITE}BlobEndpoint=${process.env.SAVEPOINT_TEST_AZURE_ENDPOINT};`;
  const container = BlobServiceClient.fromConnectionString(cs).getContainerClient('savepoint-bench');
  await container.createIfNotExists();
  return {
    backend: new AzureBackend({ connectionString: cs, blockSize: PART, concurrency: CONCURRENCY }),
    root: 'az://savepoint-bench',
    rawUp: (key, body) => container.getBlockBlobClient(key).uploadStream(Readable.from(body), PART, CONCURRENCY),
    rawDown: async (key) => drain((await container.getBlockBlobClient(key).download()).readableStreamBody),
  };
}

/**
 * The loopback limit: `bytes` through one TCP connection on 127.0.0.1 to a sink in another
 * process (as a local server is), up and then down, with nothing else on the way. No
 * client of a local server can beat it on this machine.
 */
async function loopback(bytes) {
  const { spawn } = await import('node:child_process');
  const net = await import('node:net');
  const sink = spawn(
    process.execPath,
    [
      '-e',
      `const net = require('node:net');
       const chunk = Buffer.alloc(${CHUNK}, 7);
       const server = net.createServer((socket) => {
         socket.once('data', (first) => {
           if (first[0] === 0x55) {
             // "U": count what arrives until the client ends, then answer the count.
             let n = first.length - 1;
             socket.on('data', (d) => { n += d.length; });
             socket.on('end', () => socket.end(String(n)));
           } else {
             // "D": send ${bytes} bytes, then close.
             let left = ${bytes};
             const pump = () => { while (left > 0) { const c = chunk.subarray(0, Math.min(chunk.length, left)); left -= c.length; if (!socket.write(c)) return socket.once('drain', pump); } socket.end(); };
             pump();
           }
         });
       });
       server.listen(0, '127.0.0.1', () => console.log(server.address().port));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise((resolve) => sink.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
  const chunk = Buffer.alloc(CHUNK, 3);
  const up = await timed(
    () =>
      new Promise((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.write(Buffer.from('U'));
          let left = bytes;
          const pump = () => {
            while (left > 0) {
              const c = chunk.subarray(0, Math.min(chunk.length, left));
              left -= c.length;
              if (!socket.write(c)) return socket.once('drain', pump);
            }
            socket.end();
          };
          pump();
        });
        let answer = '';
        socket.on('data', (d) => {
          answer += d;
        });
        socket.on('end', () => (Number(answer) === bytes ? resolve() : reject(new Error(`sink got ${answer} bytes`))));
        socket.on('error', reject);
      }),
  );
  const down = await timed(
    () =>
      new Promise((resolve, reject) => {
        let n = 0;
        const socket = net.connect(port, '127.0.0.1', () => socket.write(Buffer.from('D')));
        socket.on('data', (d) => {
          n += d.length;
        });
        socket.on('end', () => (n === bytes ? resolve() : reject(new Error(`got ${n} bytes`))));
        socket.on('error', reject);
      }),
  );
  sink.kill();
  return { up, down };
}

/** A local-disk backend that reports the bytes of every put (the bytes-per-save benches). */
function countingLocal(LocalBackend, count) {
  return class extends LocalBackend {
    async put(path, body, options) {
      const chunks = [];
      for await (const chunk of typeof body === 'string'
        ? [new TextEncoder().encode(body)]
        : body instanceof Uint8Array
          ? [body]
          : body)
        chunks.push(chunk);
      count(chunks.reduce((n, c) => n + c.byteLength, 0));
      return super.put(path, Buffer.concat(chunks), options);
    }
  };
}

const [kind, store, impl, size] = process.argv.slice(2);
let result;
if (kind === 'loopback') {
  result = await loopback(Number(store));
} else if (kind === 'calls') {
  const { LocalBackend } = await import('@savepoint/backend-local');
  const { InstrumentedBackend } = await import('@savepoint/backend-test-suite');
  const { CheckpointHook, ReferenceTrainer } = await import('@savepoint/core');
  const dir = mkdtempSync(join(tmpdir(), 'savepoint-bench-'));
  const backend = new InstrumentedBackend(new LocalBackend());
  const hook = new CheckpointHook({ byEpoch: false, interval: 1, maxKeepCkpts: 3, backend });
  const model = { trainStep: () => 0, stateDict: () => ({ w: new Float32Array(16) }), loadStateDict() {} };
  const trainer = new ReferenceTrainer({
    workDir: dir,
    model,
    checkpointHook: hook,
    itersPerEpoch: 100,
    maxIters: 1000,
    backend,
  });
  await hook.beforeTrain(trainer);
  const perSave = [];
  for (let i = 0; i < 1000; i++) {
    const before = backend.calls.length;
    trainer.iter++;
    await hook.afterTrainIter(trainer);
    perSave.push(backend.calls.length - before);
  }
  rmSync(dir, { recursive: true, force: true });
  result = {
    first: perSave[0],
    steady: [...new Set(perSave.slice(10))],
    listings: backend.calls.filter((c) => c.op === 'list').length,
  };
} else if (kind === 'bytes') {
  // Bytes uploaded per save point of an improving best (a regular save and a new best at
  // every epoch, a transfer-learning head on a large frozen base: 8 MiB of weights).
  const { LocalBackend } = await import('@savepoint/backend-local');
  const { CheckpointHook, ReferenceTrainer } = await import('@savepoint/core');
  const dir = mkdtempSync(join(tmpdir(), 'savepoint-bench-'));
  let uploaded = 0;
  let copies = 0;
  const Counting = class extends countingLocal(LocalBackend, (n) => {
    uploaded += n;
  }) {
    async copy(source, destination, options) {
      copies++;
      return super.copy(source, destination, options);
    }
  };
  const backend = new Counting();
  const EPOCHS = 10;
  const frozen = new Float32Array(2 * 1024 * 1024).fill(0.5);
  let head = new Float32Array(4096);
  const trainer = new ReferenceTrainer({
    workDir: dir,
    model: {
      trainStep: () => {
        head = head.map((x) => x + 1);
        return 0;
      },
      evaluate: (p) => ({ val_loss: 1 / (p.epoch + 1) }),
      stateDict: () => ({ base: frozen, head }),
      loadStateDict() {},
    },
    checkpointHook: new CheckpointHook({ interval: 1, maxKeepCkpts: 2, saveBest: 'val_loss', backend }),
    itersPerEpoch: 1,
    maxEpochs: EPOCHS,
    valInterval: 1,
    backend,
  });
  await trainer.train();
  const { statSync } = await import('node:fs');
  const checkpoint = statSync(join(dir, `epoch_${EPOCHS}.safetensors`)).size;
  rmSync(dir, { recursive: true, force: true });
  result = { perSavePoint: uploaded / EPOCHS / checkpoint, copies, checkpoint };
} else if (kind === 'incremental') {
  // (ours) Incremental checkpoints on local disk. `frozen`: 90% of the state's bytes never
  // change (a transfer-learning base), ten kept checkpoints; `plain`/`incr`: nothing
  // frozen, the same state saved plainly and incrementally (time and bytes per save);
  // `sweep`: a crash at every store write of an incremental run, then a resume.
  const { LocalBackend } = await import('@savepoint/backend-local');
  const { CheckpointHook, ReferenceTrainer, Run } = await import('@savepoint/core');
  const { InstrumentedBackend, InjectedFault, MUTATING_OPERATIONS } = await import('@savepoint/backend-test-suite');
  const { statSync, readdirSync } = await import('node:fs');
  const mode = store;
  let uploaded = 0;
  const Counting = countingLocal(LocalBackend, (n) => {
    uploaded += n;
  });
  const du = (path) => {
    const st = statSync(path);
    if (!st.isDirectory()) return st.size;
    return readdirSync(path).reduce((n, name) => n + du(join(path, name)), 0);
  };
  const MIB = 1024 * 1024;
  const model = (frozenMiB, headMiB) => {
    const base = Array.from({ length: frozenMiB }, (_, i) => new Float32Array(MIB / 4).fill(-(i + 1)));
    // Distinct values in every tensor: no two hold the same bytes, so nothing deduplicates by accident.
    let head = Array.from({ length: headMiB }, (_, i) => new Float32Array(MIB / 4).map((_, j) => (j % 4096) + i * 4096));
    return {
      trainStep: () => {
        head = head.map((h) => h.map((x) => x + 1));
        return 0;
      },
      evaluate: () => ({}),
      stateDict: () => ({
        ...Object.fromEntries(base.map((b, i) => [`base${i}`, b])),
        ...Object.fromEntries(head.map((h, i) => [`head${i}`, h])),
      }),
      loadStateDict() {},
    };
  };
  const train = async (dir, backend, m, hook, epochs, resume = false) => {
    const trainer = new ReferenceTrainer({
      workDir: dir,
      model: m,
      checkpointHook: new CheckpointHook({ interval: 1, saveOptimizer: false, ...hook, backend }),
      itersPerEpoch: 1,
      maxEpochs: epochs,
      resume,
      backend,
      logger: { info() {}, warn() {} },
    });
    await trainer.train();
  };
  const dir = mkdtempSync(join(tmpdir(), 'savepoint-bench-incr-'));
  try {
    if (mode === 'frozen') {
      const backend = new Counting();
      const plainDir = join(dir, 'plain');
      await train(plainDir, backend, model(9, 1), { maxKeepCkpts: 1 }, 1);
      const full = statSync(join(plainDir, 'epoch_1.safetensors')).size;
      const runDir = join(dir, 'incr');
      const m = model(9, 1);
      uploaded = 0;
      await train(runDir, backend, m, { incremental: true, maxKeepCkpts: 10 }, 1);
      const first = uploaded;
      uploaded = 0;
      await train(runDir, backend, m, { incremental: true, maxKeepCkpts: 10 }, 10, true);
      result = {
        state: full,
        first,
        perSave: uploaded / 9,
        occupied: du(runDir) - statSync(join(runDir, 'last_checkpoint')).size,
      };
    } else if (mode === 'plain' || mode === 'incr') {
      const backend = new Counting();
      const m = model(0, 32);
      const hook = mode === 'incr' ? { incremental: true, maxKeepCkpts: 2 } : { maxKeepCkpts: 2 };
      await train(join(dir, 'warm'), backend, m, hook, 1);
      uploaded = 0;
      const EPOCHS = 6;
      const started = performance.now();
      await train(join(dir, 'run'), backend, m, hook, EPOCHS);
      // Training steps (mapping 32 MiB) are the same in both modes; the difference is the save.
      result = { ms: performance.now() - started, perSave: uploaded / EPOCHS };
    } else if (mode === 'sweep') {
      const store = new LocalBackend();
      const hook = { incremental: true, maxKeepCkpts: 1 };
      const dry = new InstrumentedBackend(store);
      await train(join(dir, 'dry'), dry, model(2, 1), hook, 4);
      const writes = dry.calls.filter((c) => MUTATING_OPERATIONS.includes(c.op)).length;
      let naming = 0;
      let unreferenced = 0;
      for (let k = 0; k < writes; k++) {
        const runDir = join(dir, `k${k}`);
        let seen = 0;
        const dying = new InstrumentedBackend(store, (call) =>
          MUTATING_OPERATIONS.includes(call.op) && seen++ === k ? 'before' : undefined,
        );
        await train(runDir, dying, model(2, 1), hook, 4).catch((error) => {
          if (!(error instanceof InjectedFault)) throw error;
        });
        const run = Run.open(runDir, { backend: store });
        naming += new Set((await run.objectUsage()).missing.map((m) => m.checkpoint)).size;
        await train(runDir, store, model(2, 1), hook, 5, true);
        unreferenced += (await run.objectUsage()).unreferenced.length;
        rmSync(runDir, { recursive: true, force: true });
      }
      result = { scenarios: writes, naming, unreferenced };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else if (kind === 'stream') {
  const bytes = Number(size);
  const s = await setup(store);
  const key = `stream-${impl}-${randomBytes(4).toString('hex')}`;
  let up;
  let down;
  // A warm-up round of 32 MiB through the same code, untimed: the figure is the
  // steady speed, not the JIT compiling the first chunks.
  const warm = `${key}-warm-up`;
  if (impl === 'raw') {
    await s.rawUp(warm, source(32 * CHUNK));
    await s.rawDown(warm);
  } else {
    await s.backend.put(`${s.root}/${warm}`, source(32 * CHUNK));
    await drain(await s.backend.getStream(`${s.root}/${warm}`));
  }
  await s.backend.remove(`${s.root}/${warm}`);
  if (impl === 'raw') {
    up = await timed(() => s.rawUp(key, source(bytes)));
    down = await timed(() => s.rawDown(key));
  } else {
    const path = `${s.root}/${key}`;
    up = await timed(() => s.backend.put(path, source(bytes)));
    down = await timed(async () => drain(await s.backend.getStream(path)));
  }
  await s.backend.remove(`${s.root}/${key}`);
  result = { up, down, maxRss: process.resourceUsage().maxRSS * 1024 };
} else if (kind === 'download') {
  // One object, uploaded once, read back by savepoint and by the raw SDK in turns, in
  // alternating order, in one process: both sides read the same stored object from the
  // same server with the same heap behind them. (Between processes, the same download
  // varied by 20% or more: server restarts, and the garbage the upload left behind.)
  const bytes = Number(size);
  const rounds = Number(impl);
  const s = await setup(store);
  const key = `download-${randomBytes(4).toString('hex')}`;
  const warm = `${key}-warm-up`;
  await s.rawUp(warm, source(32 * CHUNK));
  await s.rawUp(key, source(bytes));
  const read = {
    raw: (k) => s.rawDown(k),
    savepoint: async (k) => drain(await s.backend.getStream(`${s.root}/${k}`)),
  };
  for (const side of ['raw', 'savepoint']) await read[side](warm);
  const times = { raw: [], savepoint: [] };
  for (let i = 0; i < rounds; i++) {
    for (const side of i % 2 === 0 ? ['raw', 'savepoint'] : ['savepoint', 'raw']) {
      const seconds = await timed(async () => {
        const n = await read[side](key);
        if (n !== bytes) throw new Error(`${side} read ${n} bytes of ${bytes}`);
      });
      times[side].push(seconds);
    }
  }
  await s.backend.remove(`${s.root}/${warm}`);
  await s.backend.remove(`${s.root}/${key}`);
  result = times;
} else if (kind === 'delete') {
  const n = Number(size);
  const s = await setup(store);
  const dir = `${s.root}/delete-${impl}-${randomBytes(4).toString('hex')}`;
  const paths = Array.from({ length: n }, (_, i) => `${dir}/o${i}`);
  for (let i = 0; i < n; i += 64) await Promise.all(paths.slice(i, i + 64).map((p) => s.backend.put(p, 'x')));
  requests = 0;
  const seconds = await timed(async () => {
    if (impl === 'rmtree') await s.backend.rmtree(dir);
    else for (const p of paths) await s.backend.remove(p);
  });
  result = { seconds, requests };
} else if (kind === 'save') {
  // Time the training loop is blocked by one save of a `size`-byte state (64 tensors),
  // synchronous (impl 'sync') or asynchronous ('async'), and the time until it is committed.
  const { CheckpointHook, RuntimeInfo } = await import('@savepoint/core');
  const bytes = Number(size);
  const s = await setup(store);
  const tensors = Object.fromEntries(
    Array.from({ length: 64 }, (_, i) => [`layer${i}.weight`, new Float32Array(bytes / 4 / 64).fill(i)]),
  );
  const workDir = `${s.root}/save-${impl}-${randomBytes(4).toString('hex')}`;
  const runner = {
    workDir,
    epoch: 0,
    iter: 1,
    maxEpochs: 1,
    maxIters: 100,
    runtimeInfo: new RuntimeInfo(),
    logger: { info() {}, warn() {} },
    rank: 0,
    modelState: () => tensors,
  };
  const hook = new CheckpointHook({
    byEpoch: false,
    interval: 1,
    maxKeepCkpts: 1,
    backend: s.backend,
    asyncSave: impl === 'async',
  });
  await hook.beforeTrain(runner);
  // Four saves, as a run saves again and again; between them training changes the state.
  const blocked = [];
  const committed = [];
  for (let save = 1; save <= 4; save++) {
    runner.iter = save;
    for (const t of Object.values(tensors)) t[0] = save;
    const start = performance.now();
    await hook.afterTrainIter(runner);
    blocked.push((performance.now() - start) / 1000);
    await hook.flush();
    committed.push((performance.now() - start) / 1000);
  }
  await hook.close();
  await s.backend.rmtree(workDir);
  const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  result = {
    blocked: { first: blocked[0], steady: med(blocked.slice(1)) },
    committed: med(committed),
    maxRss: process.resourceUsage().maxRSS * 1024,
  };
} else if (kind === 'lazy') {
  // Bytes read to load 10% of the tensors of a `size`-byte checkpoint, and to inspect it.
  const { openCheckpoint, saveCheckpointFile } = await import('@savepoint/core');
  const bytes = Number(size);
  const s = await setup(store);
  const tensors = Object.fromEntries(
    Array.from({ length: 100 }, (_, i) => [`layer${i}.weight`, new Float32Array(bytes / 4 / 100).fill(i)]),
  );
  const path = `${s.root}/lazy-${randomBytes(4).toString('hex')}.safetensors`;
  const written = await saveCheckpointFile(s.backend, path, { state_dict: tensors });
  const inspectReader = await openCheckpoint(s.backend, path);
  inspectReader.tensorInfos();
  const reader = await openCheckpoint(s.backend, path);
  const names = reader.tensorNames.filter((_, i) => i % 10 === 3);
  await reader.readTensors(names);
  await s.backend.remove(path);
  result = { fileBytes: written.bytes, inspectBytes: inspectReader.bytesRead, tenPercentBytes: reader.bytesRead };
} else if (kind === 'shards') {
  // A directory checkpoint of `size` bytes in 8 shards, saved and loaded with impl = shard concurrency.
  const { loadCheckpoint, saveCheckpointDir } = await import('@savepoint/core');
  const bytes = Number(size);
  const concurrency = Number(impl);
  const s = await setup(store);
  const tensors = Object.fromEntries(
    Array.from({ length: 8 }, (_, i) => [`layer${i}.weight`, new Float32Array(bytes / 4 / 8).fill(i)]),
  );
  const path = `${s.root}/shards-${impl}-${randomBytes(4).toString('hex')}`;
  const up = await timed(() =>
    saveCheckpointDir(s.backend, path, { state_dict: tensors }, { maxShardBytes: bytes / 8, concurrency }),
  );
  const down = await timed(() => loadCheckpoint(s.backend, path, { concurrency }));
  await s.backend.rmtree(path);
  result = { up, down };
}
console.log(JSON.stringify(result));
process.exit(0);
