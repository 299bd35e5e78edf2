// The three network stores, built against their local servers (optionally through
// a proxy) with each backend's own test setup, and versitygw, the second S3 server.

import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzureBackend } from '@savepoint/backend-azure';
import { GcsBackend } from '@savepoint/backend-gcs';
import { LocalBackend } from '@savepoint/backend-local';
import { S3Backend } from '@savepoint/backend-s3';
import type { StorageBackend } from '@savepoint/core';
import type { RetryPolicy } from '@savepoint/core/kit';
import { AZURITE_ACCOUNT, AZURITE_KEY, server as azureServer, ensureContainer } from '../../backend-azure/test/azure-setup.js';
import { ensureBucket as ensureGcsBucket, server as gcsServer } from '../../backend-gcs/test/gcs-setup.js';
import {
  ensureBucket as ensureS3Bucket,
  type S3Server,
  server as s3Server,
  testCredentials,
  versitygwServer,
} from '../../backend-s3/test/s3-setup.js';
import type { Cloud } from '../src/index.js';

export interface NetworkStore {
  /** The store in test names and figures: the cloud, or `s3-versitygw` for the second S3 server. */
  name: string;
  cloud: Cloud;
  skipReason: string | undefined;
  /** The server's origin (what a proxy forwards to). */
  origin: string | undefined;
  root: string;
  prepare(): Promise<void>;
  /** A backend talking to `origin` (the server, or a proxy in front of it). */
  make(origin: string, retry?: Partial<RetryPolicy>): StorageBackend;
  /** backendArgs for the same, as a CLI or a child process would pass them. */
  args(origin: string, retry?: Partial<RetryPolicy>): Record<string, unknown>;
}

const originOf = (url: string | undefined) => (url ? new URL(url).origin : undefined);

/** An S3 store on one of the two S3 servers (same credentials, same bucket name). */
function s3Store(name: string, on: S3Server): NetworkStore {
  return {
    name,
    cloud: 's3',
    skipReason: on.skipReason,
    origin: originOf(on.endpoint),
    root: 's3://savepoint-test',
    prepare: () => ensureS3Bucket(undefined, on),
    args: (origin, retry) => ({
      endpoint: origin,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { ...testCredentials },
      retry,
    }),
    make(origin, retry) {
      return new S3Backend(this.args(origin, retry));
    },
  };
}

/** versitygw: the S3 backend on a production S3 server, beside moto. */
export const VERSITYGW_STORE: NetworkStore = s3Store('s3-versitygw', versitygwServer);

export const NETWORK_STORES: NetworkStore[] = [
  s3Store('s3', s3Server),
  {
    name: 'gcs',
    cloud: 'gcs',
    skipReason: gcsServer.skipReason,
    origin: originOf(gcsServer.endpoint),
    root: 'gs://savepoint-test',
    prepare: () => ensureGcsBucket(),
    args: (origin, retry) => ({ apiEndpoint: origin, projectId: 'savepoint-test', retry }),
    make(origin, retry) {
      return new GcsBackend(this.args(origin, retry));
    },
  },
  {
    name: 'azure',
    cloud: 'azure',
    skipReason: azureServer.skipReason,
    origin: originOf(azureServer.endpoint),
    root: 'az://savepoint-test',
    prepare: () => ensureContainer(),
    args: (origin, retry) => ({
      connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${origin}/${AZURITE_ACCOUNT};`,
      retry,
    }),
    make(origin, retry) {
      return new AzureBackend(this.args(origin, retry));
    },
  },
];

/**
 * The network stores with versitygw beside moto: for the tests that run on both S3
 * servers (the crash, fault and lease-race tests; the contract and policy suites run
 * on both in packages/backend-s3).
 */
export const NETWORK_STORES_BOTH_S3: NetworkStore[] = [...NETWORK_STORES, VERSITYGW_STORE];

/** A store a test runs on: local disk and the network stores (both S3 servers), each opened with a fresh root. */
export interface StoreTarget {
  name: string;
  skipReason: string | undefined;
  open(): Promise<{ store: StorageBackend; root: string }>;
}

/** Local disk (a new temp folder) and each network store (a new prefix in its bucket), roots named after `label`. */
export function storeTargets(label: string): StoreTarget[] {
  return [
    {
      name: 'local',
      skipReason: undefined,
      async open() {
        return { store: new LocalBackend(), root: await mkdtemp(join(tmpdir(), `savepoint-${label}-`)) };
      },
    },
    ...NETWORK_STORES_BOTH_S3.map((s) => ({
      name: s.name,
      skipReason: s.skipReason,
      async open() {
        await s.prepare();
        const store = s.make(s.origin as string);
        return { store, root: store.joinPath(s.root, `${label}-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`) };
      },
    })),
  ];
}
