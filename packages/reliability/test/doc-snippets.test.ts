// Every fenced code block of the README, docs/ and the packages' READMEs runs in CI, so
// a snippet cannot go stale (issue 27). Each block is found by its file and first line
// and has a plan below: TypeScript and shell blocks are executed as written (TypeScript
// transpiled, in a child process, against the built packages and the local servers;
// only what the plan lists is substituted: a bucket for `s3://bucket`, a server's
// endpoint, a free port, a prelude defining the variables a snippet takes as given);
// the few that cannot run here (a fresh clone's install, the CI command itself, a
// contract suite that needs a test runner) are mirrored by a test whose name or file is
// named and checked to exist. A block without a plan fails this test.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ensureBucket as ensureGcsBucket, server as gcsServer } from '../../backend-gcs/test/gcs-setup.js';
import { ensureBucket as ensureS3Bucket, server as s3Server, testCredentials } from '../../backend-s3/test/s3-setup.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURE = join(ROOT, 'packages/tfjs/test/fixture-model.mjs');

interface Snippet {
  file: string;
  lang: string;
  code: string;
  /** The first non-empty line: with the file, what identifies the block in the plans. */
  first: string;
}

function snippets(): Snippet[] {
  const files = [
    'README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
    ...readdirSync(join(ROOT, 'packages')).map((p) => `packages/${p}/README.md`),
  ].filter((f) => {
    try {
      readFileSync(join(ROOT, f));
      return true;
    } catch {
      return false;
    }
  });
  const out: Snippet[] = [];
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    // Fences at any indentation (a block inside a list item is indented).
    for (const m of text.matchAll(/^([ \t]*)```([a-z]*)\n([\s\S]*?)^\1```[ \t]*$/gm)) {
      const indent = m[1] as string;
      const code = (m[3] as string)
        .split('\n')
        .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
        .join('\n');
      out.push({
        file,
        lang: m[2] || 'text',
        code,
        first:
          code
            .split('\n')
            .find((l) => l.trim())
            ?.trim() ?? '',
      });
    }
  }
  return out;
}

type Plan =
  | {
      run: 'ts';
      store?: 's3' | 'gcs';
      prelude?: string;
      replace?: [string, string][];
      epilogue?: string;
      /** What the child's stderr must not, and must, hold. */
      output?: { absent: string; present: string };
    }
  | { run: 'sh'; replace?: [string, string][] }
  | { check: 'json' }
  | { check: 'npm-install' }
  | { mirror: string; contains: string; why: string };

const S3_BUCKET = "'s3://bucket/";
const tfPrelude = `import * as __fixture from ${JSON.stringify(FIXTURE)};\nconst model = __fixture.buildModel();\nconst { x, y } = __fixture.dataset();\n`;

/** Plans by `file :: first line`. */
const PLANS: Record<string, Plan> = {
  'README.md :: # 1. install everything and run the demo on local disk': {
    mirror: 'examples/demo/test/demo.test.ts',
    contains: 'demo',
    why: "a fresh clone's install and first build; the demo itself is run by its test",
  },
  "README.md :: # 1. an S3 server on 127.0.0.1:9000: moto, installed into the project's virtualenv (.cache/venv)": {
    run: 'sh',
    // The packages are built before the tests; `pnpm demo` would rebuild them under running tests.
    replace: [['pnpm demo ', 'node examples/demo/dist/demo.js ']],
  },
  "README.md :: import { CheckpointHook, ReferenceTrainer } from '@savepoint/core';": { run: 'ts' },
  "README.md :: import { registerS3Backend } from '@savepoint/backend-s3';": {
    run: 'ts',
    store: 's3',
    prelude: tfPrelude,
    epilogue: `if (JSON.stringify(loaded.getWeights().map((w) => Array.from(w.dataSync()))) !== JSON.stringify(model.getWeights().map((w) => Array.from(w.dataSync())))) throw new Error('the loaded model differs');`,
  },
  "README.md :: const checkpoint = new SavepointCheckpoint({ workDir: './work_dirs/by-batch', byEpoch: false, interval: 1, maxKeepCkpts: 2 });":
    {
      run: 'ts',
      prelude: `${tfPrelude}import { SavepointCheckpoint } from '@savepoint/tfjs';\nimport { registerLocalBackend } from '@savepoint/backend-local';\nregisterLocalBackend();\n`,
      epilogue: `if (checkpoint.position.iter !== 9) throw new Error('trained ' + checkpoint.position.iter + ' batches');`,
    },
  "README.md :: import { registerLocalBackend } from '@savepoint/backend-local';": {
    run: 'ts',
    epilogue: `if (checkpoint.step !== maxSteps) throw new Error('stopped at ' + checkpoint.step);\nconst { readdirSync } = await import('node:fs');\nconst names = readdirSync('./work_dirs/custom-loop');\nif (!names.includes('iter_300.safetensors') || !names.some((n) => n.startsWith('best_loss_iter_'))) throw new Error(names.join(' '));`,
  },
  'README.md :: base.trainable = false; // a large frozen base, a small trainable head': {
    mirror: 'packages/tfjs/test/tfjs-incremental.test.ts',
    contains: 'incremental: true',
    why: 'transfer learning with incremental: true runs a real TensorFlow.js fit with a frozen base in tfjs-incremental.test.ts',
  },
  'docs/checkpoint-policy.md :: objects = os.path.join(os.path.dirname(os.path.normpath(ckpt_dir)), "savepoint-objects")': {
    mirror: 'examples/python/load_incremental.py',
    contains: 'savepoint-objects',
    why: "the Python loader's lines are examples/python/load_incremental.py, run against Python's safetensors by core/test/python-interop.test.ts",
  },
  'README.md :: const hook = new CheckpointHook({': {
    mirror: 'packages/reliability/src/preempt-child.ts',
    contains: "saveOnSignals: ['SIGTERM', 'SIGINT']",
    why: 'a preemptible job ends on a signal: the kill test runs such a training child (src/preempt-child.ts) on every store and sends it SIGTERM',
  },
  'README.md :: const hook = new CheckpointHook({ interval: 1, maxKeepCkpts: 3, asyncSave: true, maxPendingSaves: 1 });': {
    run: 'ts',
    prelude: "import { CheckpointHook } from '@savepoint/core';\n",
  },
  "README.md :: import { loadCheckpoint, openCheckpoint } from '@savepoint/core';": {
    run: 'ts',
    store: 's3',
    prelude: [
      "import { getBackend as __getBackend, saveCheckpointFile as __save, Tensor as __Tensor } from '@savepoint/core';",
      "import { registerS3Backend as __register } from '@savepoint/backend-s3';",
      '__register();',
      "const path = 's3://bucket/run1/epoch_10.safetensors';",
      'const store = __getBackend(path);',
      "await __save(store, path, { meta: { epoch: 10 }, state_dict: { 'fc.weight': new __Tensor(new Float32Array(6), [2, 3]) }, optimizer: { lr: 0.1 }, message_hub: {} });",
      '',
    ].join('\n'),
    epilogue:
      "if (JSON.stringify(reader.keys) !== JSON.stringify(['meta', 'state_dict', 'optimizer', 'message_hub'])) throw new Error(String(reader.keys));\nif (weights.optimizer !== undefined) throw new Error('optimizer fetched');",
  },
  "README.md :: import { getBackend } from '@savepoint/core';": {
    run: 'ts',
    store: 'gcs',
    prelude: "import { registerGcsBackend as __register } from '@savepoint/backend-gcs';\n__register();\n",
  },
  'README.md :: const warn = console.warn;': {
    run: 'ts',
    epilogue: "console.warn('Hi, looks like you are running TensorFlow.js in Node.js.');\nconsole.warn('another warning');",
    output: { absent: 'looks like you are running TensorFlow.js', present: 'another warning' },
  },
  'docs/writing-a-backend.md :: {': { check: 'json' },
  "docs/writing-a-backend.md :: import { registerBackend } from '@savepoint/core/store';": {
    run: 'ts',
    prelude: 'class MyBackend { constructor(args) { this.args = args; } }\n',
    epilogue:
      "registerMyBackend();\nconst { getBackend: __get } = await import('@savepoint/core');\nif (!(__get('mine://bucket/run') instanceof MyBackend)) throw new Error('not registered');",
  },
  'docs/writing-a-backend.md :: // test/contract.test.ts': {
    mirror: 'examples/memory-backend/test/contract.test.ts',
    contains: 'testCheckpointPolicy(',
    why: 'a contract suite runs inside a test runner: the example backend runs exactly this against itself',
  },
};
for (const pkg of ['backend-azure', 'backend-gcs', 'backend-local', 'backend-s3', 'backend-test-suite', 'core', 'tfjs']) {
  PLANS[`packages/${pkg}/README.md :: npm install`] = { check: 'npm-install' };
}
PLANS['packages/cli/README.md :: npm install'] = {
  mirror: 'packages/cli/test/cli.test.ts',
  contains: "'prune'",
  why: 'a global install, then ls, inspect, verify and prune on cloud buckets: the CLI tests run each command on every store',
};
Object.assign(PLANS, {
  "packages/backend-azure/README.md :: import { AzureBackend, registerAzureBackend } from '@savepoint/backend-azure';": {
    run: 'ts',
  },
  "packages/backend-gcs/README.md :: import { GcsBackend, registerGcsBackend } from '@savepoint/backend-gcs';": { run: 'ts' },
  "packages/backend-local/README.md :: import { LocalBackend, registerLocalBackend } from '@savepoint/backend-local';": {
    run: 'ts',
    replace: [['/data/checkpoints', './data/checkpoints']],
  },
  "packages/backend-s3/README.md :: import { S3Backend, registerS3Backend } from '@savepoint/backend-s3';": { run: 'ts' },
  "packages/backend-test-suite/README.md :: import { testBackend, testCheckpointPolicy } from '@savepoint/backend-test-suite';": {
    mirror: 'examples/memory-backend/test/contract.test.ts',
    contains: 'testBackend(',
    why: 'the suite registers tests, so it runs inside vitest: the example backend does exactly this',
  },
  "packages/core/README.md :: import { CheckpointHook, loadCheckpoint, openCheckpoint } from '@savepoint/core';": { run: 'ts' },
  "packages/tfjs/README.md :: import { registerS3Backend } from '@savepoint/backend-s3';": {
    run: 'ts',
    store: 's3',
    prelude: tfPrelude,
  },
} satisfies Record<string, Plan>);

function keyOf(s: Snippet): string {
  const first = s.lang === 'sh' && s.first.startsWith('npm install') ? 'npm install' : s.first;
  return `${s.file} :: ${first}`;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

const prefix = `snippets-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`;
const all = snippets();

describe('documentation snippets', () => {
  it('every fenced block of the README, docs/ and the package READMEs has a plan, and every plan a block', () => {
    const keys = all.map(keyOf);
    expect(
      keys.filter((k) => !PLANS[k]),
      'blocks without a plan (add one to PLANS)',
    ).toEqual([]);
    expect(
      Object.keys(PLANS).filter((k) => !keys.includes(k)),
      'plans whose block is gone',
    ).toEqual([]);
  });

  for (const snippet of all) {
    const key = keyOf(snippet);
    const plan = PLANS[key];
    if (!plan) continue;
    const needs = 'run' in plan && plan.run === 'ts' ? plan.store : undefined;
    const skip = needs === 's3' ? s3Server.skipReason : needs === 'gcs' ? gcsServer.skipReason : undefined;
    it.skipIf(!!skip)(
      `${key}${skip ? ` (skipped: ${skip})` : ''}`,
      async () => {
        if ('mirror' in plan) {
          expect(readFileSync(join(ROOT, plan.mirror), 'utf8'), plan.why).toContain(plan.contains);
          return;
        }
        if ('check' in plan && plan.check === 'json') {
          expect(() => JSON.parse(snippet.code)).not.toThrow();
          return;
        }
        if ('check' in plan) {
          // Every package the line installs exists: one of ours (by its package.json name) or a peer we name.
          const ours = readdirSync(join(ROOT, 'packages')).map(
            (p) => JSON.parse(readFileSync(join(ROOT, 'packages', p, 'package.json'), 'utf8')).name as string,
          );
          const peers = ['@tensorflow/tfjs', 'vitest'];
          const line = (snippet.code.split('\n')[0] as string).replace(/#.*/, '');
          const names = line
            .replace(/^npm install\s+/, '')
            .trim()
            .split(/\s+/)
            .filter((n) => !n.startsWith('-'));
          expect(names.length).toBeGreaterThan(0);
          expect(names.filter((n) => !ours.includes(n) && !peers.includes(n))).toEqual([]);
          return;
        }
        const cwd = mkdtempSync(join(tmpdir(), 'savepoint-snippet-'));
        try {
          const result = plan.run === 'ts' ? await runTs(snippet, plan, cwd) : await runSh(snippet, plan);
          expect(result.status, `${key} failed:\n${result.stdout}\n${result.stderr}`).toBe(0);
          if ('output' in plan && plan.output) {
            expect(result.stderr).not.toContain(plan.output.absent);
            expect(result.stderr).toContain(plan.output.present);
          }
        } finally {
          rmSync(cwd, { recursive: true, force: true });
        }
      },
      120_000,
    );
  }
});

async function runTs(snippet: Snippet, plan: Extract<Plan, { run: 'ts' }>, cwd: string) {
  const env: Record<string, string | undefined> = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  const replace: [string, string][] = [...(plan.replace ?? [])];
  if (plan.store === 's3') {
    await ensureS3Bucket();
    // The AWS SDK's own settings: the snippet's store is built as written, from the environment.
    Object.assign(env, {
      AWS_ENDPOINT_URL_S3: new URL(s3Server.endpoint as string).origin,
      AWS_ACCESS_KEY_ID: testCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: testCredentials.secretAccessKey,
      AWS_REGION: 'us-east-1',
    });
    replace.push([S3_BUCKET, `'s3://savepoint-test/${prefix}/`]);
  }
  if (plan.store === 'gcs') {
    await ensureGcsBucket();
    replace.push(
      ["'gs://bucket/", `'gs://savepoint-test/${prefix}/`],
      ["{ projectId: 'my-project' }", `{ projectId: 'my-project', apiEndpoint: ${JSON.stringify(gcsServer.endpoint)} }`],
    );
  }
  let source = `${plan.prelude ?? ''}${snippet.code}\n${plan.epilogue ?? ''}\n`;
  for (const [from, to] of replace) {
    expect(source, `the plan substitutes ${from}`).toContain(from);
    source = source.split(from).join(to);
  }
  // Imports first: a prelude's own imports may follow the snippet's in the text.
  const js = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  // Inside the repository, so that `@savepoint/...` resolves to the built workspace packages.
  const dir = join(ROOT, '.cache', 'snippets');
  mkdirSync(dir, { recursive: true });
  const file = join(
    dir,
    `${relative(ROOT, snippet.file).replace(/[^a-z0-9]+/gi, '-')}-${Math.random().toString(16).slice(2, 8)}.mjs`,
  );
  writeFileSync(file, `${hoistImports(js)}\nsetTimeout(() => process.exit(0), 0).unref();\n`);
  try {
    return spawnSync(process.execPath, [file], { cwd, env, encoding: 'utf8', timeout: 100_000 });
  } finally {
    rmSync(file, { force: true });
  }
}

/** Static imports to the top (a module's imports are hoisted anyway; this only keeps the text valid). */
function hoistImports(js: string): string {
  const lines = js.split('\n');
  const imports = lines.filter((l) => /^import .* from .*;$/.test(l) || /^import ['"].*['"];$/.test(l));
  return [...imports, ...lines.filter((l) => !imports.includes(l))].join('\n');
}

async function runSh(snippet: Snippet, plan: Extract<Plan, { run: 'sh' }>) {
  let script = snippet.code;
  for (const [from, to] of plan.replace ?? []) {
    expect(script, `the plan substitutes ${from}`).toContain(from);
    script = script.split(from).join(to);
  }
  // A free port for the snippet's server, instead of 9000 (other servers may hold it).
  const port = await freePort();
  script = script.split(':9000').join(`:${port}`).split(' -p 9000').join(` -p ${port}`);
  return spawnSync('bash', ['-e', '-c', script], {
    cwd: ROOT,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    encoding: 'utf8',
    timeout: 230_000,
  });
}
