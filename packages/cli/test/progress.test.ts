import { describe, expect, it } from 'vitest';
import { terminalProgress } from '../src/progress.js';

describe('progress bar', () => {
  const MiB = 1024 * 1024;
  it('draws on a terminal for transfers of more than a few MiB, and finishes the line', async () => {
    const written: string[] = [];
    const bar = terminalProgress({ write: (s: string) => written.push(s) !== 0 }, true);
    bar.start(10 * MiB);
    bar.update(5 * MiB);
    bar.done();
    expect(written[0]).toMatch(/\[#{15}\.{15}\]\s+50% 5\.0\/10\.0 MiB/);
    expect(written.at(-1)).toBe('\n');
  });
  it('ends at 100% even when the last updates came faster than the redraw limit', () => {
    const written: string[] = [];
    const bar = terminalProgress({ write: (s: string) => written.push(s) !== 0 }, true);
    bar.start(10 * MiB);
    for (let done = MiB; done <= 10 * MiB; done += MiB) bar.update(done); // all within 100 ms
    bar.done();
    expect(written.at(-2)).toMatch(/\[#{30}\]\s+100% 10\.0\/10\.0 MiB/);
    expect(written.at(-1)).toBe('\n');
  });
  it('stays silent when stdout is not a terminal, or the transfer is small', () => {
    const written: string[] = [];
    const piped = terminalProgress({ write: (s: string) => written.push(s) !== 0 }, false);
    piped.start(100 * MiB);
    piped.update(50 * MiB);
    piped.done();
    const small = terminalProgress({ write: (s: string) => written.push(s) !== 0 }, true);
    small.start(1024);
    small.update(512);
    small.done();
    expect(written).toEqual([]);
  });
});
