// The two dependency notices the CLI and the demo turn off (issue 27): exactly those.
import { describe, expect, it } from 'vitest';
import { AWS_NODE_NOTICE_SWITCH, quietHostNotices } from '../src/host-notices.js';

/** What tfjs-backend-cpu passes to console.warn at its first tensor in Node.js (4.22). */
const BANNER =
  '\n============================\nHi, looks like you are running TensorFlow.js in Node.js. To speed things up dramatically, install our node backend, visit https://github.com/tensorflow/tfjs-node for more details. \n============================';

function fakeHost(env: NodeJS.ProcessEnv = {}) {
  const printed: unknown[][] = [];
  return { printed, host: { env, console: { warn: (...args: unknown[]) => printed.push(args) } } };
}

describe('quietHostNotices', () => {
  it("drops TensorFlow.js's Node.js banner and nothing else from console.warn", () => {
    const { printed, host } = fakeHost();
    quietHostNotices(host);
    host.console.warn(BANNER);
    host.console.warn('  [savepoint] warning: a real warning');
    host.console.warn('Hi, looks like you are running TensorFlow.js in Node.js', 'and more');
    host.console.warn(`note: ${BANNER}`);
    expect(printed).toEqual([
      ['  [savepoint] warning: a real warning'],
      ['Hi, looks like you are running TensorFlow.js in Node.js', 'and more'],
      [`note: ${BANNER}`],
    ]);
  });
  it("turns off the AWS SDK's Node-version notice by the SDK's own switch, keeping a value the user set", () => {
    const unset = fakeHost();
    quietHostNotices(unset.host);
    expect(unset.host.env[AWS_NODE_NOTICE_SWITCH]).toBe('true');
    const set = fakeHost({ [AWS_NODE_NOTICE_SWITCH]: 'false' });
    quietHostNotices(set.host);
    expect(set.host.env[AWS_NODE_NOTICE_SWITCH]).toBe('false');
  });
});
