// Recognisable fake credentials for every backend must appear nowhere: not in
// logs, errors (message, stack, cause), checkpoint bytes, the pointer, or the
// CLI's output with --verbose.
import { AzureLogger, setLogLevel } from '@azure/logger';
import { AzureBackend } from '@savepoint/backend-azure';
import { GcsBackend } from '@savepoint/backend-gcs';
import { S3Backend } from '@savepoint/backend-s3';
import { ToyModel } from '@savepoint/backend-test-suite';
import { main } from '@savepoint/cli';
import { CheckpointHook, ConfigError, ReferenceTrainer, redact, type StorageBackend } from '@savepoint/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AZURITE_ACCOUNT, AZURITE_KEY, server as azureServer, ensureContainer } from '../../backend-azure/test/azure-setup.js';
import { ensureBucket as ensureGcsBucket, server as gcsServer } from '../../backend-gcs/test/gcs-setup.js';
import { ensureBucket as ensureS3Bucket, server as s3Server } from '../../backend-s3/test/s3-setup.js';
import { recordFigures } from '../src/index.js';

const FAKE = {
  s3AccessKey: 'AKIASAVEPOINTFAKE0001',
  s3Secret: 'savepointFakeSecret0123456789abcdefXYZ',
  s3Session: 'savepointFakeSessionToken987654321',
  azureKey: Buffer.from('savepoint-fake-azure-account-key-0123456789').toString('base64'),
  azureSas: 'sv=2024-01-01&sp=rwdl&sig=SAVEPOINTFAKESASSIGNATURE0123%3D',
  gcsPrivateKey: '-----BEGIN PRIVATE KEY-----\nSAVEPOINTFAKEPRIVATEKEYMATERIAL0123456789\n-----END PRIVATE KEY-----\n',
  urlUser: 'savepointUrlUser',
  urlPassword: 'SAVEPOINTFAKEURLPASSWORD0123',
};
const NEEDLES = [
  FAKE.s3AccessKey,
  FAKE.s3Secret,
  FAKE.s3Session,
  FAKE.azureKey,
  'SAVEPOINTFAKESASSIGNATURE0123',
  'SAVEPOINTFAKEPRIVATEKEYMATERIAL',
  AZURITE_KEY,
  FAKE.urlUser,
  FAKE.urlPassword,
];

/** Everything the run produced that a person or a log collector could see. */
let seen: string[] = [];
const capture = (text: unknown) => seen.push(typeof text === 'string' ? text : String(text));
function describeError(error: unknown): string {
  const e = error as Error & { cause?: unknown };
  return [String(e), e?.stack, JSON.stringify(e), e?.cause ? describeError(e.cause) : ''].join('\n');
}

let originalWrite: typeof process.stderr.write;
let originalOut: typeof process.stdout.write;
const consoleMethods = ['log', 'info', 'warn', 'error', 'debug'] as const;
const originals = consoleMethods.map((m) => console[m]);
let checked = 0;

beforeEach(() => {
  seen = [];
  originalWrite = process.stderr.write.bind(process.stderr);
  originalOut = process.stdout.write.bind(process.stdout);
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    capture(chunk);
    return (originalWrite as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    capture(chunk);
    return (originalOut as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write;
  for (const m of consoleMethods) console[m] = (...args: unknown[]) => capture(args.map(String).join(' '));
});
afterEach(() => {
  process.stderr.write = originalWrite;
  process.stdout.write = originalOut;
  consoleMethods.forEach((m, i) => {
    console[m] = originals[i] as (typeof console)[typeof m];
  });
  const all = seen.join('\n');
  for (const needle of NEEDLES) expect(all.includes(needle), `a credential leaked: ${needle.slice(0, 12)}...`).toBe(false);
  checked += seen.length;
});
afterAll(() => recordFigures('secrets', { credentialsPlanted: NEEDLES.length, outputsChecked: checked }));

async function trainAndFail(store: StorageBackend, workDir: string, expectFailure: boolean) {
  const logs: string[] = [];
  const logger = { info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m), debug: (m: string) => logs.push(m) };
  const hook = new CheckpointHook({ interval: 1, maxKeepCkpts: 1, saveBest: 'acc', backend: store });
  const trainer = new ReferenceTrainer({
    workDir,
    model: new ToyModel(() => ({ acc: Math.random() })),
    checkpointHook: hook,
    itersPerEpoch: 1,
    maxEpochs: 3,
    valInterval: 1,
    backend: store,
    logger,
  });
  const error = await trainer.train().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (expectFailure) expect(error).toBeInstanceOf(Error);
  else expect(error).toBeUndefined();
  seen.push(...logs);
  if (error) seen.push(describeError(error));
  if (!expectFailure) {
    for await (const entry of store.list(workDir, { recursive: true }))
      seen.push(Buffer.from(await store.get(entry.path)).toString('latin1'));
  }
}

async function cli(argv: string[], flags: string[] = ['--verbose']) {
  const out: string[] = [];
  const code = await main([...argv, ...flags], { out: (t) => out.push(t), err: (t) => out.push(t), env: {} });
  seen.push(...out);
  return { code, output: out.join('') };
}

describe.skipIf(!!s3Server.skipReason)('no S3 credential appears anywhere', () => {
  const args = {
    endpoint: s3Server.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: FAKE.s3AccessKey, secretAccessKey: FAKE.s3Secret, sessionToken: FAKE.s3Session },
    retry: { retries: 1, minDelayMs: 1, maxDelayMs: 2 },
  };
  it('in saves, checkpoints, the pointer, failures and the CLI', async () => {
    await ensureS3Bucket();
    const store = new S3Backend(args);
    const dir = `s3://savepoint-test/secrets-${Date.now()}`;
    await trainAndFail(store, dir, false);
    await trainAndFail(store, 's3://no-such-bucket-savepoint/run', true);
    await cli(['ls', dir, '--backend-args', JSON.stringify(args)]);
    await cli(['ls', 's3://no-such-bucket-savepoint/run', '--backend-args', JSON.stringify(args)]);
    await cli(['inspect', `${dir}/missing.safetensors`, '--backend-args', JSON.stringify(args)]);
    await store.rmtree(dir);
  });
});

describe.skipIf(!!azureServer.skipReason)('no Azure key or SAS appears anywhere', () => {
  it("in saves with the dev key, auth failures with a fake key and a fake SAS, the CLI, and the SDK's own verbose log", async () => {
    // The SDK's own logging, at its most talkative, goes into what is checked too.
    const sdkLog: string[] = [];
    const previous = AzureLogger.log;
    AzureLogger.log = (...args: unknown[]) => sdkLog.push(args.map(String).join(' '));
    setLogLevel('verbose');
    await ensureContainer();
    const good = {
      connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${azureServer.endpoint};`,
    };
    const dir = `az://savepoint-test/secrets-${Date.now()}`;
    await trainAndFail(new AzureBackend(good), dir, false);
    const fakeKey = {
      accountName: AZURITE_ACCOUNT,
      accountKey: FAKE.azureKey,
      endpoint: azureServer.endpoint,
      retry: { retries: 0 },
    };
    await trainAndFail(new AzureBackend(fakeKey), `${dir}-denied`, true);
    const fakeSas = { url: azureServer.endpoint, sasToken: FAKE.azureSas, retry: { retries: 0 } };
    await trainAndFail(new AzureBackend(fakeSas), `${dir}-sas`, true);
    await cli(['ls', dir, '--backend-args', JSON.stringify(good)]);
    await cli(['ls', dir, '--backend-args', JSON.stringify(fakeKey)]);
    await cli(['latest', dir, '--backend-args', JSON.stringify(fakeSas)]);
    await cli(['ls', dir, '--backend-args', JSON.stringify({ ...good, blockSize: -1 })]);
    await new AzureBackend(good).rmtree(dir);
    setLogLevel('warning');
    AzureLogger.log = previous;
    expect(sdkLog.length).toBeGreaterThan(10);
    seen.push(...sdkLog);
  });
});

describe.skipIf(!!gcsServer.skipReason)('no GCS private key appears anywhere', () => {
  it('when service-account credentials cannot be used, and in the CLI', async () => {
    await ensureGcsBucket();
    const args = {
      apiEndpoint: gcsServer.endpoint,
      projectId: 'savepoint-test',
      credentials: { client_email: 'fake@savepoint.iam.gserviceaccount.com', private_key: FAKE.gcsPrivateKey },
      retry: { retries: 0 },
    };
    await trainAndFail(new GcsBackend(args), `gs://savepoint-test/secrets-${Date.now()}`, false).catch((e: unknown) => {
      seen.push(describeError(e));
    });
    await cli(['ls', 'gs://savepoint-test/secrets', '--backend-args', JSON.stringify(args)]);
    await cli(['ls', 'gs://savepoint-test/secrets', '--backend-args', JSON.stringify({ ...args, chunkSize: 3 })]);
  });
});

describe('a user:password@ part in an endpoint URL is a credential', () => {
  // Port 1 on loopback: nothing answers, and nothing must be sent there anyway.
  const userinfo = `${FAKE.urlUser}:${FAKE.urlPassword}@`;
  const cases: {
    name: string;
    uri: string;
    option: string;
    make(args: Record<string, unknown>): unknown;
    args: Record<string, unknown>;
  }[] = [
    {
      name: 'S3 endpoint',
      uri: 's3://savepoint-test/run',
      option: 'endpoint',
      args: { endpoint: `http://${userinfo}127.0.0.1:1`, forcePathStyle: true, region: 'us-east-1', retry: { retries: 0 } },
      make: (args) => new S3Backend(args),
    },
    {
      name: 'GCS apiEndpoint',
      uri: 'gs://savepoint-test/run',
      option: 'apiEndpoint',
      args: { apiEndpoint: `http://${userinfo}127.0.0.1:1`, projectId: 'savepoint-test', retry: { retries: 0 } },
      make: (args) => new GcsBackend(args),
    },
    {
      name: 'Azure url',
      uri: 'az://savepoint-test/run',
      option: 'url',
      args: { url: `http://${userinfo}127.0.0.1:1/devstoreaccount1`, retry: { retries: 0 } },
      make: (args) => new AzureBackend(args),
    },
    {
      name: 'Azure endpoint',
      uri: 'az://savepoint-test/run',
      option: 'endpoint',
      args: { endpoint: `https://${userinfo}127.0.0.1:1/devstoreaccount1`, accountName: AZURITE_ACCOUNT, retry: { retries: 0 } },
      make: (args) => new AzureBackend(args),
    },
  ];
  for (const c of cases) {
    it(`${c.name}: refused at construction, masked in the message, and in the CLI (plain, --verbose, --json)`, async () => {
      const error = (() => {
        try {
          c.make(c.args);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as ConfigError).message;
      expect(message).toContain(`"${c.option}"`);
      expect(message).toMatch(/user:password@/);
      expect(message).toContain('***@127.0.0.1:1');
      seen.push(describeError(error));
      for (const flags of [[], ['--verbose'], ['--json']]) {
        const { code, output } = await cli(['ls', c.uri, '--backend-args', JSON.stringify(c.args)], flags);
        expect(code).not.toBe(0);
        expect(output).toContain('***@127.0.0.1:1');
      }
    });
  }

  it('redact masks the userinfo of any URL in a text, and leaves object paths alone', () => {
    const text = `GET http://${userinfo}127.0.0.1:9000/bucket failed; BlobEndpoint=https://${FAKE.urlUser}@acct.blob.core.windows.net;`;
    const masked = redact(text);
    expect(masked).toBe('GET http://***@127.0.0.1:9000/bucket failed; BlobEndpoint=https://***@acct.blob.core.windows.net;');
    expect(redact('s3://bucket/a@b/c gs://b/x@y')).toBe('s3://bucket/a@b/c gs://b/x@y');
    seen.push(masked);
  });
});
