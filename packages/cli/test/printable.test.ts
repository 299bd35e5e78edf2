// Names read back from a store are a stranger's text: a tensor or file name holding an
// escape sequence must reach the terminal escaped, in plain and in --json output.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveCheckpointFile } from '@savepoint/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../backend-local/src/index.js';
import { main } from '../src/index.js';
import { printable, printableJson } from '../src/printable.js';

// biome-ignore lint/suspicious/noControlCharactersInRegex: the point of the test
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/;
const HOSTILE = '\u001b[2J\u001b]0;pwned\u0007\u009b31m\u202e';

async function run(argv: string[]) {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), env: {} });
  return { code, out, err };
}

describe("printing strangers' names", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'savepoint-printable-'));
    const store = new LocalBackend();
    const checkpoint = { meta: { note: HOSTILE }, state_dict: { [`w${HOSTILE}`]: new Float32Array([1, 2]) } };
    await saveCheckpointFile(store, join(dir, 'epoch_1.safetensors'), checkpoint);
    await saveCheckpointFile(store, join(dir, `best_${HOSTILE}_epoch_1.safetensors`), checkpoint);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('escapes control characters, C1 introducers and bidi overrides, and keeps line breaks', () => {
    expect(printable(`a${HOSTILE}\nb`)).toBe('a\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202e\nb');
    expect(JSON.parse(printableJson(JSON.stringify({ name: HOSTILE })))).toEqual({ name: HOSTILE });
  });

  for (const format of [[], ['--json']]) {
    it(`inspect and ls print no raw control character ${format.join(' ') || '(plain)'}`, async () => {
      const inspected = await run([...format, 'inspect', join(dir, 'epoch_1.safetensors')]);
      expect(inspected.code).toBe(0);
      expect(inspected.out).toContain('pwned');
      expect(inspected.out).not.toMatch(RAW_CONTROL);
      const listed = await run([...format, 'ls', dir]);
      expect(listed.code).toBe(0);
      expect(listed.out).toContain('pwned');
      expect(listed.out).not.toMatch(RAW_CONTROL);
    });
  }

  it('escapes a hostile name inside an error message too', async () => {
    const missing = await run(['inspect', join(dir, `nothing${HOSTILE}.safetensors`)]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('pwned');
    expect(missing.err).not.toMatch(RAW_CONTROL);
  });
});
