// Writes the reliability report from the figures the reliability tests recorded
// in test-results/reliability/ during the last test run. Nothing here is typed by
// hand. A test run writes test-results/reliability.md (never a tracked file);
// `pnpm reliability:docs` refreshes docs/reliability.md on purpose.
// Usage: node scripts/reliability-report.mjs [output path]
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';

const dir = 'test-results/reliability';
if (!existsSync(dir)) {
  console.error('[reliability] no figures recorded: the reliability tests did not run');
  process.exit(0);
}
const figures = Object.fromEntries(
  readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'))]),
);
const lines = [
  '# Reliability report',
  '',
  `Produced by \`pnpm reliability:docs\` from the figures the tests in \`packages/reliability\` recorded on ${new Date().toISOString().slice(0, 10)}. Do not edit by hand.`,
  '',
];
const faults = figures['fault-injection']?.stores ?? {};
lines.push(
  '## Faults injected and survived',
  '',
  "A proxy between each SDK and its local server answered 10% of requests with 500/503/429 (the cloud's own error bodies), a reset, or a stall, during a 100-save run with rotation and best tracking. Surviving checkpoints were compared byte for byte with a fault-free run.",
  '',
);
lines.push(
  '| store | requests | faults injected | faults survived | 500 | 503 | 429 | reset | stall | permanent 403: requests sent | failed after |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
);
for (const store of ['s3', 's3-versitygw', 'gcs', 'azure']) {
  const f = faults[store];
  const deny = faults[`${store}-403`];
  if (!f) continue;
  const k = f.byKind;
  lines.push(
    `| ${store} | ${f.requests} | ${f.faultsInjected} | ${f.faultsSurvived} | ${k.status500} | ${k.status503} | ${k.status429} | ${k.reset} | ${k.stall} | ${deny?.requests ?? '-'} | ${deny ? `${deny.failedFastMs} ms` : '-'} |`,
  );
}
const large = figures['large-faults']?.stores ?? {};
if (Object.keys(large).length > 0) {
  lines.push(
    '',
    '## 30% faults on multi-part objects',
    '',
    "Each store saved and loaded objects of 3.5 parts (the store's smallest part size) through the proxy with 30% of requests faulted, also with resets after the server applied a request and resets in the middle of a response body. Every save and every load had to come back byte for byte.",
    '',
    '| store | object size | part size | saves | loads | requests | faults | 500 | 503 | 429 | reset before | stall | reset mid-body | reset after apply |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const [store, f] of Object.entries(large)) {
    const k = f.byKind;
    const mib = (b) => `${(b / 1024 / 1024).toFixed(2)} MiB`;
    lines.push(
      `| ${store} | ${mib(f.objectBytes)} | ${mib(f.partBytes)} | ${f.saves} | ${f.loads} | ${f.requests} | ${f.faultsInjected} | ${k.status500} | ${k.status503} | ${k.status429} | ${k.reset} | ${k.stall} | ${k.bodyReset} | ${k.appliedReset} |`,
    );
  }
}
const crash = figures.crash?.stores ?? {};
lines.push(
  '',
  '## Kills and recoveries',
  '',
  'A child process trained against each store and was killed with SIGKILL at seeded moments, every other run with asynchronous saves; after each kill the pointer had to name a complete, loadable checkpoint, and a resume had to bring rotation back to `maxKeepCkpts` with one best.',
  '',
);
lines.push('| store | runs | kills | of them with asyncSave | recoveries | interrupted during |', '|---|---|---|---|---|---|');
for (const [store, c] of Object.entries(crash)) {
  const during = Object.entries(c.interruptedDuring ?? {})
    .map(([op, n]) => `${op} ${n}`)
    .join(', ');
  lines.push(`| ${store} | ${c.runs} | ${c.kills} | ${c.asyncKills ?? 0} | ${c.recoveries} | ${during} |`);
}
const hostile = figures['hostile-input'];
if (hostile) {
  lines.push(
    '',
    '## Hostile input',
    '',
    `${hostile.casesTried} hostile cases tried (wrong option types for every hook option and every backendArgs field, unknown options, escaping, empty and NUL paths on every store); each got a ConfigError naming the option or an InvalidPathError before any request.`,
    '',
  );
  lines.push('| target | cases |', '|---|---|');
  for (const [target, n] of Object.entries(hostile.byTarget)) lines.push(`| ${target} | ${n} |`);
}
const ownership = figures.ownership?.stores ?? {};
if (Object.keys(ownership).length > 0) {
  lines.push(
    '',
    '## Ownership attacks',
    '',
    "Each attack ran against a run beside another run (the victim) on the same store. Hostile pointers had to be refused with ForeignPathError; hostile runtime-info paths warned about and never deleted; a copied run resumed in its new place; strangers' files in the run folder survived prune; a second writer and a `prune --yes` on a leased run failed with LeaseHeldError. After every attack the victim's files were compared with a snapshot: unchanged.",
    '',
  );
  lines.push(
    '| store | hostile pointers refused | hostile runtime-info paths ignored | copied runs resumed | foreign files kept | concurrent writers refused |',
    '|---|---|---|---|---|---|',
  );
  for (const [store, o] of Object.entries(ownership)) {
    lines.push(
      `| ${store} | ${o.hostilePointers} | ${o.hostileRuntimeInfo} | ${o.copiedRuns} | ${o.foreignFiles} | ${o.concurrentWriters} |`,
    );
  }
}
const races = figures['lease-races']?.stores ?? {};
const paused = figures['paused-writer']?.stores ?? {};
if (Object.keys(races).length > 0 || Object.keys(paused).length > 0) {
  lines.push(
    '',
    '## Take-over races and paused writers',
    '',
    "Take-over races: two jobs take over one expired lease at once through `Run.acquireLease`, the second on a link slowed by 1-3 round trips on one kind of request per round, so its steps land before, between and after the first's. A round counts when exactly one job holds the lease and the other fails with LeaseHeldError. Paused writers: a real job stops itself with SIGSTOP (before a pointer move, sync and async; before a deletion; in the middle of a synchronous step), its lease expires, a successor takes over and trains on; continued with SIGCONT, the job must fail with LeaseHeldError, and every object of the run must be as the successor left it.",
    '',
    '| store | take-over races | one holder | paused-writer scenarios | paused writer stopped | run unchanged |',
    '|---|---|---|---|---|---|',
  );
  for (const store of [...new Set([...Object.keys(races), ...Object.keys(paused)])]) {
    const r = races[store];
    const p = paused[store];
    lines.push(
      `| ${store} | ${r?.rounds ?? '-'} | ${r?.oneHolder ?? '-'} | ${p?.scenarios ?? '-'} | ${p?.pausedWriterStopped ?? '-'} | ${p?.runUnchanged ?? '-'} |`,
    );
  }
}
const secrets = figures.secrets;
if (secrets) {
  lines.push(
    '',
    '## Secrets',
    '',
    `${secrets.credentialsPlanted} recognisable credentials were planted (S3 keys and session token, an Azure account key and SAS, a GCS private key, and Azurite's dev key); ${secrets.outputsChecked} captured outputs (logs, console, errors with stack and cause, checkpoint bytes, the pointer, CLI output with --verbose) contained none of them.`,
  );
}
const shapes = figures['secret-shapes'];
if (shapes) {
  lines.push(
    '',
    `${shapes.cases} credentials in the wrong shape (S3 credentials as an "id:secret" string, a GCS service-account JSON as keyFilename, a PEM key inside JSON, an Azure SAS URL as a path, a syntax error in --backend-args) were each described by type and length or refused, never echoed.`,
  );
}
const bytes = figures['hostile-bytes'];
if (bytes) {
  lines.push(
    '',
    '## Hostile bytes',
    '',
    `${bytes.corruptFiles} hand-written corrupt safetensors files (null and array headers, non-string metadata, unknown dtypes, negative, reversed, overlapping and gapped offsets, shape/span mismatches, truncated and trailing data, reserved names) and ${bytes.fuzzedHeaders} generated hostile headers were decoded: every one decoded or failed with CorruptCheckpointError, nothing else. A flipped tensor byte fails the data SHA-256 recorded in every header.`,
  );
}
const checkpoints = figures['hostile-checkpoints'];
if (checkpoints) {
  lines.push(
    '',
    `${checkpoints.refused} hostile checkpoints (a tensor defined in two shards, a savepoint header stripped of its data hash, a shard without its hash, a manifest listing one shard 1,000 times or over the 100 MB bound, shard entries of the wrong type or with a path, a damaged or swapped source given to publish, directly and at \`afterTrain\`) were each refused with CorruptCheckpointError naming what is wrong; publishing wrote nothing.`,
  );
}
const sealedCheckpoints = figures['sealed-checkpoints'];
if (sealedCheckpoints) {
  lines.push(
    '',
    `${sealedCheckpoints.refused} checkpoints named by the run's pointer had their metadata edited with their data, and so their data hash, intact (\`meta\` in a file's header or a folder's manifest, on every store): each still loaded without the seal, and each was refused with CorruptCheckpointError on resume and by \`verify\` against the seal the pointer records.`,
  );
}
const output = process.argv[2] ?? 'test-results/reliability.md';
writeFileSync(output, `${lines.join('\n')}\n`);
console.error(`[reliability] wrote ${output}`);
