#!/usr/bin/env node
// The `savepoint` command. It owns its process, so it turns off the dependency
// notices its users cannot act on (host-notices.ts), before any store is built; the
// library never changes the environment or console of its host.
import { quietHostNotices } from './host-notices.js';

quietHostNotices();
// A reader that stopped early (`savepoint ls --help | head -1`) wants no more output;
// Node would report the closed pipe as an unhandled error with a stack trace. Every
// command writes its result after its work is done, so nothing is left half-done.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});
const { main } = await import('./main.js');

process.exitCode = await main(process.argv.slice(2));
