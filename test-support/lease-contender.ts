// Another job that wants a run: a separate node process (another pid: only the lease's
// expiry can let it in) that tries to take the run's lease every `everyMs`, through the
// built packages as a job would, and reports each attempt on stdout. It runs on while
// the test's own thread is blocked, which is the point: it is the job that would take
// a run over whose lease lapsed during a long synchronous step.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const CORE = pathToFileURL(join(import.meta.dirname, '..', 'packages', 'core', 'dist', 'index.js')).href;

export interface Attempt {
  /** When the attempt ended (ms since the epoch). */
  at: number;
  /** Whether it took the lease (then it released it at once). */
  took: boolean;
  /** The error code of a refused attempt (`LEASE_HELD`). */
  code?: string;
  generation?: number;
}

export interface ContenderOptions {
  workDir: string;
  /** The built module of the backend (its `dist/index.js` URL) and its register function's name. */
  backendModule: string;
  register: string;
  backendArgs: Record<string, unknown>;
  everyMs: number;
}

export interface Contender {
  /** Resolves at its first attempt: the process is up and trying. */
  ready: Promise<Attempt>;
  /** Ends the process (after its attempt in flight) and gives all its attempts. */
  stop(): Promise<Attempt[]>;
}

export function startContender(options: ContenderOptions): Contender {
  const script = `const { Run } = await import(${JSON.stringify(CORE)});
const backend = await import(${JSON.stringify(options.backendModule)});
backend[${JSON.stringify(options.register)}]();
let stopping = false;
process.stdin.on('end', () => { stopping = true; });
process.stdin.resume();
while (!stopping) {
  const run = Run.open(${JSON.stringify(options.workDir)}, { backendArgs: ${JSON.stringify(options.backendArgs)} });
  try {
    const lease = await run.acquireLease({ ttlMs: 30000, purpose: 'contender' });
    console.log(JSON.stringify({ at: Date.now(), took: true, generation: lease.generation }));
    await lease.release();
  } catch (e) {
    console.log(JSON.stringify({ at: Date.now(), took: false, code: e.code ?? String(e) }));
  } finally {
    await run.close();
  }
  await new Promise((resolve) => setTimeout(resolve, ${options.everyMs}));
}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const attempts: Attempt[] = [];
  let buffered = '';
  let first: (attempt: Attempt) => void = () => {};
  const ready = new Promise<Attempt>((resolve, reject) => {
    first = resolve;
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`the contender exited (code ${code}) before its first attempt`)));
  });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      const attempt = JSON.parse(line) as Attempt;
      attempts.push(attempt);
      if (attempts.length === 1) first(attempt);
    }
  });
  // 'close', not 'exit': every line it wrote has been read by then.
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return {
    ready,
    async stop() {
      child.stdin.end();
      await exited;
      return attempts;
    },
  };
}
