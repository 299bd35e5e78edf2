// A fault-injecting HTTP proxy that sits between an SDK and its local server.
// For each request it makes a seeded choice: answer 500/503/429 with the cloud's
// own throttling body, reset the connection mid-body, stall, or pass through.
// Faults happen before the server sees the request, so a retried write is never
// applied twice. `deny` mode answers every request with a 403; `rangeIgnored` mode
// passes every partial answer (206) on as a 200 without its Content-Range, as a server
// that ignores Range headers would answer; `chunked` mode sends every answer to a GET
// chunked, without a Content-Length, as some proxies do; `cutOnce` mode cuts the
// connection of the first answer longer than 1 MiB after `cutAfterBytes` of its body;
// `corruptUpload` / `corruptDownload` flip one bit of every request / answer body at byte
// `corruptAt` (headers and lengths unchanged), as a bad NIC or memory would.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform } from 'node:stream';

export type Cloud = 's3' | 'gcs' | 'azure';
export type FaultKind =
  | 'status500'
  | 'status503'
  | 'status429'
  | 'reset'
  | 'stall'
  /** The server answers, and the connection is cut in the middle of the response body. */
  | 'bodyReset'
  /** The server applies the request, and the client sees a reset instead of its answer. */
  | 'appliedReset';

const CLASSIC_KINDS: readonly FaultKind[] = ['status500', 'status503', 'status429', 'reset', 'stall'];

export interface FaultProxyOptions {
  /** The real server: `http://127.0.0.1:45001`. */
  target: string;
  cloud: Cloud;
  seed: number;
  /** Share of requests that get a fault, 0..1. */
  faultRate?: number;
  /** `deny`: every request gets a 403. `rangeIgnored`: every 206 reaches the client as a 200 without Content-Range. */
  mode?: 'random' | 'deny' | 'rangeIgnored' | 'chunked' | 'cutOnce' | 'corruptUpload' | 'corruptDownload';
  /** `corruptUpload`/`corruptDownload`: the offset in the body of the byte that is flipped. */
  corruptAt?: number;
  /** `corruptUpload`/`corruptDownload`: how many bodies are changed, the first ones (default: every one). */
  corruptTimes?: number;
  /** `cutOnce`: the bytes of the body that get through before the cut. */
  cutAfterBytes?: number;
  stallMs?: number;
  /** Which faults to draw from (default: statuses, reset before the server sees it, stall). */
  kinds?: readonly FaultKind[];
}

export interface FaultStats {
  requests: number;
  faults: Record<FaultKind | 'status403', number>;
}

/** mulberry32: a small seeded PRNG, so every faulted run is the same run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function errorBody(cloud: Cloud, status: number): { headers: Record<string, string>; body: string } {
  if (cloud === 'gcs') {
    const reason = status === 429 ? 'rateLimitExceeded' : status === 403 ? 'forbidden' : 'backendError';
    return {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ error: { code: status, message: reason, errors: [{ domain: 'global', reason, message: reason }] } }),
    };
  }
  const code =
    cloud === 's3'
      ? { 500: 'InternalError', 503: 'SlowDown', 429: 'SlowDown', 403: 'AccessDenied' }[status]
      : { 500: 'InternalError', 503: 'ServerBusy', 429: 'ServerBusy', 403: 'AuthorizationFailure' }[status];
  return {
    headers: { 'content-type': 'application/xml', ...(cloud === 'azure' ? { 'x-ms-error-code': String(code) } : {}) },
    body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the fault proxy</Message></Error>`,
  };
}

export class FaultProxy {
  readonly stats: FaultStats = {
    requests: 0,
    faults: { status500: 0, status503: 0, status429: 0, reset: 0, stall: 0, bodyReset: 0, appliedReset: 0, status403: 0 },
  };
  /** Answers cut by `cutOnce` mode (0 or 1). */
  cuts = 0;
  /** Bodies changed by the `corrupt*` modes. */
  corrupted = 0;
  #server: http.Server | undefined;
  #url = '';
  readonly #random: () => number;
  readonly #target: URL;

  constructor(private readonly options: FaultProxyOptions) {
    this.#random = seededRandom(options.seed);
    this.#target = new URL(options.target);
  }

  get url(): string {
    return this.#url;
  }

  get faultsInjected(): number {
    return Object.values(this.stats.faults).reduce((a, b) => a + b, 0);
  }

  #choose(): FaultKind | undefined {
    if (this.#random() >= (this.options.faultRate ?? 0.1)) return undefined;
    const kinds = this.options.kinds ?? CLASSIC_KINDS;
    return kinds[Math.floor(this.#random() * kinds.length)];
  }

  async start(): Promise<this> {
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    this.#server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    this.#url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }

  #reply(req: http.IncomingMessage, res: http.ServerResponse, status: number) {
    const { headers, body } = errorBody(this.options.cloud, status);
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body), connection: 'close' });
      res.end(body);
    });
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse) {
    this.stats.requests++;
    if (this.options.mode === 'deny') {
      this.stats.faults.status403++;
      this.#reply(req, res, 403);
      return;
    }
    const fault = this.#choose();
    if (fault) this.stats.faults[fault]++;
    if (fault === 'status500') return this.#reply(req, res, 500);
    if (fault === 'status503') return this.#reply(req, res, 503);
    if (fault === 'status429') return this.#reply(req, res, 429);
    if (fault === 'reset') {
      // Cut the connection while the request is in flight: the client sees a reset.
      req.once('data', () => req.socket.destroy());
      req.once('end', () => req.socket.destroy());
      setTimeout(() => req.socket.destroy(), 5);
      return;
    }
    const forward = () => this.#forward(req, res, fault);
    if (fault === 'stall') setTimeout(forward, this.options.stallMs ?? 150);
    else forward();
  }

  /** Passes `bytes` of the answer's body on, then drops the connection. */
  #cutAfter(req: http.IncomingMessage, res: http.ServerResponse, answer: http.IncomingMessage, bytes: number) {
    let sent = 0;
    answer.on('data', (chunk: Buffer) => {
      if (sent >= bytes) return;
      const part = chunk.subarray(0, Math.max(1, bytes - sent));
      sent += part.byteLength;
      res.write(part);
      if (sent >= bytes) setTimeout(() => req.socket.destroy(), 5);
    });
  }

  /** A pass-through stream that flips the low bit of the byte at `corruptAt`, if the body reaches it. */
  #flipper(): Transform {
    const at = this.options.corruptAt ?? 0;
    let offset = 0;
    return new Transform({
      transform: (chunk: Buffer, _encoding, done) => {
        if (
          offset <= at &&
          at < offset + chunk.byteLength &&
          this.corrupted < (this.options.corruptTimes ?? Number.POSITIVE_INFINITY)
        ) {
          chunk = Buffer.from(chunk);
          chunk[at - offset] = (chunk[at - offset] as number) ^ 1;
          this.corrupted++;
        }
        offset += chunk.byteLength;
        done(null, chunk);
      },
    });
  }

  #forward(req: http.IncomingMessage, res: http.ServerResponse, fault?: FaultKind) {
    const upstream = http.request(
      { host: this.#target.hostname, port: this.#target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        if (fault === 'appliedReset') {
          // The server has done the work; the client never hears of it.
          answer.resume();
          answer.on('end', () => req.socket.destroy());
          return;
        }
        const headers = { ...answer.headers };
        let status = answer.statusCode ?? 502;
        if (this.options.mode === 'rangeIgnored' && status === 206) {
          status = 200;
          delete headers['content-range'];
        }
        if (this.options.mode === 'chunked' && req.method === 'GET') delete headers['content-length'];
        // Resumable-upload URLs point at the server; send the client back through the proxy.
        if (typeof headers.location === 'string') headers.location = headers.location.replace(this.#target.origin, this.#url);
        res.writeHead(status, headers);
        const length = Number(answer.headers['content-length'] ?? 0);
        if (this.options.mode === 'cutOnce' && this.cuts === 0 && length > 1024 * 1024 && req.method !== 'HEAD') {
          this.cuts++;
          return this.#cutAfter(req, res, answer, this.options.cutAfterBytes ?? 0);
        }
        // Only an answer that carries a body can be cut in its middle (a HEAD carries none).
        // Half the body, then the connection drops.
        if (fault === 'bodyReset' && length > 1 && req.method !== 'HEAD')
          return this.#cutAfter(req, res, answer, Math.ceil(length / 2));
        if (this.options.mode === 'corruptDownload') answer.pipe(this.#flipper()).pipe(res);
        else answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    if (this.options.mode === 'corruptUpload') req.pipe(this.#flipper()).pipe(upstream);
    else req.pipe(upstream);
  }
}
