// Bounded-concurrency maps for a save's requests.
import pMap from 'p-map';

/**
 * Maps with bounded concurrency, in order. After the first failure nothing new starts,
 * the calls in flight are waited for, and that first error is thrown: no request of a
 * failed save is still writing when the caller goes on (a resume, a retry).
 */
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
