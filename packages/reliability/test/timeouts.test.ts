// A server that accepts the connection and never answers: every network store gives
// a TimeoutError within the configured requestTimeoutMs (and its retries), instead of
// hanging the training job forever.
import net from 'node:net';
import { AzureBackend } from '@savepoint/backend-azure';
import { GcsBackend } from '@savepoint/backend-gcs';
import { S3Backend } from '@savepoint/backend-s3';
import { type StorageBackend, TimeoutError } from '@savepoint/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const TIMEOUT_MS = 300;
const RETRY = { retries: 1, minDelayMs: 10, maxDelayMs: 20 };

let server: net.Server;
let origin = '';
const sockets = new Set<net.Socket>();
beforeAll(async () => {
  // Reads whatever arrives and never writes a byte back.
  server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', () => {});
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const stores: { name: string; make(): StorageBackend; root: string }[] = [
  {
    name: 's3',
    root: 's3://bucket',
    make: () =>
      new S3Backend({
        endpoint: origin,
        forcePathStyle: true,
        region: 'us-east-1',
        credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
        requestTimeoutMs: TIMEOUT_MS,
        retry: RETRY,
      }),
  },
  {
    name: 'gcs',
    root: 'gs://bucket',
    make: () => new GcsBackend({ apiEndpoint: origin, projectId: 'p', requestTimeoutMs: TIMEOUT_MS, retry: RETRY }),
  },
  {
    name: 'azure',
    root: 'az://container',
    make: () =>
      new AzureBackend({
        connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${Buffer.from('k').toString('base64')};BlobEndpoint=${origin}/devstoreaccount1;`,
        requestTimeoutMs: TIMEOUT_MS,
        retry: RETRY,
      }),
  },
];

async function* stream(bytes: number): AsyncIterable<Uint8Array> {
  for (let sent = 0; sent < bytes; sent += 1 << 20) yield new Uint8Array(Math.min(1 << 20, bytes - sent));
}

describe('a server that never answers', () => {
  for (const store of stores) {
    it(`${store.name}: put, streamed put, get, list and putIfAbsent fail with TimeoutError within the budget`, async () => {
      const backend = store.make();
      // Budget: two attempts of TIMEOUT_MS each, the backoff, and slack for a busy machine
      // (a call that waited for the SDK's own timeouts would take minutes).
      const budget = 2 * TIMEOUT_MS + 6_000;
      const calls: [string, () => Promise<unknown>][] = [
        ['put', () => backend.put(`${store.root}/k`, 'small')],
        ['streamed put', () => backend.put(`${store.root}/big`, stream(12 << 20))],
        ['get', () => backend.get(`${store.root}/k`)],
        [
          'list',
          async () => {
            for await (const _ of backend.list(`${store.root}/dir`));
          },
        ],
        ['putIfAbsent', () => backend.putIfAbsent(`${store.root}/lease`, 'x')],
      ];
      for (const [what, call] of calls) {
        const started = performance.now();
        const error = (await call().catch((e: unknown) => e)) as Error;
        const elapsed = performance.now() - started;
        expect(error, what).toBeInstanceOf(TimeoutError);
        expect(String(error.message), what).toMatch(/no progress for 300 ms \(requestTimeoutMs\)/);
        expect(elapsed, what).toBeLessThan(budget);
      }
      await backend.close?.();
    }, 60_000);
  }
});
