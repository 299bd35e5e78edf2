export { CheckFailed, type CommandOptions, cp, inspect, latest, ls, prune, publish, verify } from './commands.js';
export { type NoticeHost, quietHostNotices } from './host-notices.js';
export { type Io, main } from './main.js';
export { cliPath } from './paths.js';
export { parseBackendArgs, registerAllBackends, storeFor } from './stores.js';
