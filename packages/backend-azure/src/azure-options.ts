// Parses `backendArgs` for Azure Blob and builds the service client.
import { DefaultAzureCredential } from '@azure/identity';
import {
  BlobServiceClient,
  type ContainerClient,
  type StoragePipelineOptions,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import {
  checkEndpointUrl,
  checkInteger,
  checkKnownKeys,
  checkRecord,
  checkString,
  configError,
  hasMethods,
  parseRequestTimeout,
  parseRetryPolicy,
  type RetryPolicy,
} from '@savepoint/core/kit';
import { BACKEND_NAME } from './azure-errors.js';

export interface AzureBackendOptions {
  /** An already-built service client, used as it is. */
  serviceClient?: BlobServiceClient;
  /** An already-built container client: the backend then serves that container only. */
  containerClient?: ContainerClient;
  connectionString?: string;
  accountName?: string;
  accountKey?: string;
  /** The service URL, e.g. `https://acct.blob.core.windows.net`; with `sasToken`, or alone for DefaultAzureCredential. */
  url?: string;
  sasToken?: string;
  /** Endpoint override for emulators: `http://127.0.0.1:10000/devstoreaccount1`. */
  endpoint?: string;
  retry?: Partial<RetryPolicy>;
  /** Block size in bytes for streamed uploads. Memory per upload is about blockSize x (concurrency + 1). */
  blockSize?: number;
  /** Blocks staged at once. */
  concurrency?: number;
  /** Batch requests in flight at once during rmtree. */
  deleteConcurrency?: number;
  /** Milliseconds a request may go without progress before it is cancelled and retried (default 60000). */
  requestTimeoutMs?: number;
}

export interface ResolvedAzureOptions {
  retry: RetryPolicy;
  blockSize: number;
  concurrency: number;
  deleteConcurrency: number;
  requestTimeoutMs: number;
  secrets: (string | undefined)[];
  serviceClient: BlobServiceClient | undefined;
  containerClient: ContainerClient | undefined;
  /** The account the `https://<account>.blob.core.windows.net` form must name. */
  accountName: string | undefined;
}

export const AZURE_OPTION_NAMES = [
  'serviceClient',
  'containerClient',
  'connectionString',
  'accountName',
  'accountKey',
  'url',
  'sasToken',
  'endpoint',
  'retry',
  'blockSize',
  'concurrency',
  'deleteConcurrency',
  'requestTimeoutMs',
];
const ctx = { backend: BACKEND_NAME };
/** savepoint's retry helper owns retries: the SDK tries once. */
const PIPELINE: StoragePipelineOptions = { retryOptions: { maxTries: 1 } };

function secretString(value: unknown, option: string): string {
  if (typeof value !== 'string' || value === '') throw configError(option, '<hidden>', 'a non-empty string', ctx);
  return value;
}

function accountFromConnectionString(cs: string): { name?: string; key?: string; sas?: string } {
  const parts = Object.fromEntries(
    cs
      .split(';')
      .filter(Boolean)
      .map((kv) => {
        const i = kv.indexOf('=');
        return [kv.slice(0, i), kv.slice(i + 1)];
      }),
  );
  return { name: parts.AccountName, key: parts.AccountKey, sas: parts.SharedAccessSignature };
}

export function resolveAzureOptions(options: AzureBackendOptions, env: NodeJS.ProcessEnv = process.env): ResolvedAzureOptions {
  const raw = checkRecord(options, 'backendArgs', ctx) ?? {};
  checkKnownKeys(raw, AZURE_OPTION_NAMES, 'azure backend', ctx);
  const o = raw as AzureBackendOptions;
  if (o.serviceClient !== undefined && !hasMethods(o.serviceClient, ['getContainerClient'])) {
    throw configError('serviceClient', o.serviceClient, 'a BlobServiceClient from @azure/storage-blob', ctx);
  }
  if (o.containerClient !== undefined && !hasMethods(o.containerClient, ['getBlockBlobClient', 'listBlobsFlat'])) {
    throw configError('containerClient', o.containerClient, 'a ContainerClient from @azure/storage-blob', ctx);
  }
  const blockSize =
    o.blockSize === undefined
      ? 8 * 1024 * 1024
      : checkInteger(o.blockSize, 'blockSize', 'an integer between 1 and 4000 MiB (bytes)', { ...ctx, min: 1 });
  if (blockSize > 4000 * 1024 * 1024)
    throw configError('blockSize', o.blockSize, 'an integer between 1 and 4000 MiB (bytes)', ctx);
  const concurrency =
    o.concurrency === undefined ? 4 : checkInteger(o.concurrency, 'concurrency', 'an integer >= 1', { ...ctx, min: 1 });
  const deleteConcurrency =
    o.deleteConcurrency === undefined
      ? 4
      : checkInteger(o.deleteConcurrency, 'deleteConcurrency', 'an integer >= 1', { ...ctx, min: 1 });
  const retry = parseRetryPolicy(o.retry, BACKEND_NAME);
  const requestTimeoutMs = parseRequestTimeout(o.requestTimeoutMs, BACKEND_NAME);
  const base = { retry, blockSize, concurrency, deleteConcurrency, requestTimeoutMs };

  if (o.containerClient)
    return {
      ...base,
      secrets: [],
      serviceClient: undefined,
      containerClient: o.containerClient,
      accountName: o.containerClient.accountName,
    };
  if (o.serviceClient)
    return {
      ...base,
      secrets: [],
      serviceClient: o.serviceClient,
      containerClient: undefined,
      accountName: o.serviceClient.accountName,
    };

  if (o.sasToken !== undefined) secretString(o.sasToken, 'sasToken');
  if (o.url !== undefined) checkEndpointUrl(o.url, 'url', 'https://acct.blob.core.windows.net (the service URL)', ctx);
  const endpoint =
    o.endpoint === undefined
      ? undefined
      : checkEndpointUrl(o.endpoint, 'endpoint', 'http://127.0.0.1:10000/devstoreaccount1', ctx);

  const connectionString = o.connectionString ?? (o.accountName || o.url ? undefined : env.AZURE_STORAGE_CONNECTION_STRING);
  if (connectionString !== undefined) {
    const cs = secretString(connectionString, 'connectionString');
    const account = accountFromConnectionString(cs);
    const secrets = [cs, account.key, account.sas];
    return {
      ...base,
      secrets,
      serviceClient: BlobServiceClient.fromConnectionString(cs, PIPELINE),
      containerClient: undefined,
      accountName: account.name,
    };
  }
  const accountName = o.accountName ?? (o.url ? undefined : env.AZURE_STORAGE_ACCOUNT);
  if (accountName !== undefined) checkString(accountName, 'accountName', 'a storage account name', ctx);
  const serviceUrl = o.url ?? endpoint ?? (accountName ? `https://${accountName}.blob.core.windows.net` : undefined);
  if (o.accountKey !== undefined && !accountName)
    throw configError('accountKey', '<hidden>', 'an account key together with accountName', ctx);
  // No account yet: https://<account>.blob.core.windows.net URLs name it, az:// URIs then fail with a ConfigError.
  if (serviceUrl === undefined)
    return { ...base, secrets: [], serviceClient: undefined, containerClient: undefined, accountName: undefined };
  const accountKey = o.accountKey ?? (o.accountName === undefined ? env.AZURE_STORAGE_KEY : undefined);
  if (accountKey !== undefined) {
    if (!accountName) throw configError('accountKey', '<hidden>', 'an account key together with accountName', ctx);
    const key = secretString(accountKey, 'accountKey');
    const client = new BlobServiceClient(serviceUrl, new StorageSharedKeyCredential(accountName, key), PIPELINE);
    return { ...base, secrets: [key], serviceClient: client, containerClient: undefined, accountName };
  }
  if (o.sasToken !== undefined) {
    const sas = secretString(o.sasToken, 'sasToken').replace(/^\?/, '');
    return {
      ...base,
      secrets: [sas],
      serviceClient: new BlobServiceClient(`${serviceUrl}?${sas}`, undefined, PIPELINE),
      containerClient: undefined,
      accountName,
    };
  }
  // Nothing explicit: managed identity, environment, Azure CLI... through DefaultAzureCredential.
  return {
    ...base,
    secrets: [],
    serviceClient: new BlobServiceClient(serviceUrl, new DefaultAzureCredential(), PIPELINE),
    containerClient: undefined,
    accountName,
  };
}
