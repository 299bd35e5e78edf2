#!/usr/bin/env node
// The `savepoint` command. The AWS SDK warns on every run under Node < 22 that its
// releases after January 2027 will need Node 22; a command-line tool's users cannot act
// on that (engines says what savepoint needs), so the CLI opts out, unless the user set
// the variable themselves. The library never changes the environment of its host.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = await import('./main.js');

process.exitCode = await main(process.argv.slice(2));
