// One process of `pnpm bench preempt`: trains a 256 MiB state (BENCH_SAVE_BYTES) with
// saveOnSignals to S3 on a local server (argv[3]), sync or asyncSave (argv[2]). It saves once
// at step 1 synchronously-timed by the driver (the baseline: a plain save of the same
// state), prints each completed step, and the driver sends SIGTERM; the hook then
// saves, commits the pointer, releases the lease and exits 143.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { registerS3Backend } from '../packages/backend-s3/dist/index.js';
import { CheckpointHook, ReferenceTrainer } from '../packages/core/dist/index.js';

const mode = process.argv[2];
// argv[3]: which local S3 server, `s3` (moto) or `s3-versitygw`.
const server = process.argv[3] ?? 's3';
const bytes = Number(process.env.BENCH_SAVE_BYTES ?? 256 * 1024 ** 2);
const variable = server === 's3-versitygw' ? 'SAVEPOINT_TEST_S3_VERSITYGW_ENDPOINT' : 'SAVEPOINT_TEST_S3_ENDPOINT';
const endpoint = process.env[variable];
if (!endpoint) throw new Error(`${variable} is not set: start the servers (bash scripts/servers.sh start)`);
// The static credentials scripts/servers.sh gives versitygw (moto takes any).
const s3 = {
  endpoint,
  forcePathStyle: true,
  region: 'us-east-1',
  credentials: { accessKeyId: 'testing-access-key', secretAccessKey: 'testing-secret-key-0123456789' },
};
await new S3Client(s3).send(new CreateBucketCommand({ Bucket: 'savepoint-bench' })).catch(() => {});
registerS3Backend();

const weights = new Float32Array(bytes / 4);
const model = {
  trainStep() {
    // A short step that changes the state (a real step would compute for longer).
    for (let i = 0; i < weights.length; i += 4096) weights[i] += 1;
    return 0;
  },
  stateDict: () => ({ w: weights }),
  loadStateDict() {},
};
const out = (line) => process.stdout.write(`${line}\n`);
const trainer = new ReferenceTrainer({
  workDir: `s3://savepoint-bench/preempt-${mode}-${Date.now().toString(36)}`,
  backendArgs: s3,
  model,
  checkpointHook: new CheckpointHook({
    backendArgs: s3,
    saveAtSteps: [1],
    saveLast: false,
    saveOptimizer: false,
    asyncSave: mode === 'async',
    saveOnSignals: ['SIGTERM'],
    preemptionGraceMs: 60_000,
  }),
  itersPerEpoch: 1,
  maxEpochs: 1_000_000,
  logger: { info: (m) => out(`log ${m}`), warn: (m) => out(`log ${m}`) },
  shouldStop: ({ epoch }) => {
    out(`step ${epoch}`);
    return false;
  },
});
await trainer.train();
