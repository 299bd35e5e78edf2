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
  const active = () => interactive && total >= minBytes;
  return {
    start(t) {
      total = t;
    },
    update(done) {
      const now = Date.now();
      if (!active() || now - last < 100) return;
      last = now;
      const ratio = Math.min(1, done / total);
      const width = 30;
      const bar = '#'.repeat(Math.round(ratio * width)).padEnd(width, '.');
      stream.write(
        `\r[${bar}] ${(ratio * 100).toFixed(0).padStart(3)}% ${(done / MiB).toFixed(1)}/${(total / MiB).toFixed(1)} MiB`,
      );
    },
    done() {
      if (active()) stream.write('\n');
    },
  };
}
