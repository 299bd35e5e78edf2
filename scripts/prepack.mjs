// Runs before `pnpm pack`/`pnpm publish` in each published package: the tarball carries
// the project's LICENSE (kept once, at the repository root).
import { copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

copyFileSync(fileURLToPath(new URL('../LICENSE', import.meta.url)), 'LICENSE');
