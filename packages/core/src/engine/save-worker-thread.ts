// The save worker's thread (save-worker.ts says why it exists). It registers the
// run's backends from their source modules, opens the run as the hook did, takes the
// fenced pointer over, then carries out each save point it is sent, in order, with
// the same steps as the main thread would (save-steps.ts). Between save points it
// holds nothing but the run's stores.
import { parentPort, workerData } from 'node:worker_threads';
import type { FenceHolder } from '../run/fenced-pointer.js';
import { Run } from '../run/run.js';
import { errorToWire, type SavepointError } from '../store/errors.js';
import type { Logger } from './runner.js';
import { runSteps, type SaveStep } from './save-steps.js';
import { checkpointFromWire, type FromWorker, type LogLine, type SaveWorkerSpec, type ToWorker } from './save-worker.js';

const port = parentPort;
if (!port) throw new Error('save-worker-thread.js runs only as a worker thread');
const spec = workerData as SaveWorkerSpec;
const controller = new AbortController();

for (const source of spec.sources) {
  const module = (await import(source.module)) as Record<string, unknown>;
  const register = module[source.register];
  if (typeof register !== 'function') throw new Error(`${source.module} has no function ${source.register}`);
  (register as () => void)();
}

const run = Run.open(spec.workDir, {
  backendArgs: spec.backendArgs,
  outDir: spec.outDir,
  filenameTmpl: spec.filenameTmpl,
  metrics: spec.metrics,
  signal: controller.signal,
});

/** The hook's lease as this thread knows it: lost once a fenced move finds another holder (the hook is told with the error). */
class LeaseStandIn implements FenceHolder {
  lost: SavepointError | undefined;
  constructor(
    readonly path: string,
    readonly generation: number,
    readonly tookOver: boolean,
  ) {}
  markLost(error: SavepointError): void {
    this.lost ??= error;
  }
}
if (spec.fence) {
  run.adoptFence(new LeaseStandIn(spec.fence.leasePath, spec.fence.state.generation, spec.fence.tookOver), spec.fence.state);
}

let logs: LogLine[] = [];
const logger: Logger = {
  info: (text) => logs.push(['info', text]),
  warn: (text) => logs.push(['warn', text]),
};

/** Save points sent and not finished, by id: a `supersede` aborts one before its commit. */
const superseders = new Map<number, AbortController>();

async function carryOut(id: number, wire: SaveStep[]): Promise<void> {
  const steps = wire.map((step) =>
    step.kind === 'save' ? { ...step, checkpoint: checkpointFromWire(step.checkpoint) as Record<string, unknown> } : step,
  );
  logs = [];
  const supersede = superseders.get(id) ?? new AbortController();
  try {
    await runSteps(run, logger, spec.layout, steps, supersede.signal);
    port?.postMessage({ type: 'done', id, logs } satisfies FromWorker);
  } catch (error) {
    port?.postMessage({ type: 'failed', id, error: errorToWire(error), logs } satisfies FromWorker);
  } finally {
    superseders.delete(id);
  }
}

// One save point at a time, in the order sent (the hook sends the next once this one is done).
let queue: Promise<void> = Promise.resolve();
port.on('message', (message: ToWorker) => {
  if (message.type === 'abort') {
    controller.abort(new Error("the hook's signal was aborted"));
    return;
  }
  if (message.type === 'supersede') {
    superseders.get(message.id)?.abort(new Error('a newer save point replaces it'));
    return;
  }
  if (message.type === 'run') superseders.set(message.id, new AbortController());
  queue = queue.then(async () => {
    if (message.type === 'run') return carryOut(message.id, message.steps);
    const fence = run.fenceState;
    await run.close();
    port?.postMessage({ type: 'done', id: message.id, logs: [], fence } satisfies FromWorker);
  });
});
port.postMessage({ type: 'ready' } satisfies FromWorker);
