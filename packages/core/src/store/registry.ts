// Picks a backend for a path, like MMEngine's `get_file_backend`: an explicit
// `backendArgs.backend` wins; otherwise the URI scheme decides, and `file://` or a
// plain path means local disk. Backends register themselves by name and schemes,
// so a third-party store plugs in without touching the engine.

import type { StorageBackend } from './contract.js';
import { ConfigError } from './errors.js';

export type BackendArgs = Record<string, unknown> & { backend?: string };

export interface BackendRegistration {
  /** URI schemes this backend serves, without `://` (`['s3']`). Local disk uses `file`. */
  schemes: readonly string[];
  /** Builds a backend from `backendArgs` without its `backend` key. */
  create(args: Record<string, unknown>): StorageBackend;
}

/**
 * Where a backend's registration can be done again in another thread: an ES module
 * (a URL or an importable specifier) and the name of its export that registers the
 * backend when called with no arguments. A worker thread starts with an empty
 * registry; with this, it imports the module and calls that function to build its
 * own store clients (the lease renewer, run/lease-worker.ts). Without it, work that
 * needs the backend stays on the main thread.
 */
export interface BackendSource {
  module: string;
  register: string;
}

export interface RegisterBackendOptions {
  /** Replace a backend already registered under this name. */
  replace?: boolean;
  /** The module that registers this backend in another thread (see `BackendSource`). */
  source?: BackendSource | undefined;
}

/**
 * One registry per process, kept on `globalThis` under a global symbol: with two copies
 * of core in a dependency tree (a normal npm outcome), `registerS3Backend()` through one
 * copy is seen by `getBackend` through the other.
 */
const REGISTRY_KEY = Symbol.for('savepoint.backend-registry.v1');
const globals = globalThis as Record<symbol, Map<string, BackendRegistration> | undefined>;
if (!globals[REGISTRY_KEY]) globals[REGISTRY_KEY] = new Map();
const registry: Map<string, BackendRegistration> = globals[REGISTRY_KEY];
/** Sources by registration (not by name): replacing a backend without one forgets the old one's. */
const SOURCES_KEY = Symbol.for('savepoint.backend-sources.v1');
const sourceGlobals = globalThis as Record<symbol, WeakMap<BackendRegistration, BackendSource> | undefined>;
if (!sourceGlobals[SOURCES_KEY]) sourceGlobals[SOURCES_KEY] = new WeakMap();
const sources: WeakMap<BackendRegistration, BackendSource> = sourceGlobals[SOURCES_KEY];

/** The name under which plain paths and `file://` URIs are served. */
export const LOCAL_BACKEND_NAME = 'local';

export function registerBackend(name: string, registration: BackendRegistration, options: RegisterBackendOptions = {}): void {
  if (typeof name !== 'string' || !/^[a-z][a-z0-9-]*$/.test(name)) {
    throw new ConfigError(`backend name ${JSON.stringify(name)} must be lowercase letters, digits and "-"`);
  }
  const existing = registry.get(name);
  if (existing && existing !== registration && !options.replace) {
    throw new ConfigError(`a backend named "${name}" is already registered; pass { replace: true } to replace it`);
  }
  for (const [otherName, other] of registry) {
    if (otherName === name) continue;
    const clash = registration.schemes.find((scheme) => other.schemes.includes(scheme));
    if (clash) throw new ConfigError(`scheme "${clash}://" is already served by backend "${otherName}"`);
  }
  const source = options.source;
  if (source !== undefined && (typeof source.module !== 'string' || typeof source.register !== 'string')) {
    throw new ConfigError(`the source of backend "${name}" must be { module: string, register: string }`, { option: 'source' });
  }
  registry.set(name, registration);
  if (source) sources.set(registration, { module: source.module, register: source.register });
  else sources.delete(registration);
}

/** How another thread registers the backend `name` again, or undefined when it cannot (registered without a source). */
export function backendSource(name: string): BackendSource | undefined {
  const registration = registry.get(name);
  const source = registration && sources.get(registration);
  return source && { ...source };
}

export function unregisterBackend(name: string): void {
  registry.delete(name);
}

export function registeredBackends(): { name: string; schemes: readonly string[] }[] {
  return [...registry].map(([name, reg]) => ({ name, schemes: reg.schemes }));
}

/** The lowercased URI scheme of `path`, or `undefined` for a plain path (including Windows drive letters). */
export function uriScheme(path: string): string | undefined {
  const match = /^([a-z][a-z0-9+.-]*):\/\//i.exec(path);
  return match?.[1]?.toLowerCase();
}

function describeRegistered(): string {
  const all = registeredBackends();
  if (all.length === 0)
    return 'none are registered; import a backend package and call its register function (e.g. registerLocalBackend())';
  return `registered: ${all.map((b) => `${b.name} (${b.schemes.map((s) => `${s}://`).join(', ')})`).join('; ')}`;
}

/** Refuses `s3:/bucket/x` (one slash), which would otherwise quietly be a local folder named "s3:". */
export function checkUriTypo(path: string): void {
  const typo = uriScheme(path) === undefined ? /^([a-z][a-z0-9+.-]+):\/?(?!\/)(.*)$/i.exec(path) : null;
  if (typo && [...registry.values()].some((reg) => reg.schemes.includes((typo[1] as string).toLowerCase()))) {
    const fixed = `${typo[1]}://${(typo[2] as string).replace(/^\/+/, '')}`;
    throw new ConfigError(`${JSON.stringify(path)} looks like a URI with one slash; did you mean ${JSON.stringify(fixed)}?`, {
      option: 'path',
    });
  }
}

/** The registered name that would serve `path` with these `backendArgs`. */
export function resolveBackendName(path: string, backendArgs: BackendArgs = {}): string {
  const explicit = backendArgs.backend;
  if (explicit !== undefined) {
    if (typeof explicit !== 'string' || !registry.has(explicit)) {
      throw new ConfigError(`unknown backend ${JSON.stringify(explicit)} in backendArgs.backend; ${describeRegistered()}`, {
        option: 'backendArgs.backend',
      });
    }
    return explicit;
  }
  const scheme = uriScheme(path) ?? 'file';
  checkUriTypo(path);
  for (const [name, reg] of registry) {
    if (reg.schemes.includes(scheme)) return name;
  }
  throw new ConfigError(`no backend serves "${scheme}://" (path ${JSON.stringify(path)}); ${describeRegistered()}`, {
    option: 'backendArgs.backend',
  });
}

/** Builds the backend that serves `path`. */
export function getBackend(path: string, backendArgs: BackendArgs = {}): StorageBackend {
  if (typeof backendArgs !== 'object' || backendArgs === null || Array.isArray(backendArgs)) {
    throw new ConfigError(`backendArgs must be an object, got ${typeof backendArgs}`, { option: 'backendArgs' });
  }
  const name = resolveBackendName(path, backendArgs);
  const { backend: _explicit, ...rest } = backendArgs;
  return registry.get(name)!.create(rest);
}

/**
 * The part of `backendArgs` that the store of `path` is built with, when one run (or one
 * copy) spans the stores of `paths`. Arguments keyed by backend name
 * (`{ "s3": {...}, "gcs": {...} }`) give each store its own. Otherwise they are one
 * backend's own keys: with `backend` set, only that backend gets them; without it, every
 * store that is not local disk does, and local disk gets them only when every store of
 * the run is local (its options, such as `root`, mean nothing to a cloud and the other way round).
 */
export function storeArgsFor(path: string, backendArgs: BackendArgs, paths: readonly string[] = [path]): BackendArgs {
  const keys = Object.keys(backendArgs);
  const names = new Set(registeredBackends().map((b) => b.name));
  if (keys.length > 0 && keys.every((key) => names.has(key))) {
    const own = backendArgs[resolveBackendName(path)];
    if (own !== undefined && (typeof own !== 'object' || own === null || Array.isArray(own))) {
      throw new ConfigError(`backendArgs.${resolveBackendName(path)} must be an object of that backend's options`, {
        option: `backendArgs.${resolveBackendName(path)}`,
      });
    }
    return { ...(own as Record<string, unknown> | undefined) };
  }
  const name = resolveBackendName(path, backendArgs);
  if (backendArgs.backend !== undefined) return name === backendArgs.backend ? backendArgs : {};
  if (name !== LOCAL_BACKEND_NAME) return backendArgs;
  const allLocal = paths.every((p) => resolveBackendName(p) === LOCAL_BACKEND_NAME);
  return allLocal ? backendArgs : {};
}
