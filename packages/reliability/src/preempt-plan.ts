// What the preemption child and its test agree on.
export interface PreemptConfig {
  workDir: string;
  backendArgs: Record<string, unknown>;
  asyncSave: boolean;
  graceMs?: number;
  hangAfterSignal?: boolean;
  /** Busy-wait each step this long (a synchronous step: the signal waits for it to end). */
  stepMs: number;
}

/** Regular saves this far apart: the signal's save is the only one near the end. */
export const PREEMPT_INTERVAL = 5;
