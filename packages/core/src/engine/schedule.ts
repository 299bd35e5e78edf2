// When a regular checkpoint is due: every `interval` steps counted from `saveBegin`,
// and at the last step with `saveLast` (the reference's `every_n_epochs` /
// `every_n_train_iters` and `is_last_train_epoch` / `is_last_train_iter`).
export interface SaveSchedule {
  interval: number;
  saveBegin: number;
  saveLast: boolean;
}

export function isSaveDue(schedule: SaveSchedule, step: number, lastStep: number): boolean {
  const { interval, saveBegin, saveLast } = schedule;
  const byInterval = interval > 0 && step >= saveBegin && (step - saveBegin) % interval === 0;
  return byInterval || (saveLast && step === lastStep);
}
