// `publishedKeys` at the end of training: slim copies of the last regular checkpoint
// (with `saveLast`) and of every current best, keeping only those keys, each named by
// the hash of its bytes, next to the original (the reference's `_publish_model`).
import type { Run } from '../run/run.js';
import type { Runner } from './runner.js';

export async function publishCheckpoints(
  run: Run,
  runner: Runner,
  names: readonly string[],
  publishedKeys: readonly string[],
): Promise<void> {
  for (const name of names) {
    const { path: published, removedKeys } = await run.publish(name, publishedKeys);
    if (removedKeys.length > 0) {
      runner.logger.info(
        `Key ${JSON.stringify(removedKeys)} will be removed because they are not found in publishedKeys. If you want to keep them, please set \`${JSON.stringify(removedKeys)}\` in publishedKeys`,
      );
    }
    runner.logger.info(`The checkpoint (${run.layout.pathOf(name)}) is published to ${published}.`);
  }
}
