// One memory measurement in its own process (so the peak RSS is its own); prints JSON.
//   node --expose-gc scripts/bench-memory.mjs save <local|s3|azure> <sync|async> <bytes>
//     extra memory of a run's saves (four save points of a `bytes` state, as the
//     `CheckpointHook` makes them from `backendArgs`, so with asyncSave on the save worker),
//     and what the hook still holds after `close()`;
//   node --expose-gc scripts/bench-memory.mjs put s3 <stream|stable|bytes> <bytes>
//     extra memory of one S3 upload of a `bytes` object, against part size x queue size.
// "Extra" is the process's peak RSS during the measured work minus its RSS just before
// it, with the state already allocated and touched: what the save costs on top of the
// model. The peak is the kernel's (getrusage maxRSS), so a spike between two samples is
// counted too. "Buffers" is the peak of the ArrayBuffers this thread holds (sampled
// every 20 ms); with asyncSave the worker's own are in its isolate, inside the RSS only.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [kind, store, mode, size] = process.argv.slice(2);
const bytes = Number(size);
const PART = 8 * 1024 * 1024;
const QUEUE = 4;
const s3 = {
  endpoint: process.env.SAVEPOINT_TEST_S3_ENDPOINT,
  forcePathStyle: true,
  region: 'us-east-1',
  credentials: { accessKeyId: 'bench', secretAccessKey: 'bench-secret-key-000000' },
  partSize: PART,
  queueSize: QUEUE,
};
const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const azure = {
  connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};BlobEndpoint=${process.env.SAVEPOINT_TEST_AZURE_ENDPOINT};`,
  blockSize: PART,
  concurrency: QUEUE,
};

const peak = () => process.resourceUsage().maxRSS * 1024;
const settle = () => {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().rss;
};

async function target() {
  if (store === 'local') {
    const { registerLocalBackend } = await import('../packages/backend-local/dist/index.js');
    registerLocalBackend();
    return { workDir: join(mkdtempSync(join(tmpdir(), 'savepoint-mem-')), 'run'), backendArgs: {} };
  }
  if (store === 's3') {
    const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
    const { registerS3Backend } = await import('../packages/backend-s3/dist/index.js');
    registerS3Backend();
    await new S3Client(s3).send(new CreateBucketCommand({ Bucket: 'savepoint-bench' })).catch(() => {});
    return { workDir: `s3://savepoint-bench/mem-${mode}-${Date.now().toString(36)}`, backendArgs: s3 };
  }
  const { BlobServiceClient } = await import('@azure/storage-blob');
  const { registerAzureBackend } = await import('../packages/backend-azure/dist/index.js');
  registerAzureBackend();
  await BlobServiceClient.fromConnectionString(azure.connectionString).getContainerClient('savepoint-bench').createIfNotExists();
  return { workDir: `az://savepoint-bench/mem-${mode}-${Date.now().toString(36)}`, backendArgs: azure };
}

let result;
if (kind === 'save') {
  const { CheckpointHook, RuntimeInfo } = await import('../packages/core/dist/index.js');
  const { workDir, backendArgs } = await target();
  const tensors = Object.fromEntries(
    Array.from({ length: 64 }, (_, i) => [`layer${i}.weight`, new Float32Array(bytes / 4 / 64).fill(i + 1)]),
  );
  const logs = [];
  const runner = {
    workDir,
    epoch: 0,
    iter: 0,
    maxEpochs: 1,
    maxIters: 100,
    runtimeInfo: new RuntimeInfo(),
    logger: { info: (m) => logs.push(m), warn: (m) => logs.push(m) },
    rank: 0,
    modelState: () => tensors,
  };
  const hook = new CheckpointHook({ byEpoch: false, interval: 1, maxKeepCkpts: 1, backendArgs, asyncSave: mode === 'async' });
  await hook.beforeTrain(runner);
  const before = settle();
  const base = process.memoryUsage();
  const top = { heapUsed: 0, external: 0, arrayBuffers: 0, rss: 0 };
  // The buffers this thread holds (ArrayBuffers and SharedArrayBuffers, as V8 counts
  // them), sampled: what the RSS holds beyond them is code, heaps, sockets, the save
  // worker's isolate and the allocator's slack.
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    for (const k of Object.keys(top)) top[k] = Math.max(top[k], m[k] - base[k]);
  }, 20);
  for (let save = 1; save <= 4; save++) {
    runner.iter = save;
    for (const t of Object.values(tensors)) t[0] = save;
    await hook.afterTrainIter(runner);
    // Training goes on while an async save runs: the next save point comes before it commits.
  }
  await hook.flush();
  const duringSaves = peak() - before;
  clearInterval(sampler);
  await hook.afterTrain(runner);
  await hook.close();
  const afterClose = settle() - before;
  result = {
    state: bytes,
    extraPeak: duringSaves,
    buffersPeak: top.arrayBuffers,
    heldAfterClose: afterClose,
    offThread: logs.some((m) => /save worker/i.test(m)) ? logs.filter((m) => /save worker/i.test(m)) : [],
  };
} else if (kind === 'put') {
  const { S3Backend } = await import('../packages/backend-s3/dist/index.js');
  const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
  await new S3Client(s3).send(new CreateBucketCommand({ Bucket: 'savepoint-bench' })).catch(() => {});
  const backend = new S3Backend(s3);
  const data = new Uint8Array(bytes).fill(7);
  const path = `s3://savepoint-bench/mem-put-${Date.now().toString(36)}`;
  const body =
    mode === 'bytes'
      ? data
      : (async function* () {
          for (let offset = 0; offset < bytes; offset += 4 * 1024 * 1024) yield data.subarray(offset, offset + 4 * 1024 * 1024);
        })();
  const before = settle();
  // stable: the same stream, its chunks promised unchanged until put resolves (as a checkpoint save's are).
  await backend.put(path, body, { stableChunks: mode === 'stable' });
  result = { object: bytes, extraPeak: peak() - before, partTimesQueue: PART * QUEUE };
  await backend.remove(path);
}
console.log(JSON.stringify(result));
process.exit(0);
