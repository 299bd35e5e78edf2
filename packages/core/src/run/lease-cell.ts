// What the worker thread that renews a lease tells the main thread, in memory both
// threads see (a SharedArrayBuffer). A message would wait for the main thread's event
// loop, which a synchronous training step holds for minutes; the cell is read at
// once: `RunLease.lost` and `renewIfDue()` stay synchronous and cheap. Only the worker
// writes a cell (once it was handed the lease); the main thread only reads it.
//
// Layout: int32 slots [state, seq, version length, lost length], two float64 times
// (last renewal sent, expiry), then the version's bytes and the lost lease's details.
// `seq` is a sequence lock: odd while the worker writes the version and times, so a
// reader that saw it change reads again (never a version with another renewal's expiry).

const STATE = 0;
const SEQ = 1;
const VERSION_LENGTH = 2;
const LOST_LENGTH = 3;
const TIMES_AT = 16;
const VERSION_AT = 32;
/** Store versions are ETags, generations, or mtime and size: far shorter than this. */
export const MAX_VERSION_BYTES = 2048;
const LOST_AT = VERSION_AT + MAX_VERSION_BYTES;
/** A lease is read with at most 8 KiB (lease-steps.ts); its record as JSON, with room to spare. */
const MAX_LOST_BYTES = 32 * 1024;
const SIZE = LOST_AT + MAX_LOST_BYTES;

/** The cell's states. `RENEWING` until the worker finds the lease taken over, or releases it. */
export const RENEWING = 1;
export const LOST = 2;
export const RELEASED = 3;

export interface CellTimes {
  version: string;
  /** When the last renewal that landed was sent (ms since the epoch). */
  renewedAt: number;
  /** The expiry that renewal wrote (ms since the epoch). */
  expiresAt: number;
}

export class LeaseCell {
  readonly buffer: SharedArrayBuffer;
  readonly #ints: Int32Array;
  readonly #times: Float64Array;
  readonly #bytes: Uint8Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(SIZE)) {
    this.buffer = buffer;
    this.#ints = new Int32Array(buffer, 0, 4);
    this.#times = new Float64Array(buffer, TIMES_AT, 2);
    this.#bytes = new Uint8Array(buffer);
  }

  get state(): number {
    return Atomics.load(this.#ints, STATE);
  }

  /** (worker, or the main thread before it hands the lease over) The lease as last renewed. */
  publish(times: CellTimes): void {
    const version = new TextEncoder().encode(times.version);
    if (version.length > MAX_VERSION_BYTES) throw new RangeError(`a lease version of ${version.length} bytes`);
    Atomics.add(this.#ints, SEQ, 1);
    this.#bytes.set(version, VERSION_AT);
    Atomics.store(this.#ints, VERSION_LENGTH, version.length);
    this.#times[0] = times.renewedAt;
    this.#times[1] = times.expiresAt;
    Atomics.add(this.#ints, SEQ, 1);
  }

  /** (main thread) The lease as last renewed, never torn between two renewals. */
  read(): CellTimes {
    for (;;) {
      const before = Atomics.load(this.#ints, SEQ);
      if (before % 2 === 1) continue; // the worker is writing: a few instructions
      const length = Atomics.load(this.#ints, VERSION_LENGTH);
      const version = new TextDecoder().decode(this.#bytes.slice(VERSION_AT, VERSION_AT + length));
      const renewedAt = this.#times[0] as number;
      const expiresAt = this.#times[1] as number;
      if (Atomics.load(this.#ints, SEQ) === before) return { version, renewedAt, expiresAt };
    }
  }

  /** (worker) Renewing from now on. */
  start(): void {
    Atomics.store(this.#ints, STATE, RENEWING);
  }

  /** (worker) The lease was taken over: `detail` (JSON) says by whom; written before the state, so a reader of LOST sees it. */
  markLost(detail: string): void {
    let bytes = new TextEncoder().encode(detail);
    if (bytes.length > MAX_LOST_BYTES) bytes = new Uint8Array(0);
    this.#bytes.set(bytes, LOST_AT);
    Atomics.store(this.#ints, LOST_LENGTH, bytes.length);
    Atomics.store(this.#ints, STATE, LOST);
  }

  /** (main thread, once the state is LOST) What `markLost` was given; empty when it did not fit. */
  lostDetail(): string {
    const length = Atomics.load(this.#ints, LOST_LENGTH);
    return new TextDecoder().decode(this.#bytes.slice(LOST_AT, LOST_AT + length));
  }

  /** (worker) Released: the lease was deleted (or found someone else's), nothing renews it any more. */
  markReleased(): void {
    Atomics.compareExchange(this.#ints, STATE, RENEWING, RELEASED);
  }
}
