// `pnpm bench`: measurements, not tests. Each figure is printed next to a
// baseline measured in the same run, as a ratio:
//   1. store calls per save at steady state (policy engine, counting wrapper);
//   2. per network store (S3 on two servers: moto and versitygw): a 1 GiB stream up and down through savepoint vs the raw
//      SDK with the same part size and concurrency, with peak RSS (each in its own
//      process), BENCH_STREAM_REPEAT times (default 5: one run on these local servers
//      varies by about 7%), raw and savepoint interleaved, medians; downloads are also
//      measured in one process that reads one object by both sides in turns (between
//      processes the same download varied by 20% or more); beside the S3 figures, the
//      loopback limit (the same bytes through one TCP connection on 127.0.0.1, same run);
//   3. per network store: time the training loop is blocked by a save of a 256 MiB state,
//      asyncSave vs sync (the first save of a process, and the later ones: a training run
//      saves many times), and peak RSS of each (each in its own process);
//   4. per network store: bytes read to load 10% of a 256 MiB checkpoint's tensors, and to inspect it;
//   5. per network store: a 1 GiB directory checkpoint in 8 shards, parallel vs sequential;
//   6. per network store: rmtree of 10,000 objects vs deleting them one by one;
//   7. bytes uploaded per save point of an improving best, against one checkpoint's size;
//   9. (ours) incremental checkpoints: bytes per save with 90% frozen, space of ten kept, plain vs incremental
//      with nothing frozen, the kill sweep (`pnpm bench incremental` runs only this);
//   8. fit: a TensorFlow.js `model.fit` whose epochs compute for seconds on the CPU, with
//      the callback saving every epoch to S3 (moto, versitygw) and local disk: none vs sync vs
//      asyncSave, end to end, and (async - none) / (sync - none), the share of the save
//      cost asyncSave leaves (`pnpm bench fit` runs only this);
//   9. memory: extra memory of the saves of a 256 MiB state, sync and async (on the save
//      worker), on local disk, S3 and Azure, as a multiple of the state, what the hook
//      still holds after close(), and one S3 upload against its part buffers
//      (`pnpm bench memory` runs only this; scripts/bench-memory.mjs);
//  10. preempt: time from SIGTERM to the committed pointer for a 256 MiB state on S3 (moto, versitygw), sync
//      and asyncSave, against a plain synchronous save of the same state in the same
//      process (`node scripts/bench.mjs preempt` runs only this; goal <= 5 s).
//  11. loads (`pnpm bench loads` runs only this, scripts/bench-loads.mjs): a 1 GiB full load
//      on local disk and S3 (moto, versitygw) against readFile + SHA-256 and Python's safetensors, peak
//      memory of load and verify, and a folder checkpoint read with 1, 2 and 4 shards at once.
// BENCH_BYTES, BENCH_SAVE_BYTES, BENCH_SHARD_BYTES and BENCH_OBJECTS shrink the sizes for a quick look.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const BYTES = Number(process.env.BENCH_BYTES ?? 1024 ** 3);
const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 10_000);
const REPEAT = Math.max(3, Number(process.env.BENCH_REPEAT ?? 3));
const STREAM_REPEAT = Math.max(3, Number(process.env.BENCH_STREAM_REPEAT ?? 5));
const SAVE_BYTES = Number(process.env.BENCH_SAVE_BYTES ?? 256 * 1024 ** 2);
const SHARD_BYTES = Number(process.env.BENCH_SHARD_BYTES ?? 1024 ** 3);
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const only = process.argv.slice(2);
if (only.includes('loads')) {
  // `pnpm bench loads [local|s3|s3-versitygw]`: full loads, verify and shard reads (scripts/bench-loads.mjs), on the running servers.
  const { main, STORES } = await import('./bench-loads.mjs');
  const stores = only.filter((a) => STORES.includes(a));
  main(stores.length > 0 ? stores : undefined);
  process.exit(0);
}

function run(args) {
  const out = spawnSync(process.execPath, ['--expose-gc', `${root}scripts/bench-worker.mjs`, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: process.env,
    maxBuffer: 1 << 24,
  });
  if (out.status !== 0) throw new Error(`bench worker ${args.join(' ')} failed:\n${out.stderr}`);
  return JSON.parse(out.stdout.trim().split('\n').pop());
}

const mib = (b) => (b / 1024 / 1024).toFixed(0);
const ratio = (a, b) => (b === 0 ? 'n/a' : (a / b).toFixed(3));

// (ours) `node scripts/bench.mjs incremental` runs only this section (local disk; no servers).
function incrementalSection() {
  console.log('\n== incremental checkpoints (local disk) ==');
  const frozen = run(['incremental', 'frozen']);
  console.log(
    `90% of the state frozen (${mib(frozen.state)} MiB state): bytes uploaded per save / state: ${ratio(frozen.perSave, frozen.state)} (target <= 0.12); ` +
      `ten kept checkpoints occupy / one full checkpoint: ${ratio(frozen.occupied, frozen.state)} (target <= 2); first save / state: ${ratio(frozen.first, frozen.state)}`,
  );
  const plain = [];
  const incr = [];
  for (let i = 0; i < REPEAT; i++) {
    plain.push(run(['incremental', 'plain']));
    incr.push(run(['incremental', 'incr']));
  }
  const ms = (rs) => median(rs.map((r) => r.ms));
  const perSave = (rs) => median(rs.map((r) => r.perSave));
  console.log(
    `nothing frozen (32 MiB state, 6 saves, medians of ${REPEAT} interleaved runs): incremental / plain time: ${ratio(ms(incr), ms(plain))} (${ms(incr).toFixed(0)} / ${ms(plain).toFixed(0)} ms), ` +
      `bytes per save: ${ratio(perSave(incr), perSave(plain))} (target within 5%)`,
  );
  const sweep = run(['incremental', 'sweep']);
  console.log(
    `kill sweep (a crash before each of the ${sweep.scenarios} store writes of an incremental run, then a resume): checkpoints naming a missing object: ${sweep.naming}; unreferenced objects after the next save: ${sweep.unreferenced}`,
  );
}
if (only.includes('incremental')) {
  incrementalSection();
  process.exit(0);
}

console.log('== store calls per save (local disk, maxKeepCkpts 3, 1,000 iterations) ==');
const calls = run(['calls']);
console.log(
  `steady-state calls per save: ${calls.steady.join('/')} (distinct counts: ${new Set(calls.steady).size}); listings: ${calls.listings}; ` +
    `first save: ${calls.first} calls; ratio steady/first: ${ratio(calls.steady[0], calls.first)}`,
);

console.log('\n== bytes uploaded per save point of an improving best (local disk, a regular save and a new best every epoch) ==');
const bytes = run(['bytes']);
console.log(
  `uploaded per save point / one checkpoint (${mib(bytes.checkpoint)} MiB): ${bytes.perSavePoint.toFixed(3)} (target <= 1.05; 3.0 when the best was uploaded again and the regular checkpoint re-saved); bests copied by the store: ${bytes.copies}`,
);

if (!only.length) incrementalSection();

// Each store is measured on freshly started servers: the in-memory servers never free
// what a deleted object held (Azurite's collector is off for the tests), and gigabytes
// of one section must not weigh on the next. So the bench restarts the local servers:
// do not run it while a test run uses them.
const wasRunning = existsSync(`${root}.cache/servers.env`);
function freshServers() {
  execFileSync('bash', [`${root}scripts/servers.sh`, 'stop'], { stdio: 'inherit' });
  execFileSync('bash', [`${root}scripts/servers.sh`, 'start'], { stdio: 'inherit' });
  for (const line of readFileSync(`${root}.cache/servers.env`, 'utf8').split('\n')) {
    const [k, ...v] = line.split('=');
    if (k) process.env[k] = v.join('=');
  }
}
/** One run of scripts/bench-fit.mjs (its own process: TensorFlow.js and the SDK loaded fresh). */
function fitRun(mode, store) {
  // BENCH_FIT_PIN=1: the run starts on CPU 1 (its worker threads stay there) and
  // bench-fit.mjs moves its main thread, the one TensorFlow.js computes on, to CPU 0.
  const [command, prefix] =
    process.env.BENCH_FIT_PIN === '1' ? ['taskset', ['-c', '1', process.execPath]] : [process.execPath, []];
  const out = spawnSync(command, [...prefix, `${root}scripts/bench-fit.mjs`, mode, store], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' },
    maxBuffer: 1 << 24,
  });
  if (out.status !== 0) throw new Error(`bench-fit ${mode} failed:\n${out.stderr}`);
  return JSON.parse(out.stdout.trim().split('\n').pop());
}

/** One run of scripts/bench-memory.mjs (its own process, so the peak RSS is that save's alone). */
function memoryRun(args) {
  const out = spawnSync(process.execPath, ['--expose-gc', `${root}scripts/bench-memory.mjs`, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: '1' },
    maxBuffer: 1 << 24,
  });
  if (out.status !== 0) throw new Error(`bench-memory ${args.join(' ')} failed:\n${out.stderr}`);
  return JSON.parse(out.stdout.trim().split('\n').pop());
}

/**
 * One run of scripts/bench-preempt.mjs: the plain save's time (the step-1 save, from the
 * hook's "Saving" line to the step's end: measured in sync mode only), and the time from
 * the SIGTERM to the child's "committed" line and to its exit.
 */
function preemptRun(mode, server) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${root}scripts/bench-preempt.mjs`, mode, server], { cwd: root, env: process.env });
    let buffer = '';
    let stderr = '';
    let savingAt;
    let plainMs;
    let signalAt;
    let committedMs;
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (data) => {
      buffer += data;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith('log Saving checkpoint at 1 ')) savingAt = performance.now();
        else if (line === 'step 1' && savingAt !== undefined) plainMs = performance.now() - savingAt;
        else if (line === 'step 3' && signalAt === undefined) {
          signalAt = performance.now();
          child.kill('SIGTERM');
        } else if (line.startsWith('log Checkpoint committed and lease released')) committedMs = performance.now() - signalAt;
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 143 || committedMs === undefined) reject(new Error(`bench-preempt ${mode} exited ${code}:\n${stderr}`));
      else resolve({ plainMs, committedMs, exitMs: performance.now() - signalAt });
    });
  });
}

try {
  if (!only.length || only.includes('preempt')) {
    for (const server of ['s3', 's3-versitygw']) {
      freshServers();
      const runs = { sync: [], async: [] };
      for (let i = 0; i < REPEAT; i++)
        for (const mode of i % 2 ? ['async', 'sync'] : ['sync', 'async']) runs[mode].push(await preemptRun(mode, server));
      const plain = median(runs.sync.map((r) => r.plainMs)) / 1000;
      console.log(
        `\n== preempt: SIGTERM to the committed pointer, ${mib(SAVE_BYTES)} MiB state on ${server === 's3' ? 'S3 on moto' : 'S3 on versitygw'}, median of ${REPEAT} ==`,
      );
      console.log(`baseline: a plain synchronous save of the same state: ${plain.toFixed(2)} s`);
      for (const mode of ['sync', 'async']) {
        const committed = median(runs[mode].map((r) => r.committedMs)) / 1000;
        const exit = median(runs[mode].map((r) => r.exitMs)) / 1000;
        console.log(
          `${mode}: SIGTERM to committed pointer and released lease ${committed.toFixed(2)} s (goal <= 5 s), to exit ${exit.toFixed(2)} s; committed / plain save = ${ratio(committed, plain)}`,
        );
      }
    }
  }
  if (!only.length || only.includes('memory')) {
    freshServers();
    console.log(
      `\n== memory: extra memory of four save points of a ${mib(SAVE_BYTES)} MiB state (64 tensors; stores from backendArgs, so asyncSave runs on the save worker; parts 8 MiB x 4), median of ${REPEAT} ==`,
    );
    for (const store of ['local', 's3', 'azure']) {
      const cells = [];
      for (const mode of ['sync', 'async']) {
        const runs = Array.from({ length: REPEAT }, () => memoryRun(['save', store, mode, String(SAVE_BYTES)]));
        const extra = median(runs.map((r) => r.extraPeak));
        const held = median(runs.map((r) => r.heldAfterClose));
        const buffers = median(runs.map((r) => r.buffersPeak));
        cells.push(
          `${mode} ${mib(extra)} MiB = ${ratio(extra, SAVE_BYTES)}x the state${mode === 'async' ? `, state + ${mib(extra - SAVE_BYTES)} MiB` : ''} (main thread's buffers ${mib(buffers)} MiB; after close: ${mib(Math.max(0, held))} MiB)`,
        );
      }
      console.log(`${store.padEnd(5)}: ${cells.join('; ')}`);
    }
    console.log('goal: async <= 1.1x the state plus the upload buffers; sync <= the upload buffers; nothing held after close');
    // What an async save costs beyond the state is constant (the save worker's isolate with
    // its SDK, its sockets, the upload buffers): the same at half and at twice the state.
    for (const bytes of [SAVE_BYTES / 2, SAVE_BYTES * 2]) {
      const runs = Array.from({ length: REPEAT }, () => memoryRun(['save', 's3', 'async', String(bytes)]));
      const extra = median(runs.map((r) => r.extraPeak));
      console.log(
        `s3 async at ${mib(bytes)} MiB: ${mib(extra)} MiB = ${ratio(extra, bytes)}x the state, state + ${mib(extra - bytes)} MiB`,
      );
    }
    const putLabels = {
      stream: 'a stream of 4 MiB chunks',
      stable: 'the same stream with stableChunks, as a checkpoint save sends it',
      bytes: 'one buffer',
    };
    for (const mode of ['stream', 'stable', 'bytes']) {
      const runs = Array.from({ length: REPEAT }, () => memoryRun(['put', 's3', mode, String(128 * 1024 ** 2)]));
      const extra = median(runs.map((r) => r.extraPeak));
      const parts = runs[0].partTimesQueue;
      console.log(
        `s3 put of 128 MiB (${putLabels[mode]}): ${mib(extra)} MiB extra, ${ratio(extra, parts)}x part size x queue size (${mib(parts)} MiB)`,
      );
    }
  }
  if (!only.length || only.includes('fit')) {
    freshServers();
    // BENCH_FIT_PIN=1: training alone on CPU 0, the servers (every thread) and the save
    // worker on CPU 1: what the saves cost training when the store does not compute on
    // the core training uses, as a real S3 on another machine does not.
    if (process.env.BENCH_FIT_PIN === '1') {
      for (const name of ['moto', 'versitygw', 'fake-gcs', 'azurite']) {
        const pidFile = `${root}.cache/${name}.pid`;
        if (existsSync(pidFile)) execFileSync('taskset', ['-a', '-p', '-c', '1', readFileSync(pidFile, 'utf8').trim()]);
      }
    }
    // BENCH_FIT_STORES (comma-separated) runs the section on some of them: a longer fit
    // (BENCH_FIT_EPOCHS) on all three takes well over half an hour.
    const fitStores = (process.env.BENCH_FIT_STORES ?? 's3,s3-versitygw,local').split(',').filter(Boolean);
    for (const store of fitStores) {
      const runs = { none: [], sync: [], async: [] };
      let info;
      for (let i = 0; i < REPEAT; i++) {
        // Interleaved, in rotating order: a slow moment of the machine hits every mode alike.
        const modes = ['none', 'sync', 'async'];
        for (let k = 0; k < modes.length; k++) {
          const mode = modes[(i + k) % modes.length];
          info = fitRun(mode, store);
          runs[mode].push(info);
        }
      }
      const total = (mode) => median(runs[mode].map((r) => r.seconds));
      const waited = (mode) => median(runs[mode].map((r) => r.blocked));
      const [none, sync, async] = [total('none'), total('sync'), total('async')];
      console.log(
        `\n== fit: TensorFlow.js model.fit, ${info.epochs} CPU-bound epochs, ${mib(info.weightBytes)} MiB of weights (and Adam's state) saved every epoch to ${{ s3: 'S3 on moto', 's3-versitygw': 'S3 on versitygw', local: 'local disk' }[store]}${store === 'local' ? '' : ' (the local server, on the same 2 cores)'}, median of ${REPEAT} ==`,
      );
      console.log(
        `end to end: no checkpoints ${none.toFixed(2)} s, synchronous saves ${sync.toFixed(2)} s, asyncSave ${async.toFixed(2)} s; ` +
          `(async - none) / (sync - none) = ${ratio(async - none, sync - none)} (target <= 0.10)`,
      );
      console.log(
        `training waited on the callback: sync ${waited('sync').toFixed(2)} s, async ${waited('async').toFixed(2)} s, ratio ${ratio(waited('async'), waited('sync'))}`,
      );
      // Where asyncSave's remaining cost goes: the train begin (lease, save worker), the
      // epoch-end waits, the last save (no epoch is left to overlap it: alone it is about
      // 1 / epochs of the synchronous cost), and what is left: training slowed by the saves
      // beside it (the worker, the server on the same 2 cores, the memory bandwidth they share).
      const part = (key) => median(runs.async.map((r) => r[key]));
      const [began, drained] = [part('begin'), part('drain')];
      const slowed = async - none - began - waited('async') - drained;
      const share = (seconds) => `${seconds.toFixed(2)} s (${ratio(seconds, sync - none)})`;
      console.log(
        `asyncSave's cost, each / (sync - none), summing to the ratio above: train begin ${share(began)}, ` +
          `epoch-end waits ${share(waited('async'))}, the last save after the last epoch ${share(drained)}, ` +
          `training slowed beside the saves ${share(slowed)}`,
      );
    }
  }
  let loopbackLimit;
  for (const store of ['s3', 's3-versitygw', 'gcs', 'azure']) {
    if (only.length && !only.includes(store)) continue;
    console.log(
      `\n== ${store}: ${mib(BYTES)} MiB stream, savepoint vs raw SDK (same part size and concurrency), median of ${STREAM_REPEAT} runs, interleaved in alternating order ==`,
    );
    const raws = [];
    const ourRuns = [];
    for (let i = 0; i < STREAM_REPEAT; i++) {
      // Interleaved, and in alternating order (raw first, then savepoint first): a slow
      // moment of the machine, or a server that slows as it fills, hits both sides alike.
      const order = i % 2 === 0 ? ['raw', 'savepoint'] : ['savepoint', 'raw'];
      for (const impl of order) {
        // Every run on fresh servers: Azurite slows as it fills (it keeps deleted data),
        // which made whichever side ran later in a pair look slower.
        freshServers();
        (impl === 'raw' ? raws : ourRuns).push(run(['stream', store, impl, String(BYTES)]));
      }
    }
    const speeds = (label, rawSeconds, ourSeconds, note) => {
      const r = BYTES / median(rawSeconds) / 1024 / 1024;
      const s = BYTES / median(ourSeconds) / 1024 / 1024;
      console.log(`${label} raw ${r.toFixed(1)} MiB/s  savepoint ${s.toFixed(1)} MiB/s  ratio ${ratio(s, r)}${note}`);
    };
    if (store.startsWith('s3')) {
      // What the machine allows at all, so that an S3 ratio of 1.0 at a server's own
      // ceiling is not read as savepoint's: measured once per run, beside both servers.
      loopbackLimit ??= (() => {
        const runs = Array.from({ length: STREAM_REPEAT }, () => run(['loopback', String(BYTES)]));
        return { up: median(runs.map((x) => x.up)), down: median(runs.map((x) => x.down)) };
      })();
      const raw = BYTES / median(raws.map((x) => x.up)) / 1024 / 1024;
      const limitUp = BYTES / loopbackLimit.up / 1024 / 1024;
      const limitDown = BYTES / loopbackLimit.down / 1024 / 1024;
      console.log(
        `loopback limit (one TCP connection on 127.0.0.1 to another process, median of ${STREAM_REPEAT}): up ${limitUp.toFixed(0)} MiB/s, down ${limitDown.toFixed(0)} MiB/s; the raw SDK's upload to ${store === 's3' ? 'moto' : 'versitygw'} reaches ${ratio(raw, limitUp)} of it`,
      );
    }
    speeds(
      'up  ',
      raws.map((x) => x.up),
      ourRuns.map((x) => x.up),
      ' (target >= 0.95)',
    );
    // Downloads: one object, read by both sides in turns within one process on one
    // server (see bench-worker's 'download'); the separate processes' figure follows for reference.
    freshServers();
    const downloads = run(['download', store, String(STREAM_REPEAT), String(BYTES)]);
    speeds(
      'down',
      downloads.raw,
      downloads.savepoint,
      ` (target >= 0.95; one process, same object, ${STREAM_REPEAT} reads each, alternating)`,
    );
    speeds(
      'down',
      raws.map((x) => x.down),
      ourRuns.map((x) => x.down),
      " (separate processes on fresh servers, after each side's own upload: for reference)",
    );
    const rawRss = median(raws.map((x) => x.maxRss));
    const ourRss = median(ourRuns.map((x) => x.maxRss));
    console.log(
      `peak RSS (median): raw ${mib(rawRss)} MiB, savepoint ${mib(ourRss)} MiB, ratio ${ratio(ourRss, rawRss)} (target <= 1.10)`,
    );

    freshServers();
    console.log(`== ${store}: a save of a ${mib(SAVE_BYTES)} MiB state blocking training, async vs sync, median of ${REPEAT} ==`);
    const syncSaves = [];
    const asyncSaves = [];
    for (let i = 0; i < REPEAT; i++) {
      const order = i % 2 === 0 ? ['sync', 'async'] : ['async', 'sync'];
      for (const mode of order) (mode === 'sync' ? syncSaves : asyncSaves).push(run(['save', store, mode, String(SAVE_BYTES)]));
    }
    const ms = (x) => `${(x * 1000).toFixed(0)} ms`;
    for (const which of ['first', 'steady']) {
      const blockedSync = median(syncSaves.map((x) => x.blocked[which]));
      const blockedAsync = median(asyncSaves.map((x) => x.blocked[which]));
      console.log(
        `training blocked, ${which === 'first' ? 'first save of a process' : 'later saves (median)'}: sync ${ms(blockedSync)}, async ${ms(blockedAsync)} (snapshot copy included), ratio ${ratio(blockedAsync, blockedSync)}${which === 'steady' ? ' (target <= 0.05)' : ''}`,
      );
    }
    console.log(
      `until committed: sync ${median(syncSaves.map((x) => x.committed)).toFixed(2)} s, async ${median(asyncSaves.map((x) => x.committed)).toFixed(2)} s (per save)`,
    );
    const rssSync = median(syncSaves.map((x) => x.maxRss));
    const rssAsync = median(asyncSaves.map((x) => x.maxRss));
    console.log(
      `peak RSS: sync ${mib(rssSync)} MiB, async ${mib(rssAsync)} MiB, ratio ${ratio(rssAsync, rssSync)} (the snapshot is the one extra copy of the ${mib(SAVE_BYTES)} MiB state)`,
    );

    console.log(`== ${store}: lazy reads of a ${mib(SAVE_BYTES)} MiB checkpoint (100 tensors) ==`);
    const lazy = run(['lazy', store, 'reader', String(SAVE_BYTES)]);
    console.log(
      `10% of the tensors: ${mib(lazy.tenPercentBytes)} MiB read, ratio to the file ${ratio(lazy.tenPercentBytes, lazy.fileBytes)} (target <= 0.12); ` +
        `inspect: ${(lazy.inspectBytes / 1024).toFixed(1)} KiB read (target <= 1024 KiB)`,
    );

    freshServers();
    console.log(
      `== ${store}: directory checkpoint of ${mib(SHARD_BYTES)} MiB in 8 shards, parallel (4) vs sequential, median of ${REPEAT}, interleaved in alternating order ==`,
    );
    // One run of each printed GCS loads at 0.793x where side-by-side runs gave 1.2x to 1.4x:
    // medians of interleaved runs, so one slow moment of the machine decides nothing.
    const shardRuns = { 1: [], 4: [] };
    for (let i = 0; i < REPEAT; i++) {
      for (const c of i % 2 === 0 ? [1, 4] : [4, 1]) shardRuns[c].push(run(['shards', store, String(c), String(SHARD_BYTES)]));
    }
    const shardMedian = (c) => ({ up: median(shardRuns[c].map((r) => r.up)), down: median(shardRuns[c].map((r) => r.down)) });
    const [sequential, parallel] = [shardMedian(1), shardMedian(4)];
    console.log(
      `save: sequential ${sequential.up.toFixed(2)} s, parallel ${parallel.up.toFixed(2)} s, speed-up ${ratio(sequential.up, parallel.up)}x; ` +
        `load: sequential ${sequential.down.toFixed(2)} s, parallel ${parallel.down.toFixed(2)} s, speed-up ${ratio(sequential.down, parallel.down)}x`,
    );

    freshServers();
    console.log(`== ${store}: delete ${OBJECTS} objects ==`);
    const one = run(['delete', store, 'one-by-one', String(OBJECTS)]);
    const tree = run(['delete', store, 'rmtree', String(OBJECTS)]);
    console.log(
      `one by one: ${one.requests} requests, ${one.seconds.toFixed(2)} s; rmtree: ${tree.requests} requests, ${tree.seconds.toFixed(2)} s; ` +
        `speed-up ${ratio(one.seconds, tree.seconds)}x, requests ratio ${ratio(tree.requests, one.requests)}`,
    );
  }
  if (!only.length) {
    freshServers();
    (await import('./bench-loads.mjs')).main();
  }
} finally {
  if (!wasRunning) execFileSync('bash', [`${root}scripts/servers.sh`, 'stop'], { stdio: 'inherit' });
}
