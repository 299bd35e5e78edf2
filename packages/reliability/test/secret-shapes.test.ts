// Credentials in the wrong shape: a careless user pastes the secret where a path or
// an object belongs. The error must say what is wrong without printing the secret.
import { GcsBackend } from '@savepoint/backend-gcs';
import { S3Backend } from '@savepoint/backend-s3';
import { ConfigError, redact } from '@savepoint/core';
import { describe, expect, it } from 'vitest';
import { main } from '../../cli/src/index.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYzz';
const PEM = `-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n-----END PRIVATE KEY-----\n`;
const SERVICE_ACCOUNT = JSON.stringify({
  type: 'service_account',
  project_id: 'p',
  private_key_id: 'abc123def456',
  private_key: PEM,
  client_email: 'x@p.iam.gserviceaccount.com',
});
const PEM_BODY = 'MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu';

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return `${(error as Error).message}\n${(error as Error).stack}`;
  }
  throw new Error('expected a ConfigError');
}

describe('credentials in the wrong shape are described, never printed', () => {
  it('S3 credentials given as "<id>:<secret>" (a string where an object belongs)', () => {
    const message = messageOf(() => new S3Backend({ region: 'us-east-1', credentials: `AKIAEXAMPLE:${SECRET}` as never }));
    expect(message).toMatch(/"credentials" got a string of \d+ characters \(not shown/);
    expect(message).not.toContain(SECRET);
    expect(message).not.toContain(SECRET.slice(0, 10));
    const field = messageOf(
      () =>
        new S3Backend({ region: 'us-east-1', credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: [SECRET] as never } }),
    );
    expect(field).not.toContain(SECRET.slice(0, 10));
  });

  it('a GCS service-account JSON passed as keyFilename (its contents instead of its path)', () => {
    const message = messageOf(() => new GcsBackend({ keyFilename: SERVICE_ACCOUNT }));
    expect(message).toMatch(/"keyFilename" got a string of \d+ characters.*give it as credentials/);
    expect(message).not.toContain(PEM_BODY.slice(0, 16));
    expect(message).not.toContain('abc123def456');
    const asCredentials = messageOf(() => new GcsBackend({ credentials: SERVICE_ACCOUNT as never }));
    expect(asCredentials).not.toContain(PEM_BODY.slice(0, 16));
  });

  it('redaction masks a whole PEM private key, also JSON-escaped, not just its first line', () => {
    expect(redact(`key: ${PEM}`)).not.toContain(PEM_BODY.slice(0, 16));
    expect(redact(SERVICE_ACCOUNT)).not.toContain(PEM_BODY.slice(0, 16));
  });

  it('a syntax error in --backend-args names the position, not the text around it', async () => {
    let err = '';
    const code = await main(['ls', 's3://b/x', '--backend-args', `{"credentials": {"secretAccessKey": ${SECRET}}}`], {
      out: () => {},
      err: (t) => {
        err += t;
      },
      env: {},
    });
    expect(code).toBe(2);
    expect(err).toMatch(/--backend-args is not valid JSON/);
    for (let i = 0; i + 6 <= SECRET.length; i++) expect(err).not.toContain(SECRET.slice(i, i + 6));
  });
});
