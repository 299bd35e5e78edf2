import { describe, expect, it, vi } from 'vitest';
import {
  AbortedError,
  ConfigError,
  getBackend,
  NotFoundError,
  redact,
  registerBackend,
  resolveBackendName,
  type StorageBackend,
  TransientError,
  unregisterBackend,
} from '../src/index.js';
import { parseRetryPolicy, retryDelayMs, waitBeforeRetry, withRetry } from '../src/kit/index.js';

const fake = (name: string) => ({ name, args: {} as Record<string, unknown> }) as unknown as StorageBackend;

describe('registry', () => {
  it('an explicit backend wins, otherwise the scheme decides, and plain paths are local', () => {
    registerBackend('memtest', { schemes: ['memtest'], create: (args) => Object.assign(fake('memtest'), { args }) });
    registerBackend('disk', { schemes: ['file'], create: () => fake('disk') });
    try {
      expect(resolveBackendName('memtest://b/k')).toBe('memtest');
      expect(resolveBackendName('/plain/path')).toBe('disk');
      expect(resolveBackendName('file:///x')).toBe('disk');
      expect(resolveBackendName('/plain/path', { backend: 'memtest' })).toBe('memtest');
      const built = getBackend('memtest://b', { region: 'x' }) as unknown as { args: Record<string, unknown> };
      expect(built.args).toEqual({ region: 'x' });
      expect(() => getBackend('zz://b/k')).toThrow(ConfigError);
      expect(() => getBackend('zz://b/k')).toThrow(/no backend serves "zz:\/\/".*registered: .*memtest \(memtest:\/\/\)/);
      expect(() => getBackend('/x', { backend: 'nope' })).toThrow(/unknown backend "nope"/);
      expect(() => registerBackend('other', { schemes: ['memtest'], create: () => fake('o') })).toThrow(/already served/);
    } finally {
      unregisterBackend('memtest');
      unregisterBackend('disk');
    }
  });
});

describe('retry helper', () => {
  const policy = { retries: 3, minDelayMs: 1, maxDelayMs: 5, factor: 2 };

  it('retries transient errors and then succeeds', async () => {
    let calls = 0;
    const retries: number[] = [];
    const result = await withRetry(
      async () => {
        calls++;
        if (calls < 3) throw new TransientError('slow down', { backend: 't' });
        return 'ok';
      },
      { policy, backend: 't', onRetry: (i) => retries.push(i.attempt) },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
    expect(retries).toEqual([1, 2]);
  });

  it('never retries a permanent error', async () => {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw new NotFoundError('x');
        },
        { policy, backend: 't' },
      ),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect(calls).toBe(1);
  });

  it('gives up after the policy and surfaces the transient error', async () => {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw new TransientError('503');
        },
        { policy, backend: 't' },
      ),
    ).rejects.toBeInstanceOf(TransientError);
    expect(calls).toBe(4);
  });

  it('stops on abort', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(withRetry(async () => 1, { policy, backend: 't', signal: controller.signal })).rejects.toBeInstanceOf(
      AbortedError,
    );
  });

  it('waits the one backoff between attempts: retryDelayMs of each retry, jittered 1 to 2 times', async () => {
    // Fake timers: the waits asked for are recorded, not timed (a wall-clock bound
    // turned red on a busy machine).
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const asked: number[] = [];
    const realSetTimeout = globalThis.setTimeout;
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      asked.push(ms ?? 0);
      return realSetTimeout(fn, ms);
    }) as typeof setTimeout);
    try {
      const slow = { retries: 2, minDelayMs: 40, maxDelayMs: 1_000, factor: 2 };
      let calls = 0;
      const done = withRetry(
        async () => {
          if (++calls < 3) throw new TransientError('503');
          return 'ok';
        },
        { policy: slow, backend: 't' },
      );
      await vi.runAllTimersAsync();
      expect(await done).toBe('ok');
      expect(calls).toBe(3);
      // 40 then 80 ms before jitter, each times 1 to 2; p-retry adds no wait of its own.
      const waits = asked.filter((ms) => ms > 0);
      expect(waits).toHaveLength(2);
      expect(waits[0]).toBeGreaterThanOrEqual(40);
      expect(waits[0]).toBeLessThanOrEqual(80);
      expect(waits[1]).toBeGreaterThanOrEqual(80);
      expect(waits[1]).toBeLessThanOrEqual(160);
      for (let i = 0; i < 50; i++) {
        const third = retryDelayMs(slow, 3);
        expect(third).toBeGreaterThanOrEqual(160);
        expect(third).toBeLessThanOrEqual(320);
      }
      expect(retryDelayMs({ ...slow, maxDelayMs: 50 }, 5)).toBe(50);
    } finally {
      spy.mockRestore();
      vi.useRealTimers();
    }
  });

  it('an abort ends the backoff at once: waitBeforeRetry resolves, withRetry rejects as aborted', async () => {
    // Fake timers that never advance: whatever settles here settles on the abort alone.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const long = { retries: 3, minDelayMs: 10_000, maxDelayMs: 10_000, factor: 1 };
      const controller = new AbortController();
      let waited = false;
      const wait = waitBeforeRetry(long, 1, controller.signal).then(() => {
        waited = true;
      });
      await Promise.resolve();
      expect(waited).toBe(false);
      controller.abort();
      await wait;
      expect(waited).toBe(true);

      const second = new AbortController();
      let calls = 0;
      const failing = withRetry(
        async () => {
          calls++;
          throw new TransientError('503');
        },
        { policy: long, backend: 't', signal: second.signal },
      );
      const outcome = failing.catch((e: unknown) => e);
      // Let the first attempt fail and the backoff begin, then abort in its middle.
      for (let i = 0; i < 20 && vi.getTimerCount() === 0; i++) await Promise.resolve();
      expect(vi.getTimerCount()).toBe(1);
      second.abort();
      expect(await outcome).toBeInstanceOf(AbortedError);
      expect(calls).toBe(1);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('parses backendArgs.retry, naming bad fields', () => {
    expect(parseRetryPolicy({ retries: 0 }, 's3').retries).toBe(0);
    expect(() => parseRetryPolicy({ retries: -1 }, 's3')).toThrow(/\[s3\] option "retry.retries" got -1/);
    expect(() => parseRetryPolicy({ retry: 1 }, 's3')).toThrow(/unknown retry option "retry"/);
    expect(() => parseRetryPolicy({ factor: 0.5 }, 's3')).toThrow(/retry.factor/);
  });
});

describe('redact', () => {
  it('removes configured secrets and secret-shaped URL parameters', () => {
    const out = redact('GET https://a.blob.core.windows.net/c/k?sv=2020&sig=abc%2Fdef&se=1 with key SUPERSECRETKEY', [
      'SUPERSECRETKEY',
    ]);
    expect(out).not.toContain('abc%2Fdef');
    expect(out).not.toContain('SUPERSECRETKEY');
    expect(redact('DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=Eby8vdM02x==;')).not.toContain('Eby8vdM02x');
  });
});
