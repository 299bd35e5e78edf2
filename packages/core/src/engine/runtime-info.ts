// The key/value state a training run carries inside every checkpoint and gets
// back on resume: MMEngine's message hub `runtime_info`.

export class RuntimeInfo {
  readonly #values = new Map<string, unknown>();

  constructor(initial: Record<string, unknown> = {}) {
    for (const [key, value] of Object.entries(initial)) this.#values.set(key, value);
  }

  has(key: string): boolean {
    return this.#values.has(key);
  }

  get<T = unknown>(key: string): T | undefined {
    return this.#values.get(key) as T | undefined;
  }

  set(key: string, value: unknown): void {
    // Stored as a copy, so later changes to a caller's array do not leak into saved checkpoints.
    this.#values.set(key, structuredClone(value));
  }

  delete(key: string): void {
    this.#values.delete(key);
  }

  toJSON(): Record<string, unknown> {
    return Object.fromEntries([...this.#values].map(([k, v]) => [k, structuredClone(v)]));
  }
}
