// Azure specifics: staged blocks never show before the commit; auth failures and
// options never leak the key or SAS; addresses in both forms.
import { BlobServiceClient } from '@azure/storage-blob';
import { ConfigError, InvalidPathError, PermissionDeniedError } from '@savepoint/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AzureBackend } from '../src/index.js';
import { AZURITE_ACCOUNT, azureArgs, CONTAINER, connectionString, ensureContainer, server } from './azure-setup.js';

describe.skipIf(!!server.skipReason)(
  `azure backend specifics${server.skipReason ? ` (skipped: ${server.skipReason})` : ''}`,
  () => {
    const base = `az://${CONTAINER}/specific-${Date.now()}`;
    beforeAll(() => ensureContainer());

    it('an upload that fails after staging blocks leaves no blob and keeps the old one', async () => {
      const backend = new AzureBackend(azureArgs({ blockSize: 1024, concurrency: 2 }));
      const path = `${base}/blocks.bin`;
      await backend.put(path, 'previous version');
      async function* failing() {
        for (let i = 0; i < 8; i++) yield new Uint8Array(1000).fill(i);
        throw new Error('source died');
      }
      await expect(backend.put(path, failing())).rejects.toThrow('source died');
      expect(new TextDecoder().decode(await backend.get(path))).toBe('previous version');
      const fresh = `${base}/fresh.bin`;
      await expect(backend.put(fresh, failing())).rejects.toThrow('source died');
      expect(await backend.exists(fresh)).toBe(false);
    });

    it('a streamed upload of many blocks commits them in order', async () => {
      const backend = new AzureBackend(azureArgs({ blockSize: 4096, concurrency: 3 }));
      const path = `${base}/ordered.bin`;
      const data = new Uint8Array(50_000).map((_, i) => (i * 13) % 251);
      async function* stream() {
        for (let i = 0; i < data.length; i += 3000) yield data.subarray(i, i + 3000);
      }
      await backend.put(path, stream());
      expect(Buffer.from(await backend.get(path)).equals(Buffer.from(data))).toBe(true);
      const blocks = await BlobServiceClient.fromConnectionString(connectionString())
        .getContainerClient(CONTAINER)
        .getBlockBlobClient(path.slice(`az://${CONTAINER}/`.length))
        .getBlockList('committed');
      expect(blocks.committedBlocks?.length).toBe(Math.ceil(data.length / 4096));
    });

    it('a wrong account key is PermissionDeniedError and the key appears nowhere', async () => {
      const wrongKey = Buffer.from('definitely-not-the-azurite-key-0123456789').toString('base64');
      const backend = new AzureBackend({
        accountName: AZURITE_ACCOUNT,
        accountKey: wrongKey,
        endpoint: server.endpoint,
        retry: { retries: 0 },
      });
      const error = await backend.put(`${base}/denied.txt`, 'x').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PermissionDeniedError);
      expect(String((error as Error).message)).toMatch(/^\[azure\] put .*access denied/);
      expect(JSON.stringify(error)).not.toContain(wrongKey);
      expect(String(error)).not.toContain(wrongKey);
      expect(String((error as Error).cause)).not.toContain(wrongKey);
    });

    it('a SAS token never shows in errors', async () => {
      const sas = 'sv=2023-01-03&ss=b&srt=sco&sp=rl&se=2001-01-01T00:00:00Z&sig=SUPERSECRETSIGNATURE%3D';
      const backend = new AzureBackend({ url: server.endpoint, sasToken: sas, retry: { retries: 0 } });
      const error = await backend.put(`${base}/sas.txt`, 'x').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect(String(error)).not.toContain('SUPERSECRETSIGNATURE');
      expect(String((error as Error).cause)).not.toContain('SUPERSECRETSIGNATURE');
    });

    it('https URLs must name the configured account; az:// without an account is a ConfigError', async () => {
      const backend = new AzureBackend(azureArgs());
      await expect(backend.get('https://otheraccount.blob.core.windows.net/c/k')).rejects.toBeInstanceOf(InvalidPathError);
      const bare = new AzureBackend({});
      await expect(bare.get('az://c/k')).rejects.toBeInstanceOf(ConfigError);
      await expect(bare.get('az://c/k')).rejects.toThrow(/connectionString/);
    });

    it('bad options fail at construction, naming the option', () => {
      expect(() => new AzureBackend({ blockSize: 0 })).toThrow(/"blockSize" got 0/);
      expect(() => new AzureBackend({ concurrency: 1.5 })).toThrow(/"concurrency"/);
      expect(() => new AzureBackend({ acountName: 'x' } as never)).toThrow(/unknown azure backend option "acountName"/);
      expect(() => new AzureBackend({ accountKey: 'SECRETKEYVALUE' })).toThrow(ConfigError);
      try {
        new AzureBackend({ accountKey: 'SECRETKEYVALUE' });
      } catch (error) {
        expect(String(error)).not.toContain('SECRETKEYVALUE');
      }
    });
  },
);
