// Option checking shared by the policy engine and every backend: each check throws a
// ConfigError that names the option, shows the bad value and says what is accepted.
import { ConfigError } from './errors.js';
import { redact } from './redact.js';

/** A short, credential-free rendering of a bad value for an error message. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string') return `${JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value)} (string)`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return `${String(value)} (${typeof value})`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'function') return 'a function';
  return `an object`;
}

export interface CheckContext {
  /** Used as the `[backend]` prefix of the message. */
  backend?: string;
}

export function configError(option: string, value: unknown, accepted: string, ctx: CheckContext = {}): ConfigError {
  return new ConfigError(`option "${option}" got ${describeValue(value)}; accepted: ${accepted}`, {
    option,
    backend: ctx.backend,
  });
}

/** The shape of a value that may hold a credential: its type and length, never its content. */
export function describeSecretValue(value: unknown): string {
  if (typeof value === 'string') return `a string of ${value.length} characters (not shown: it may hold a credential)`;
  if (Array.isArray(value)) return `an array of ${value.length} (not shown: it may hold a credential)`;
  if (value === null || value === undefined) return String(value);
  return `a ${typeof value} (not shown: it may hold a credential)`;
}

/** Like `configError`, for credential-bearing options: the bad value is described, never echoed. */
export function secretConfigError(option: string, value: unknown, accepted: string, ctx: CheckContext = {}): ConfigError {
  return new ConfigError(`option "${option}" got ${describeSecretValue(value)}; accepted: ${accepted}`, {
    option,
    backend: ctx.backend,
  });
}

export function checkInteger(
  value: unknown,
  option: string,
  accepted: string,
  ctx: CheckContext & { min?: number } = {},
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || (ctx.min !== undefined && value < ctx.min)) {
    throw configError(option, value, accepted, ctx);
  }
  return value;
}

export function checkBoolean(value: unknown, option: string, ctx: CheckContext = {}): boolean {
  if (typeof value !== 'boolean') throw configError(option, value, 'true or false', ctx);
  return value;
}

export function checkString(value: unknown, option: string, accepted: string, ctx: CheckContext = {}): string {
  if (typeof value !== 'string' || value.length === 0) throw configError(option, value, accepted, ctx);
  return value;
}

/**
 * An http(s) endpoint URL (an S3 `endpoint`, a GCS `apiEndpoint`, an Azure `url`). A
 * `user:password@` part is a credential in the wrong place: the SDKs would not use it
 * as one, and every message quoting the URL would carry it. It is refused, and the
 * error shows the URL with that part masked.
 */
export function checkEndpointUrl(value: unknown, option: string, example: string, ctx: CheckContext = {}): string {
  const accepted = `an http(s) URL such as "${example}"`;
  const shown = typeof value === 'string' ? redact(value) : value;
  if (typeof value !== 'string' || !/^https?:\/\/[^/]+/i.test(value)) throw configError(option, shown, accepted, ctx);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(option, shown, accepted, ctx);
  }
  if (url.username !== '' || url.password !== '' || /^https?:\/\/[^/]*@/i.test(value)) {
    throw new ConfigError(
      `option "${option}" holds credentials in its user:password@ part (${describeValue(shown)}); ` +
        `accepted: ${accepted} without user:password@, the credentials given in the backend's own credential options`,
      { option, backend: ctx.backend },
    );
  }
  return value;
}

/** A string or a list of strings, normalised to a list. */
export function checkStringList(value: unknown, option: string, ctx: CheckContext & { unique?: boolean } = {}): string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.some((item) => typeof item !== 'string' || item.length === 0)) {
    throw configError(option, value, 'a non-empty string or a list of non-empty strings', ctx);
  }
  if (ctx.unique && new Set(list).size !== list.length) {
    const dup = list.find((item, i) => list.indexOf(item) !== i);
    throw new ConfigError(`option "${option}" has the duplicate entry ${JSON.stringify(dup)}; each entry must appear once`, {
      option,
      backend: ctx.backend,
    });
  }
  return list as string[];
}

/** A plain object (`{...}`), or undefined. */
export function checkRecord(value: unknown, option: string, ctx: CheckContext = {}): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw configError(option, value, 'an object', ctx);
  }
  return value as Record<string, unknown>;
}

/** Rejects keys the options type does not know: a typo must not silently fall back to a default. */
export function checkKnownKeys(
  options: Record<string, unknown>,
  known: readonly string[],
  what: string,
  ctx: CheckContext = {},
): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new ConfigError(`unknown ${what} option "${key}"; accepted: ${known.join(', ')}`, {
        option: key,
        backend: ctx.backend,
      });
    }
  }
}

/**
 * A client passed in is accepted by its shape (the methods savepoint calls), not by
 * `instanceof`: a consumer's SDK may be another minor version, a separate copy in the
 * tree, or a wrapper, and all of those work.
 */
export function hasMethods(value: unknown, methods: readonly string[]): boolean {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  return methods.every((method) => typeof (value as Record<string, unknown>)[method] === 'function');
}
