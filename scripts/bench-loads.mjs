// `pnpm bench loads` (node scripts/bench.mjs loads, after a build): a full load of one
// checkpoint, on local disk and on S3, against reading and hashing the same file by hand
// in Node (fs.readFile + SHA-256; on S3, moto and versitygw, one GetObject read whole + SHA-256) and against
// Python's safetensors (local disk: .cache/venv); the peak memory of load and `verify`
// above each process's own baseline, as a multiple of the file; and a folder checkpoint
// of 8 shards loaded with 1, 2 and 4 shards in flight. Every figure is measured in its own
// process (so its peak RSS is its own), BENCH_LOAD_REPEAT times (default 3), the sides
// interleaved in rotating order, medians. BENCH_LOAD_BYTES shrinks the checkpoint.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const BYTES = Number(process.env.BENCH_LOAD_BYTES ?? 1024 ** 3);
const REPEAT = Math.max(1, Number(process.env.BENCH_LOAD_REPEAT ?? 3));
const TENSORS = 16;
const SHARDS = 8;
// The static credentials scripts/servers.sh gives versitygw (moto takes any).
const creds = { accessKeyId: 'testing-access-key', secretAccessKey: 'testing-secret-key-0123456789' };
/** The S3 servers: moto, and versitygw (a production S3 server over a folder). */
const S3_ENDPOINTS = { s3: 'SAVEPOINT_TEST_S3_ENDPOINT', 's3-versitygw': 'SAVEPOINT_TEST_S3_VERSITYGW_ENDPOINT' };
export const STORES = ['local', ...Object.keys(S3_ENDPOINTS)];
const LABELS = {
  local: 'local disk',
  s3: 'S3 on moto (the local server, on the same cores)',
  's3-versitygw': 'S3 on versitygw (on the same cores)',
};
const BUCKET = 'savepoint-bench';

async function backendFor(store) {
  if (store === 'local') {
    const { LocalBackend } = await import('@savepoint/backend-local');
    return { backend: new LocalBackend(), root: join(tmpdir(), 'savepoint-bench-loads') };
  }
  const { S3Backend } = await import('@savepoint/backend-s3');
  const { CreateBucketCommand, GetObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
  const endpoint = process.env[S3_ENDPOINTS[store]];
  if (!endpoint) throw new Error(`${S3_ENDPOINTS[store]} is not set: start the servers (bash scripts/servers.sh start)`);
  const client = new S3Client({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { ...creds } });
  await client.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => {});
  return {
    backend: new S3Backend({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { ...creds } }),
    root: `s3://${BUCKET}/loads`,
    client,
    GetObjectCommand,
  };
}

/** One figure in this process: seconds and peak RSS above the RSS just before it. */
async function measure(fn) {
  globalThis.gc?.();
  const base = process.memoryUsage().rss;
  const t = performance.now();
  await fn();
  const seconds = (performance.now() - t) / 1000;
  return { seconds, extraRss: process.resourceUsage().maxRSS * 1024 - base };
}

async function child(args) {
  const [, , , kind, store, path] = process.argv;
  const s = await backendFor(store);
  const core = await import('@savepoint/core');
  let result;
  if (kind === 'prepare' || kind === 'prepare-dir') {
    const per = Math.floor(BYTES / TENSORS / 4);
    const state = {};
    for (let i = 0; i < TENSORS; i++) state[`layer${i}`] = randomFillSync(new Float32Array(per));
    if (kind === 'prepare') {
      const written = await core.saveCheckpointFile(s.backend, path, { meta: { iter: 1 }, state_dict: state });
      result = { bytes: written.bytes };
    } else {
      await core.saveCheckpointDir(s.backend, path, { meta: { iter: 1 }, state_dict: state }, { maxShardBytes: BYTES / SHARDS });
      result = { bytes: BYTES };
    }
  } else if (kind === 'load') {
    result = await measure(() => core.loadCheckpoint(s.backend, path));
  } else if (kind === 'shards') {
    result = await measure(() => core.loadCheckpoint(s.backend, path, { concurrency: Number(args) }));
  } else if (kind === 'verify') {
    // What `savepoint verify <path>` does.
    result = await measure(async () => {
      const run = await core.Run.locate(path, { backend: s.backend });
      const report = await run.verify();
      await run.close();
      if (!report.ok || report.results.some((r) => r.note)) throw new Error(`verify: ${JSON.stringify(report)}`);
    });
  } else if (kind === 'baseline') {
    result = await measure(async () => {
      let bytes;
      if (store === 'local') bytes = await readFile(path);
      else {
        const key = path.slice(`s3://${BUCKET}/`.length);
        const body = await s.client.send(new s.GetObjectCommand({ Bucket: BUCKET, Key: key }));
        bytes = await body.Body.transformToByteArray();
      }
      createHash('sha256').update(bytes).digest('hex');
    });
  } else if (kind === 'remove') {
    if (await s.backend.isFile(path)) await s.backend.remove(path);
    else await s.backend.rmtree(path);
    result = {};
  }
  console.log(JSON.stringify(result));
  process.exit(0);
}

function run(kind, store, path, extra = '') {
  const out = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), 'child', kind, store, path, extra], {
    cwd: root,
    encoding: 'utf8',
    env: process.env,
    maxBuffer: 1 << 24,
  });
  if (out.status !== 0) throw new Error(`bench-loads ${kind} ${store} failed:\n${out.stderr}`);
  return JSON.parse(out.stdout.trim().split('\n').pop());
}

/** Python's safetensors load of the same file, timed and measured in its own interpreter. */
function python(path) {
  const py = `${root}.cache/venv/bin/python`;
  const code = [
    'import resource, sys, time, os',
    'from safetensors.numpy import load_file',
    'base = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")',
    't = time.perf_counter(); load_file(sys.argv[1]); s = time.perf_counter() - t',
    'print(\'{"seconds": %f, "extraRss": %d}\' % (s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base))',
  ].join('\n');
  return JSON.parse(execFileSync(py, ['-c', code, path], { encoding: 'utf8' }).trim());
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const mib = (b) => (b / 1024 / 1024).toFixed(0);
const ratio = (a, b) => (b === 0 ? 'n/a' : (a / b).toFixed(3));

export function main(stores = STORES) {
  if (!existsSync(`${root}.cache/servers.env`)) throw new Error('start the servers first (bash scripts/servers.sh start)');
  for (const line of readFileSync(`${root}.cache/servers.env`, 'utf8').split('\n')) {
    const [k, ...v] = line.split('=');
    if (k && process.env[k] === undefined) process.env[k] = v.join('=');
  }
  for (const store of stores) {
    const base =
      store === 'local' ? join(tmpdir(), `savepoint-bench-loads-${process.pid}`) : `s3://${BUCKET}/loads-${process.pid}`;
    const file = `${base}/one.safetensors`;
    const dir = `${base}/sharded`;
    const { bytes } = run('prepare', store, file);
    run('prepare-dir', store, dir);
    // The 2 GiB just written go to disk before anything is timed: the kernel's writeback of
    // them slowed whichever side ran first (a section run printed local loads at 1.77x
    // readFile; side by side, on a quiet disk, they take the same time).
    execFileSync('sync');
    if (store === 'local') readFileSync(file); // the page cache warm for every side alike
    const sides = store === 'local' ? ['load', 'baseline', 'verify', 'python'] : ['load', 'baseline', 'verify'];
    const runs = Object.fromEntries(sides.map((side) => [side, []]));
    for (let i = 0; i < REPEAT; i++) {
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(i + k) % sides.length];
        runs[side].push(side === 'python' ? python(file) : run(side, store, file));
      }
    }
    const time = (side) => median(runs[side].map((r) => r.seconds));
    const rss = (side) => median(runs[side].map((r) => r.extraRss));
    console.log(
      `\n== ${LABELS[store]}: full load of a ${mib(bytes)} MiB checkpoint (${TENSORS} F32 tensors), median of ${REPEAT}, each side in its own process ==`,
    );
    console.log(
      `load ${time('load').toFixed(2)} s; ${store === 'local' ? 'fs.readFile' : 'GetObject read whole'} + SHA-256 in Node ${time('baseline').toFixed(2)} s; ratio ${ratio(time('load'), time('baseline'))} (target <= 1.10)` +
        (store === 'local'
          ? `; Python safetensors.numpy.load_file (no hash) ${time('python').toFixed(2)} s, ratio load/Python ${ratio(time('load'), time('python'))}`
          : '; Python safetensors reads local files only'),
    );
    console.log(
      `peak memory above the process's own baseline, as a multiple of the file: load ${ratio(rss('load'), bytes)} (target <= 1.10 + 64 MiB: ${ratio(bytes * 1.1 + 64 * 1024 ** 2, bytes)}); ` +
        `readFile + SHA-256 ${ratio(rss('baseline'), bytes)}; verify ${mib(rss('verify'))} MiB (target <= 128 MiB), ${ratio(rss('verify'), bytes)}x` +
        (store === 'local' ? `; Python ${ratio(rss('python'), bytes)}` : ''),
    );
    const shardRuns = { 1: [], 2: [], 4: [] };
    for (let i = 0; i < REPEAT; i++) for (const c of [1, 2, 4]) shardRuns[c].push(run('shards', store, dir, String(c)).seconds);
    const seq = median(shardRuns[1]);
    console.log(
      `folder checkpoint, ${SHARDS} shards: sequential ${seq.toFixed(2)} s; 2 in flight ${median(shardRuns[2]).toFixed(2)} s, speed-up ${ratio(seq, median(shardRuns[2]))}x; ` +
        `4 in flight ${median(shardRuns[4]).toFixed(2)} s, speed-up ${ratio(seq, median(shardRuns[4]))}x`,
    );
    run('remove', store, file);
    run('remove', store, dir);
    if (store === 'local') rmSync(base, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'child') await child(process.argv[6]);
else if (fileURLToPath(import.meta.url) === process.argv[1]) {
  const stores = process.argv.slice(2).filter((a) => STORES.includes(a));
  main(stores.length > 0 ? stores : undefined);
}
