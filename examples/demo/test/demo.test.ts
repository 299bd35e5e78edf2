// The demo (pnpm demo) as a newcomer runs it: it trains, is interrupted, resumes and
// finishes; it refuses folders it did not create and never deletes what it did not write.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { s3Args, server as s3Server } from '../../../packages/backend-s3/test/s3-setup.js';

const DEMO = join(import.meta.dirname, '..', 'dist', 'demo.js');
const runDemo = (...args: string[]) => spawnSync(process.execPath, [DEMO, ...args], { encoding: 'utf8' });

describe('savepoint demo', () => {
  it('trains a TensorFlow.js model, is interrupted after epoch 6, resumes, and leaves the rotated run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'savepoint-demo-'));
    try {
      const result = runDemo('--work-dir', dir);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/TensorFlow\.js 4\.22\.0, cpu backend/);
      expect(result.stdout).toMatch(/interrupted after epoch 6/);
      expect(result.stdout).toMatch(/at epoch 6 and finished epoch 10/);
      const files = await readdir(dir);
      expect(files.filter((f) => /^epoch_\d+\.safetensors$/.test(f))).toHaveLength(2);
      expect(files).toContain('epoch_10.safetensors');
      expect(files.filter((f) => f.startsWith('best_val_acc_epoch_') && !/-[0-9a-f]{8}\./.test(f))).toHaveLength(1);
      // The pointer's first line names the checkpoint; the second is the fencing generation (the resumed
      // job is the second). A third, the run's bookkeeping, follows when the last epoch improved the best.
      const pointer = (await readFile(join(dir, 'last_checkpoint'), 'utf8')).split('\n');
      expect(pointer.slice(0, 2)).toEqual(['epoch_10.safetensors', 'generation: 2']);
      // Then the checkpoint's seal, and the bookkeeping when a best moved since.
      expect(pointer[2]).toMatch(/^seal: [0-9a-f]{64}$/);
      expect(pointer.slice(3).every((line) => line.startsWith('runtime_info: {'))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('refuses a non-empty folder that is not a previous demo run, deleting nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'savepoint-demo-'));
    try {
      await writeFile(join(dir, 'thesis.tex'), 'years of work');
      await writeFile(join(dir, 'epoch_1.safetensors'), 'looks like ours, is not');
      const result = runDemo('--work-dir', dir);
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(/is not a previous demo run.*never deletes files it did not create/);
      expect((await readdir(dir)).sort()).toEqual(['epoch_1.safetensors', 'thesis.tex']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('re-running in its own folder replaces only its own files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'savepoint-demo-'));
    try {
      expect(runDemo('--work-dir', dir).status).toBe(0);
      await writeFile(join(dir, 'notes.txt'), 'mine');
      const again = runDemo('--work-dir', dir);
      expect(again.status, again.stderr).toBe(0);
      expect(await readFile(join(dir, 'notes.txt'), 'utf8')).toBe('mine');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
  it('--work-dir with ".." trains where the shell would put it (issue 27)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'savepoint-demo-'));
    try {
      // Not path.join: it would resolve the ".." itself.
      const result = runDemo('--work-dir', [dir, 'elsewhere', '..', 'run'].join(sep));
      expect(result.status, result.stderr).toBe(0);
      expect(await readdir(join(dir, 'run'))).toContain('epoch_10.safetensors');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
  it("prints no TensorFlow.js 'running in Node.js' banner (issue 27)", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'savepoint-demo-'));
    try {
      const result = runDemo('--work-dir', dir);
      expect(result.status, result.stderr).toBe(0);
      expect(`${result.stdout}${result.stderr}`).not.toMatch(/looks like you are running TensorFlow\.js in Node\.js/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
  it('--help prints its usage and an unknown option is a usage error, never a stack trace', () => {
    const help = runDemo('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: pnpm demo');
    const wrong = runDemo('--no-such-option');
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain('Usage: pnpm demo');
    expect(wrong.stderr).not.toMatch(/\n\s+at /);
  }, 120_000);
});

describe.skipIf(!!s3Server.skipReason)(`the demo on S3${s3Server.skipReason ? ` (skipped: ${s3Server.skipReason})` : ''}`, () => {
  it('a missing bucket fails before any training, saying so', () => {
    const result = runDemo('--work-dir', 's3://no-such-bucket-savepoint/demo', '--backend-args', JSON.stringify(s3Args()));
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/no-such-bucket-savepoint/);
    expect(result.stderr).toMatch(/bucket/i);
    expect(result.stdout).not.toMatch(/epoch\s+1\//);
  }, 60_000);
  it('prints no AWS SDK Node-version notice: the demo owns its process (issue 27)', () => {
    const env = { ...process.env };
    delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    const result = spawnSync(
      process.execPath,
      [DEMO, '--work-dir', 's3://no-such-bucket-savepoint/demo', '--backend-args', JSON.stringify(s3Args())],
      { encoding: 'utf8', env },
    );
    expect(result.stderr).toMatch(/no-such-bucket-savepoint/);
    expect(result.stderr).not.toMatch(/NodeVersionSupportWarning|upgrade to node/);
  }, 60_000);
});
