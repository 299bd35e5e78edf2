// Credentials in the wrong shape: a careless user pastes the secret where a path or
// an object belongs. The error must say what is wrong without printing the secret.
import { AzureBackend } from '@savepoint/backend-azure';
import { GcsBackend } from '@savepoint/backend-gcs';
import { S3Backend } from '@savepoint/backend-s3';
import { CheckpointHook, ConfigError, InvalidPathError, ReferenceTrainer, redact } from '@savepoint/core';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/src/index.js';
import { recordFigures } from '../src/index.js';

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

let shapesTried = 0;
afterAll(() => recordFigures('secret-shapes', { cases: shapesTried }));

describe('credentials in the wrong shape are described, never printed', () => {
  beforeEach(() => {
    shapesTried++;
  });

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

  it('an Azure SAS URL used as a path is refused before any key is formed, and its signature is never shown', async () => {
    const SIG =
      'sv=2024-11-04&ss=b&srt=sco&sp=rwdlac&se=2030-01-01T00:00:00Z&sig=Zm9vYmFyU0VDUkVUc2lnbmF0dXJlMTIzNDU2Nzg5MA%3D%3D';
    const backend = new AzureBackend({
      connectionString:
        'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;',
      retry: { retries: 0 },
    });
    for (const path of [`https://acct.blob.core.windows.net/ckpts/run1?${SIG}`, `az://ckpts/run1?${SIG}`]) {
      const error = (await backend.put(`${path}/last_checkpoint`, 'x').catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(InvalidPathError);
      expect(error.message).toMatch(/query string \(a SAS token\?\).*backendArgs\.sasToken/);
      expect(`${error.message} ${(error as InvalidPathError).path} ${error.stack}`).not.toContain('Zm9vYmFyU0VDUkVU');
    }
    // As a training run's work dir: it fails before the first write, and the log shows no signature.
    const logs: string[] = [];
    const trainer = new ReferenceTrainer({
      workDir: `az://ckpts/run1?${SIG}`,
      model: { trainStep: () => 0, stateDict: () => ({}), loadStateDict: () => {} },
      checkpointHook: new CheckpointHook({ interval: 1, backend }),
      itersPerEpoch: 1,
      maxEpochs: 1,
      logger: { info: (m) => logs.push(m), warn: (m) => logs.push(m) },
    });
    const error = (await trainer.train().catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(InvalidPathError);
    expect(`${error.message}\n${logs.join('\n')}`).not.toContain('Zm9vYmFyU0VDUkVU');
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
