// Which regular checkpoints a run keeps: the newest `maxKeepCkpts` steps, as the
// reference's `keep_ckpt_ids` deque. One module decides it, for a save and for a
// resume that finds more than the limit.

/** What the run keeps between saves: the steps of its regular checkpoints, and the last one saved. */
export interface RetentionState {
  keepCkptIds: number[];
  /** The name of the last regular checkpoint of this run (the reference's `last_ckpt`). */
  lastCkpt: string | undefined;
}

/**
 * The keep list after saving `step`, and the steps it drops. A step already at the end
 * (a re-save of the same step, as after a new best) is not added twice. `maxKeep <= 0` keeps all.
 */
export function rotate(keep: readonly number[], step: number, maxKeep: number): { keep: number[]; dropped: number[] } {
  if (maxKeep <= 0) return { keep: [...keep], dropped: [] };
  const ids = [...keep];
  const dropped: number[] = [];
  if (!(ids.length > 0 && ids[ids.length - 1] === step)) {
    if (ids.length === maxKeep) dropped.push(ids.shift() as number);
    ids.push(step);
  }
  return { keep: ids, dropped };
}

/** A keep list read back on resume, cut to `maxKeep` (oldest first out). */
export function trimKept(keep: readonly number[], maxKeep: number): { keep: number[]; dropped: number[] } {
  const ids = [...keep];
  const dropped: number[] = [];
  while (maxKeep > 0 && ids.length > maxKeep) dropped.push(ids.shift() as number);
  return { keep: ids, dropped };
}

/** The steps of a stored `keep_ckpt_ids`, or undefined when it is not a list of steps. */
export function parseKeptSteps(value: unknown): number[] | undefined {
  if (!Array.isArray(value)) return undefined;
  return value.every((id) => Number.isSafeInteger(id) && id >= 0) ? [...value] : undefined;
}
