// Builds Azure backends against the local Azurite for this package's tests. The
// development account and key are Azurite's public, well-known ones.
import { randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { localServer } from '../../../test-support/servers.js';
import { AzureBackend, type AzureBackendOptions } from '../src/index.js';

export const server = localServer('AZURE');
export const CONTAINER = 'savepoint-test';
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export function connectionString(endpoint = server.endpoint): string {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`;
}

export function azureArgs(extra: AzureBackendOptions = {}): AzureBackendOptions {
  return { connectionString: connectionString(), retry: { retries: 3, minDelayMs: 20, maxDelayMs: 200 }, ...extra };
}

export async function ensureContainer(name = CONTAINER): Promise<void> {
  await BlobServiceClient.fromConnectionString(connectionString()).getContainerClient(name).createIfNotExists();
}

export async function azureContext() {
  await ensureContainer();
  return {
    backend: new AzureBackend(azureArgs()),
    root: `az://${CONTAINER}/`,
    storeRoot: `az://${CONTAINER}`,
    scratchStore: azureScratchStore,
    throughProxy: {
      origin: new URL(server.endpoint as string).origin,
      // Azurite's blob endpoint carries the account as its path: kept behind the proxy's origin.
      make: (origin: string) =>
        new AzureBackend(
          azureArgs({
            connectionString: connectionString(`${origin}${new URL(server.endpoint as string).pathname}`),
            retry: { retries: 3, minDelayMs: 1, maxDelayMs: 5 },
          }),
        ),
    },
  };
}

/** A new, empty container for the contract's `allowRoot` check; deleted afterwards. */
export async function azureScratchStore() {
  const container = `savepoint-scratch-${randomBytes(4).toString('hex')}`;
  await ensureContainer(container);
  return {
    backend: new AzureBackend(azureArgs()),
    storeRoot: `az://${container}`,
    dispose: async () => {
      await BlobServiceClient.fromConnectionString(connectionString()).getContainerClient(container).deleteIfExists();
    },
  };
}
