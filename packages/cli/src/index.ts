export { CheckFailed, type CommandOptions, cp, inspect, latest, ls, prune, publish, verify } from './commands.js';
export { type Io, main } from './main.js';
export { parseBackendArgs, registerAllBackends, storeFor } from './stores.js';
