// The `savepoint` command line. Exit codes: 0 ok; 1 not found or a failed check;
// 2 bad usage. Errors name the path and the fix; stacks only with --verbose.

import { createRequire } from 'node:module';
import {
  type BackendArgs,
  type CheckpointInfo,
  ConfigError,
  InvalidPathError,
  NotFoundError,
  redact,
  SavepointError,
} from '@savepoint/core';
import { Command, CommanderError, Option } from 'commander';
import { CheckFailed, type CommandOptions, cp, inspect, latest, ls, prune, publish, verify } from './commands.js';
import { cliPath } from './paths.js';
import { printable, printableJson } from './printable.js';
import { terminalProgress } from './progress.js';
import { parseBackendArgs, registerAllBackends } from './stores.js';
import { formatTable } from './table.js';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

const defaultIo: Io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), env: process.env };

function human(bytes: number | undefined): string {
  if (bytes === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function marks(c: CheckpointInfo): string {
  const out: string[] = [];
  if (c.isPointerTarget) out.push('<- last_checkpoint');
  if (c.kind === 'best') out.push(`best(${c.metric})`);
  if (c.kind === 'published') out.push('published');
  if (c.shape === 'incomplete') out.push('INCOMPLETE (no manifest)');
  else if (c.shape === 'directory') out.push('folder');
  return out.join(' ');
}

function exitCodeFor(error: unknown): number {
  if (error instanceof CheckFailed || error instanceof NotFoundError) return 1;
  if (error instanceof ConfigError || error instanceof InvalidPathError) return 2;
  return 1;
}

const EXAMPLES = `
Examples:
  savepoint ls ./work_dirs/demo
  savepoint latest s3://my-bucket/runs/exp1
  savepoint inspect gs://my-bucket/runs/exp1/epoch_10.safetensors --json
  savepoint verify az://ckpts/exp1
  savepoint prune ./work_dirs/demo --keep 2 --yes
  savepoint publish ./work_dirs/demo/epoch_10.safetensors --keys meta,state_dict
  savepoint cp ./work_dirs/demo/epoch_10.safetensors s3://my-bucket/exp1/epoch_10.safetensors

Store settings: --backend-args '<json>' or SAVEPOINT_BACKEND_ARGS, with the backends' own keys
(e.g. '{"endpoint":"http://127.0.0.1:9000","forcePathStyle":true}'), or keyed by backend
('{"s3":{...},"gcs":{...}}') when a command touches two stores.`;

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  registerAllBackends();
  let verbose = argv.includes('--verbose');
  let json = argv.includes('--json');
  const program = new Command('savepoint')
    .description('List, inspect, verify, prune, publish and copy ML training checkpoints on any store.')
    .addOption(new Option('--backend-args <json>', 'store settings as JSON (default: $SAVEPOINT_BACKEND_ARGS)'))
    .option('--json', 'machine-readable output')
    .option('--verbose', 'show stack traces on errors')
    .version(VERSION, '-V, --version', 'print the savepoint version')
    .addHelpText('after', EXAMPLES)
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run savepoint --help for usage)');

  const settings = () => {
    const opts = program.opts<{ backendArgs?: string; json?: boolean; verbose?: boolean }>();
    json = !!opts.json;
    verbose = !!opts.verbose;
    const raw = opts.backendArgs ?? io.env.SAVEPOINT_BACKEND_ARGS;
    return parseBackendArgs(raw, opts.backendArgs !== undefined ? '--backend-args' : 'SAVEPOINT_BACKEND_ARGS');
  };
  const cmdOptions = (): CommandOptions => ({ backendArgs: settings() as BackendArgs });
  const print = (data: unknown, text: () => string) =>
    io.out(json ? `${printableJson(JSON.stringify(data, null, 2))}\n` : `${printable(text())}\n`);

  program
    .command('ls')
    .addHelpText('after', `\nExamples:\n  savepoint ls ./work_dirs/demo\n  savepoint ls s3://bucket/runs/exp1 --json`)
    .argument('<dir>', 'run folder (path or URI)')
    .description(
      'list the checkpoints in a run folder, marking the pointer target, bests, published copies and incomplete folders',
    )
    .action(async (dir: string) => {
      const result = await ls(cliPath(dir), cmdOptions());
      print(result, () =>
        result.checkpoints.length === 0
          ? `no checkpoints in ${dir}`
          : formatTable(
              [
                ['NAME', 'STEP', 'SIZE', 'MODIFIED', 'NOTES'],
                ...[...result.checkpoints]
                  .sort((a, b) => (a.step ?? -1) - (b.step ?? -1) || a.name.localeCompare(b.name))
                  .map((c) => [c.name, `step ${c.step ?? '-'}`, human(c.size), c.modified?.toISOString() ?? '-', marks(c)]),
              ],
              ['left', 'left', 'right', 'left', 'left'],
            ),
      );
    });

  program
    .command('latest')
    .addHelpText(
      'after',
      `\nExamples:\n  savepoint latest ./work_dirs/demo\n  savepoint latest gs://bucket/runs/exp1 || echo 'nothing saved yet'`,
    )
    .argument('<dir>', 'work dir holding last_checkpoint')
    .description('print the checkpoint that last_checkpoint names; exit 1 if there is none')
    .action(async (dir: string) => {
      const result = await latest(cliPath(dir), cmdOptions());
      print(result, () => result.pointer);
    });

  program
    .command('inspect')
    .addHelpText(
      'after',
      `\nExamples:\n  savepoint inspect ./work_dirs/demo/epoch_10.safetensors\n  savepoint inspect az://ckpts/exp1/best_acc_epoch_8.safetensors --json`,
    )
    .argument('<checkpoint>', 'checkpoint file or folder')
    .description('show tensors (name, dtype, shape, bytes) and metadata, reading only the header')
    .action(async (path: string) => {
      const result = await inspect(cliPath(path), cmdOptions());
      print(result, () =>
        [
          `${path} (${result.shape}, header ${human(result.bytesRead)} read)`,
          'tensors:',
          // The empty first column indents the table under its heading.
          ...(result.tensors.length
            ? [formatTable(result.tensors.map((t) => ['', t.name, t.dtype, `[${t.shape.join(', ')}]`, human(t.bytes)]))]
            : []),
          'metadata:',
          ...Object.entries(result.metadata).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
        ].join('\n'),
      );
    });

  program
    .command('verify')
    .addHelpText(
      'after',
      `\nExamples:\n  savepoint verify ./work_dirs/demo\n  savepoint verify s3://bucket/runs/exp1/epoch_10.safetensors`,
    )
    .argument('<path>', 'a checkpoint, or a run folder to verify every checkpoint in it')
    .description('check that every checkpoint opens and that each folder checkpoint matches its manifest')
    .action(async (path: string) => {
      const result = await verify(cliPath(path), cmdOptions());
      print(result, () =>
        result.results
          .map(
            (r) =>
              `${r.ok ? 'ok  ' : 'FAIL'}  ${r.path}${r.target ? ` -> ${r.target}` : ''}${r.error ? `: ${r.error}` : ''}${r.note ? ` (${r.note})` : ''}`,
          )
          .join('\n'),
      );
      if (!result.ok) throw new CheckFailed(`${result.results.filter((r) => !r.ok).length} checkpoint(s) failed verification`);
    });

  const positive = (flag: string, what: string) => (v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < 1)
      throw new ConfigError(`${flag} got ${JSON.stringify(v)}; accepted: an integer >= 1 (${what})`, { option: flag });
    return Number(v);
  };
  program
    .command('prune')
    .addHelpText(
      'after',
      `\nExamples:\n  savepoint prune ./work_dirs/demo --keep 2        # show what would go\n  savepoint prune ./work_dirs/demo --keep 2 --yes  # delete it\n  savepoint prune ./work_dirs/demo --keep 2 --keep-period 10 --keep-interval 6h --top-k 3 --dry-run`,
    )
    .argument('<dir>', 'run folder')
    .requiredOption(
      '--keep <n>',
      'regular checkpoints to keep (the newest, besides those kept forever)',
      positive('--keep', 'checkpoints'),
    )
    .option(
      '--keep-period <n>',
      'also keep every regular checkpoint whose step is a multiple of n',
      positive('--keep-period', 'steps'),
    )
    .option(
      '--keep-interval <duration>',
      "also keep the first regular checkpoint of each interval since the run's start (e.g. 90s, 30m, 6h, 1d, or ms)",
      parseDuration,
    )
    .option(
      '--top-k <n>',
      'keep the k best checkpoints of each metric (by the scores the run recorded)',
      positive('--top-k', 'bests per metric'),
    )
    .option('--dry-run', 'list every checkpoint with the rule that keeps it or why it would go; delete nothing')
    .option('--yes', 'delete (without it, only show what would be deleted)')
    .option('--filename-tmpl <tmpl>', "the run's filenameTmpl, when it is not epoch_{}.safetensors or iter_{}.safetensors")
    .description(
      "delete the checkpoints the retention policy does not keep; never the pointer's target, a newer one, a published copy or a file that is not the run's",
    )
    .action(
      async (
        dir: string,
        opts: {
          keep: number;
          keepPeriod?: number;
          keepInterval?: number;
          topK?: number;
          dryRun?: boolean;
          yes?: boolean;
          filenameTmpl?: string;
        },
      ) => {
        if (opts.dryRun && opts.yes) {
          throw new ConfigError('--dry-run and --yes were both given; accepted: one of them', { option: '--dry-run' });
        }
        const policy = { keep: opts.keep, keepPeriod: opts.keepPeriod, keepIntervalMs: opts.keepInterval, topK: opts.topK };
        const result = await prune(cliPath(dir), policy, !!opts.yes, { ...cmdOptions(), filenameTmpl: opts.filenameTmpl });
        print(result, () => {
          if (opts.dryRun) {
            return result.verdicts.map((v) => `${v.keep ? 'keep' : 'go  '}  ${v.path}  (${v.rule})`).join('\n');
          }
          return result.toDelete.length === 0
            ? 'nothing to delete'
            : [`${result.deleted ? 'deleted' : 'would delete (add --yes)'}:`, ...result.toDelete.map((p) => `  ${p}`)].join('\n');
        });
      },
    );

  program
    .command('publish')
    .addHelpText('after', `\nExamples:\n  savepoint publish ./work_dirs/demo/epoch_10.safetensors --keys meta,state_dict`)
    .argument('<checkpoint>', 'checkpoint to publish')
    .requiredOption('--keys <keys>', 'top-level keys to keep, comma-separated (e.g. meta,state_dict)')
    .description('write the slim published copy next to the checkpoint, named by the SHA-256 of its bytes')
    .action(async (path: string, opts: { keys: string }) => {
      const keys = opts.keys
        .split(',')
        .map((k) => k.trim())
        .filter(Boolean);
      if (keys.length === 0)
        throw new ConfigError('--keys got no key; accepted: a comma-separated list such as meta,state_dict', {
          option: '--keys',
        });
      const result = await publish(cliPath(path), keys, cmdOptions());
      print(result, () => `${result.path}${result.removedKeys.length ? ` (dropped ${result.removedKeys.join(', ')})` : ''}`);
    });

  program
    .command('cp')
    .addHelpText(
      'after',
      `\nExamples:\n  savepoint cp ./work_dirs/demo/epoch_10.safetensors s3://bucket/exp1/epoch_10.safetensors\n  savepoint cp gs://a/run/epoch_4.safetensors az://b/run/epoch_4.safetensors --backend-args '{"gcs":{...},"azure":{...}}'`,
    )
    .argument('<src>', 'checkpoint file or folder')
    .argument('<dst>', 'destination path or URI')
    .description('copy a checkpoint file or folder between any two stores, streaming')
    .action(async (src: string, dst: string) => {
      const result = await cp(cliPath(src), cliPath(dst), cmdOptions(), json ? undefined : terminalProgress());
      print(result, () => `copied ${result.files} file(s), ${human(result.bytes)}`);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.help' || error.code === 'commander.version')
        return 0;
      // commander has already printed the usage problem.
      return 2;
    }
    const message = error instanceof Error ? error.message : String(error);
    if (json) {
      // Machine-readable to the end: a script reading --json output gets JSON errors too.
      const code = error instanceof SavepointError || error instanceof CheckFailed ? error.code : (error as Error)?.name;
      io.err(`${printableJson(JSON.stringify({ error: { message: redact(message), code, exitCode: exitCodeFor(error) } }))}\n`);
      return exitCodeFor(error);
    }
    io.err(`savepoint: ${printable(redact(message))}\n`);
    if (verbose && error instanceof Error && error.stack) io.err(`${printable(redact(error.stack))}\n`);
    if (error instanceof SavepointError && error.code === 'PERMISSION_DENIED') return 1;
    return exitCodeFor(error);
  }
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--keep-interval`: a whole number of ms, or with one unit (ms, s, m, h, d). */
function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
  const ms = match ? Number(match[1]) * (DURATION_UNITS[match[2] ?? 'ms'] as number) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms < 1) {
    throw new ConfigError(
      `--keep-interval got ${JSON.stringify(value)}; accepted: a duration >= 1 ms such as 90s, 30m, 6h, 1d or a number of ms`,
      { option: '--keep-interval' },
    );
  }
  return ms;
}
