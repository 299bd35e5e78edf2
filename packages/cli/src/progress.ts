// A one-line progress bar on stderr for transfers, shown only on a terminal.
export interface Progress {
  start(total: number): void;
  update(done: number): void;
  done(): void;
}

export const silentProgress: Progress = { start() {}, update() {}, done() {} };

const MiB = 1024 * 1024;

/**
 * Draws on `stream` (stderr, so that stdout stays clean for pipes) when `interactive`
 * (stdout is a terminal) and the transfer is larger than `minBytes`.
 */
export function terminalProgress(
  stream: Pick<NodeJS.WriteStream, 'write'> = process.stderr,
  interactive: boolean = process.stdout.isTTY === true,
  minBytes = 4 * MiB,
): Progress {
  let total = 0;
  let last = 0;
  let latest = 0;
  const active = () => interactive && total >= minBytes;
  const draw = (done: number) => {
    const ratio = total === 0 ? 1 : Math.min(1, done / total);
    const width = 30;
    const bar = '#'.repeat(Math.round(ratio * width)).padEnd(width, '.');
    stream.write(
      `\r[${bar}] ${(ratio * 100).toFixed(0).padStart(3)}% ${(done / MiB).toFixed(1)}/${(total / MiB).toFixed(1)} MiB`,
    );
  };
  return {
    start(t) {
      total = t;
      latest = 0;
    },
    update(done) {
      latest = done;
      const now = Date.now();
      // At most ten redraws a second: a fast transfer must not spend its time drawing.
      if (!active() || now - last < 100) return;
      last = now;
      draw(done);
    },
    done() {
      // The last update was probably skipped by the throttle: draw the final state, then end the line.
      if (!active()) return;
      draw(latest);
      stream.write('\n');
    },
  };
}
