// A Storage passed in is accepted by its shape, not by instanceof: another copy or
// version of @google-cloud/storage in the tree, or a wrapper, works.
import { randomBytes } from 'node:crypto';
import { Storage } from '@google-cloud/storage';
import { ConfigError } from '@savepoint/core';
import { describe, expect, it } from 'vitest';
import { foreignClient } from '../../../test-support/foreign-client.js';
import { GcsBackend } from '../src/index.js';
import { BUCKET, ensureBucket, server } from './gcs-setup.js';

describe.skipIf(!!server.skipReason)(
  `a Storage that is not this copy's class${server.skipReason ? ` (skipped: ${server.skipReason})` : ''}`,
  () => {
    it('is accepted and works', async () => {
      await ensureBucket();
      const storage = foreignClient(new Storage({ apiEndpoint: server.endpoint, projectId: 'savepoint-test' }));
      expect(storage instanceof Storage).toBe(false);
      const backend = new GcsBackend({ storage });
      const path = `gs://${BUCKET}/client-shape-${randomBytes(4).toString('hex')}/a.txt`;
      await backend.put(path, 'hello');
      expect(new TextDecoder().decode(await backend.get(path))).toBe('hello');
      await backend.remove(path);
    });

    it('something else is refused at construction, saying what is accepted', () => {
      expect(() => new GcsBackend({ storage: {} as never })).toThrow(ConfigError);
      expect(() => new GcsBackend({ storage: {} as never })).toThrow(/accepted: a Storage from @google-cloud\/storage/);
    });
  },
);
