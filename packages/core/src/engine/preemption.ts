// (ours) Save on preemption: the signal handlers `saveOnSignals` installs. A handler
// only records the signal (and its deadline, `preemptionGraceMs` later) and tells the
// hook; the hook saves at the next step boundary, or at once when the loop is between
// steps. A handler runs only when the event loop is free: a synchronous step (a
// TensorFlow.js batch) is never interrupted, so the save follows the step that was
// running when the signal came. A second signal exits at once: the commit order keeps
// the previous checkpoint and the pointer whole at any moment.
import { constants } from 'node:os';

/** The exit code a shell reports for a process ended by `signal`: 128 + its number. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

export interface PreemptionRequest {
  signal: NodeJS.Signals;
  /** Past this time (ms since the epoch) the hook gives up and exits. */
  deadline: number;
}

export class SignalWatch {
  readonly #signals: readonly NodeJS.Signals[];
  readonly #graceMs: number;
  readonly #onSignal: (request: PreemptionRequest) => void;
  readonly #exit: (code: number) => void;
  readonly #handlers = new Map<NodeJS.Signals, () => void>();
  #request: PreemptionRequest | undefined;

  constructor(options: {
    signals: readonly NodeJS.Signals[];
    graceMs: number;
    onSignal: (request: PreemptionRequest) => void;
    exit: (code: number) => void;
  }) {
    this.#signals = options.signals;
    this.#graceMs = options.graceMs;
    this.#onSignal = options.onSignal;
    this.#exit = options.exit;
  }

  get request(): PreemptionRequest | undefined {
    return this.#request;
  }

  install(): void {
    for (const signal of this.#signals) {
      if (this.#handlers.has(signal)) continue;
      const handler = () => this.#received(signal);
      this.#handlers.set(signal, handler);
      process.on(signal, handler);
    }
  }

  uninstall(): void {
    for (const [signal, handler] of this.#handlers) process.off(signal, handler);
    this.#handlers.clear();
  }

  #received(signal: NodeJS.Signals): void {
    if (this.#request) {
      // Asked twice: stop now. Nothing half-done is ever visible (complete before the pointer moves).
      this.#exit(signalExitCode(signal));
      return;
    }
    this.#request = { signal, deadline: Date.now() + this.#graceMs };
    this.#onSignal(this.#request);
  }
}
