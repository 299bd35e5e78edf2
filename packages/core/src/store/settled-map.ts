// Bounded-concurrency maps that never leave a request behind: after the first failure
// nothing new starts, the calls in flight are waited for, and only then is that first
// error thrown. A caller that cleans up after a failure (aborts a multipart upload,
// resumes, retries) so never races a request of its own that is still writing: S3
// keeps an upload alive when a part lands after its AbortMultipartUpload.
import pMap from 'p-map';

/** Maps `items` with at most `concurrency` calls at once; results in order. */
export async function settledMap<T, R>(items: readonly T[], fn: (item: T) => Promise<R>, concurrency: number): Promise<R[]> {
  let failure: { error: unknown } | undefined;
  const results = await pMap(
    items,
    async (item) => {
      if (failure) return undefined;
      try {
        return await fn(item);
      } catch (error) {
        failure ??= { error };
        return undefined;
      }
    },
    { concurrency },
  );
  if (failure) throw failure.error;
  return results as R[];
}

/**
 * Runs `fn` on each item of a stream, at most `concurrency` at once, pulling the stream
 * one item at a time (so it is never asked for an item while it is still producing one).
 * A failure of the stream or of a call stops the pulls; the calls in flight are waited
 * for; the first error is thrown. (p-map 7.1.1 on an async iterable can resolve when the
 * stream throws while every slot is busy: a second pull's `done` settles it first, and a
 * failed upload body would be committed cut short.)
 */
export async function settledEach<T>(
  source: AsyncIterable<T>,
  fn: (item: T, index: number) => Promise<unknown>,
  concurrency: number,
): Promise<number> {
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let count = 0;
  try {
    for await (const item of source) {
      const task: Promise<void> = fn(item, count++).then(
        () => {
          inFlight.delete(task);
        },
        (error: unknown) => {
          failure ??= { error };
          inFlight.delete(task);
        },
      );
      inFlight.add(task);
      while (inFlight.size >= concurrency && !failure) await Promise.race(inFlight);
      if (failure) break;
    }
  } catch (error) {
    failure ??= { error };
  }
  await Promise.all(inFlight);
  if (failure) throw failure.error;
  return count;
}
