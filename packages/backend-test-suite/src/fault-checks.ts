// How a backend that speaks HTTP treats a server's error answers: a 5xx is retried and,
// once retries run out, reported as transient; a 403 fails at once and is permanent.
// The suite cannot make a real server fail, so it puts a small proxy of its own in
// front of it (`StatusProxy`) and asks the test context for the same backend aimed at
// the proxy (`throughProxy`). A backend that maps a 5xx to a permanent error would make
// the checkpoint engine give up on a save that one more attempt would have finished.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SavepointError } from '@savepoint/core/store';
import { expect } from 'vitest';
import type { ContractCheck, ThroughProxy } from './contract-check.js';

/**
 * Forwards every request to the server unchanged (headers too, so signatures made for
 * the proxy's host stay valid), except that it can answer the next requests itself
 * with an HTTP status and no body from the server.
 */
export class StatusProxy {
  requests = 0;
  answered = 0;
  #failures = 0;
  #status = 503;
  #server: http.Server | undefined;
  #url = '';
  readonly #target: URL;

  constructor(origin: string) {
    this.#target = new URL(origin);
  }

  get url(): string {
    return this.#url;
  }

  /** Answers the next `count` requests (Infinity: all of them) with `status`. */
  fail(count: number, status: number): void {
    this.#failures = count;
    this.#status = status;
  }

  async start(): Promise<this> {
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    this.#url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests++;
    if (this.#failures > 0) {
      this.#failures--;
      this.answered++;
      const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${this.#status === 403 ? 'AccessDenied' : 'ServiceUnavailable'}</Code><Message>answered by the contract suite's proxy</Message></Error>`;
      req.resume();
      req.on('end', () => {
        res.writeHead(this.#status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    const upstream = http.request(
      { host: this.#target.hostname, port: this.#target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        const headers = { ...answer.headers };
        // Resumable-upload URLs point at the server; send the client back through the proxy.
        if (typeof headers.location === 'string') headers.location = headers.location.replace(this.#target.origin, this.#url);
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }
}

export const FAULT_CHECK_NAME = 'a 5xx answer is retried and, past the retries, transient; a 403 fails at once and is permanent';

export const FAULT_CHECKS: readonly ContractCheck[] = [
  {
    name: FAULT_CHECK_NAME,
    requires: 'http',
    timeoutMs: 60_000,
    async run({ backend, dir, throughProxy }) {
      expect(
        throughProxy,
        'the test context must give throughProxy (the server origin and a factory for the backend at another origin), or declare capabilities.http false for a backend that speaks no HTTP',
      ).toBeTruthy();
      const { origin, make } = throughProxy as ThroughProxy;
      const p = backend.joinPath(dir, 'faults.bin');
      const data = new Uint8Array(4096).map((_, i) => i % 251);
      await backend.put(p, data);
      const proxy = await new StatusProxy(origin).start();
      const viaProxy = await make(proxy.url);
      try {
        expect([...(await viaProxy.get(p))], 'a read through the proxy with no fault').toEqual([...data]);

        proxy.fail(2, 503);
        expect([...(await viaProxy.get(p))], 'a read whose first two answers are 503 is retried to the object').toEqual([
          ...data,
        ]);
        expect(proxy.answered, 'both 503 answers were seen').toBe(2);

        proxy.fail(Number.POSITIVE_INFINITY, 503);
        const busy = await viaProxy.stat(p).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(busy, 'a stat that only ever gets 503 fails').toBeInstanceOf(SavepointError);
        expect((busy as SavepointError).transient, `a 503 past the retries is transient: ${String(busy)}`).toBe(true);

        proxy.fail(Number.POSITIVE_INFINITY, 403);
        const before = proxy.requests;
        const denied = await viaProxy.stat(p).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(denied, 'a stat answered 403 fails').toBeInstanceOf(SavepointError);
        expect((denied as SavepointError).transient, `a 403 is permanent: ${String(denied)}`).toBe(false);
        expect(proxy.requests - before, 'a 403 is not retried').toBe(1);
      } finally {
        proxy.fail(0, 503);
        await viaProxy.close?.();
        await proxy.stop();
      }
    },
  },
];
