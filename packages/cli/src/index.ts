export { CheckFailed, cp, inspect, latest, ls, prune, publish, verify } from './commands.js';
export { type Io, main } from './main.js';
export { type CheckpointInfo, scanRunFolder } from './run-folder.js';
export { parseBackendArgs, registerAllBackends, storeFor } from './stores.js';
