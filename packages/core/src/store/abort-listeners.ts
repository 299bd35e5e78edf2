// One 'abort' listener per signal, however many requests share it. A caller's signal
// (a training run's, say) may cover dozens of concurrent requests and thousands of
// calls over its life: a listener each trips Node's MaxListenersExceededWarning at 11,
// and one left behind per call grows without bound.

interface Subscribers {
  readonly listeners: Set<() => void>;
  readonly dispatch: () => void;
}

const bySignal = new WeakMap<AbortSignal, Subscribers>();

/**
 * Calls `listener` once when `signal` aborts (not at all if it already has: check
 * `signal.aborted` first). Returns the function that unsubscribes; call it when the
 * work the listener guards is over.
 */
export function onAbort(signal: AbortSignal, listener: () => void): () => void {
  let subscribers = bySignal.get(signal);
  if (!subscribers) {
    const listeners = new Set<() => void>();
    const dispatch = () => {
      bySignal.delete(signal);
      for (const each of listeners) each();
    };
    subscribers = { listeners, dispatch };
    bySignal.set(signal, subscribers);
    signal.addEventListener('abort', dispatch, { once: true });
  }
  // Its own entry, so one function subscribed twice is called twice and removed once.
  const entry = () => listener();
  const { listeners, dispatch } = subscribers;
  listeners.add(entry);
  return () => {
    listeners.delete(entry);
    if (listeners.size === 0 && bySignal.get(signal) === subscribers) {
      bySignal.delete(signal);
      signal.removeEventListener('abort', dispatch);
    }
  };
}

/**
 * A signal for one call that aborts when `parent` does: for APIs that subscribe on
 * every call (fs.readFile, createReadStream, SDK uploads), so that the
 * caller's signal keeps one listener. `release()` unlinks it when the call is over.
 */
export function callSignal(parent: AbortSignal): { signal: AbortSignal; release: () => void } {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { signal: controller.signal, release: () => {} };
  }
  return { signal: controller.signal, release: onAbort(parent, () => controller.abort(parent.reason)) };
}
