// Two copies of core in one tree (a normal npm outcome): an error thrown by one copy is
// still `instanceof` the other copy's classes, and the helpers recognise it.
import { describe, expect, it } from 'vitest';
import * as dist from '../dist/index.js';
import * as src from '../src/index.js';

describe('errors across two copies of core', () => {
  it('instanceof works both ways, for the class and its ancestors only', () => {
    const fromDist = new dist.NotFoundError('a/b', { backend: 's3' });
    expect(dist.NotFoundError).not.toBe(src.NotFoundError);
    expect(fromDist).toBeInstanceOf(src.NotFoundError);
    expect(fromDist).toBeInstanceOf(src.SavepointError);
    expect(fromDist).not.toBeInstanceOf(src.InvalidPathError);
    expect(new src.TimeoutError('slow', 100)).toBeInstanceOf(dist.TransientError);
    expect(new src.TransientError('x')).not.toBeInstanceOf(dist.TimeoutError);
    expect(src.isNotFound(fromDist)).toBe(true);
    expect(src.isSavepointError(fromDist, 'NOT_FOUND')).toBe(true);
    expect(src.isSavepointError(fromDist, 'CONFIG')).toBe(false);
    expect(src.isSavepointError(new Error('plain'))).toBe(false);
    expect(src.isNotFound(undefined)).toBe(false);
    expect({ code: 'NOT_FOUND' }).not.toBeInstanceOf(src.NotFoundError);
  });
});

describe('the backend registry across two copies of core', () => {
  it('a backend registered through one copy is found through the other', () => {
    const registration = {
      schemes: ['dupcopy'],
      create: () => ({ name: 'dupcopy' }) as unknown as src.StorageBackend,
    };
    dist.registerBackend('dupcopy', registration);
    try {
      expect(src.registeredBackends().map((b) => b.name)).toContain('dupcopy');
      expect(src.getBackend('dupcopy://bucket/x').name).toBe('dupcopy');
    } finally {
      src.unregisterBackend('dupcopy');
    }
    expect(() => dist.getBackend('dupcopy://bucket/x')).toThrow(dist.ConfigError);
  });
});
