// A BlobServiceClient passed in is accepted by its shape, not by instanceof: another
// copy or version of @azure/storage-blob in the tree, or a wrapper, works.
import { randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { ConfigError } from '@savepoint/core';
import { describe, expect, it } from 'vitest';
import { foreignClient } from '../../../test-support/foreign-client.js';
import { AzureBackend } from '../src/index.js';
import { CONTAINER, connectionString, ensureContainer, server } from './azure-setup.js';

describe.skipIf(!!server.skipReason)(
  `a BlobServiceClient that is not this copy's class${server.skipReason ? ` (skipped: ${server.skipReason})` : ''}`,
  () => {
    it('is accepted and works', async () => {
      await ensureContainer();
      const serviceClient = foreignClient(BlobServiceClient.fromConnectionString(connectionString()));
      expect(serviceClient instanceof BlobServiceClient).toBe(false);
      const backend = new AzureBackend({ serviceClient });
      const path = `az://${CONTAINER}/client-shape-${randomBytes(4).toString('hex')}/a.txt`;
      await backend.put(path, 'hello');
      expect(new TextDecoder().decode(await backend.get(path))).toBe('hello');
      await backend.remove(path);
    });

    it('something else is refused at construction, saying what is accepted', () => {
      expect(() => new AzureBackend({ serviceClient: {} as never })).toThrow(ConfigError);
    });
  },
);
