// A caller's signal keeps one 'abort' listener however many calls subscribe to it,
// and none once they are all done.
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { callSignal, onAbort } from '../src/store/abort-listeners.js';

describe('onAbort', () => {
  it('puts one listener on the signal for any number of subscribers, and removes it when the last leaves', () => {
    const { signal } = new AbortController();
    const unsubscribers = Array.from({ length: 100 }, () => onAbort(signal, () => {}));
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    for (const unsubscribe of unsubscribers.slice(0, 99)) unsubscribe();
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    unsubscribers[99]?.();
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    // A signal left alone can be subscribed to again.
    const again = onAbort(signal, () => {});
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    again();
  });

  it('calls each live subscriber once on abort, and not those that left', () => {
    const controller = new AbortController();
    const calls: string[] = [];
    const listener = () => calls.push('shared');
    onAbort(controller.signal, listener);
    onAbort(controller.signal, listener);
    const leave = onAbort(controller.signal, () => calls.push('left'));
    onAbort(controller.signal, () => calls.push('stayed'));
    leave();
    controller.abort();
    controller.abort();
    expect(calls.sort()).toEqual(['shared', 'shared', 'stayed']);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});

describe('callSignal', () => {
  it('follows its parent with the same reason, and release() unlinks it', () => {
    const parent = new AbortController();
    const linked = callSignal(parent.signal);
    const released = callSignal(parent.signal);
    released.release();
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(1);
    const reason = new Error('stop');
    parent.abort(reason);
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe(reason);
    expect(released.signal.aborted).toBe(false);
  });

  it('is aborted at once when its parent already is', () => {
    const reason = new Error('already');
    const linked = callSignal(AbortSignal.abort(reason));
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe(reason);
    linked.release();
  });
});
