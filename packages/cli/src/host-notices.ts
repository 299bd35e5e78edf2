// Two notices printed by savepoint's dependencies that the people running savepoint's
// own programs (the `savepoint` command, the demo) cannot act on:
// - the AWS SDK's "NodeVersionSupportWarning" (process.emitWarning, once per thread
//   that builds an S3 client, on Node < 22): savepoint's `engines` says which Node it
//   needs;
// - TensorFlow.js's "looks like you are running TensorFlow.js in Node.js" banner
//   (console.warn, at the first tensor of the CPU backend).
// Only a program that owns its process turns them off, and only these two: the
// library never changes its host's environment or console (the README says how a
// library user silences them).

/** The SDK's own switch for that one notice, read when a client is built. Worker threads copy the environment when they start, so it covers the save and lease workers too. */
export const AWS_NODE_NOTICE_SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/** How TensorFlow.js's banner starts (tfjs-backend-cpu, `backend_util.warn`), after its line of `=`. */
const TFJS_NODE_BANNER = /^\s*=+\s*\nHi, looks like you are running TensorFlow\.js in Node\.js\./;

/** Whether a `console.warn` call is TensorFlow.js's Node.js banner, and nothing else. */
export function isTfjsNodeBanner(args: readonly unknown[]): boolean {
  return args.length === 1 && typeof args[0] === 'string' && TFJS_NODE_BANNER.test(args[0]);
}

export interface NoticeHost {
  env: NodeJS.ProcessEnv;
  console: Pick<Console, 'warn'>;
}

/**
 * Turns off the two notices for this process. A user who set the AWS variable keeps
 * their value; every other warning still prints.
 */
export function quietHostNotices(host: NoticeHost = { env: process.env, console }): void {
  host.env[AWS_NODE_NOTICE_SWITCH] ??= 'true';
  const warn = host.console.warn;
  host.console.warn = (...args: unknown[]) => {
    if (!isTfjsNodeBanner(args)) warn.apply(host.console, args);
  };
}
