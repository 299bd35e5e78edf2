// What the contract suite cannot see: multipart hygiene, one PutObject for small
// bodies, batch deletes, and the error mapping of the servers' real answers, on
// both S3 servers (moto and versitygw).
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { ConfigError, NotFoundError } from '@savepoint/core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { S3BackendOptions } from '../src/index.js';
import { S3Backend } from '../src/index.js';
import { BUCKET, ensureBucket, S3_SERVERS, s3Args as s3ArgsOn } from './s3-setup.js';

const MiB = 1024 * 1024;

function recordCommands(backend: S3Backend): string[] {
  const names: string[] = [];
  backend.client.middlewareStack.add(
    (next, context) => (args) => {
      names.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize', name: `recorder${Math.random()}` },
  );
  return names;
}

for (const on of S3_SERVERS) {
  describe.skipIf(!!on.skipReason)(
    `s3 backend specifics on ${on.name}${on.skipReason ? ` (skipped: ${on.skipReason})` : ''}`,
    () => {
      const base = `s3://${BUCKET}/specific-${Date.now()}`;
      const s3Args = (extra: S3BackendOptions = {}) => s3ArgsOn(extra, on);
      beforeAll(() => ensureBucket(BUCKET, on));

      it('resume under the lease aborts the multipart uploads a killed save left in the run, and only those', async () => {
        const backend = new S3Backend(s3Args());
        // Its own prefix: the multipart test below checks that nothing is left under 'specific-'.
        const run = `leftovers-run-${Date.now()}`;
        const open = async (key: string) => {
          const { UploadId } = await backend.client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
          await backend.client.send(
            new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: new Uint8Array(MiB) }),
          );
          return UploadId;
        };
        await open(`${run}/epoch_3.safetensors`);
        await open(`${run}/epoch_3.safetensors/shard-00001-of-00002-ab.safetensors`);
        const neighbour = await open(`${run}0/epoch_1.safetensors`);
        const { CheckpointHook, ReferenceTrainer } = await import('@savepoint/core');
        const { ToyModel } = await import('@savepoint/backend-test-suite');
        const logs: string[] = [];
        await new ReferenceTrainer({
          workDir: `s3://${BUCKET}/${run}`,
          model: new ToyModel(),
          checkpointHook: new CheckpointHook({ interval: 1, backend }),
          backend,
          itersPerEpoch: 1,
          maxEpochs: 1,
          logger: { info: (m) => logs.push(m), warn: (m) => logs.push(m) },
        }).train();
        const left = await backend.client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: run }));
        expect((left.Uploads ?? []).map((u) => u.UploadId)).toEqual([neighbour]);
        expect(logs.some((l) => l.includes('Removed 2 unfinished write(s)'))).toBe(true);
        await backend.client.send(
          new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: `${run}0/epoch_1.safetensors`, UploadId: neighbour }),
        );
      });

      it('a failed multipart stream leaves no object and no dangling multipart upload', async () => {
        const backend = new S3Backend(s3Args({ partSize: 5 * MiB, queueSize: 2 }));
        const commands = recordCommands(backend);
        async function* failing() {
          for (let i = 0; i < 12; i++) yield new Uint8Array(MiB).fill(i);
          throw new Error('source died');
        }
        const path = `${base}/multipart.bin`;
        await expect(backend.put(path, failing())).rejects.toThrow();
        expect(commands).toContain('CreateMultipartUploadCommand');
        expect(commands).toContain('AbortMultipartUploadCommand');
        expect(await backend.exists(path)).toBe(false);
        const uploads = await backend.client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'specific-' }));
        expect(uploads.Uploads ?? []).toEqual([]);
        await backend.close();
      });

      it('copy past multipartCopyBytes is a multipart upload of server-copied parts (UploadPartCopy): the same bytes, nothing through the client', async () => {
        const backend = new S3Backend(s3Args({ partSize: 5 * MiB, queueSize: 2, multipartCopyBytes: 5 * MiB }));
        const commands = recordCommands(backend);
        const bytes = new Uint8Array(12 * MiB);
        for (let i = 0; i < bytes.length; i += 4096) bytes[i] = (i / 4096) % 251;
        const from = `${base}/big-source.bin`;
        const to = `${base}/big-copy.bin`;
        await backend.put(from, bytes);
        commands.length = 0;
        await backend.copy(from, to);
        expect(commands.filter((c) => c === 'UploadPartCopyCommand')).toHaveLength(3);
        expect(commands).not.toContain('CopyObjectCommand');
        expect(commands).not.toContain('GetObjectCommand');
        expect(Buffer.compare(Buffer.from(await backend.get(to)), Buffer.from(bytes))).toBe(0);
        // A small object is one CopyObject.
        await backend.put(`${base}/small-source.bin`, 'small');
        commands.length = 0;
        await backend.copy(`${base}/small-source.bin`, `${base}/small-copy.bin`);
        expect(commands).toContain('CopyObjectCommand');
        expect(new TextDecoder().decode(await backend.get(`${base}/small-copy.bin`))).toBe('small');
        expect(() => new S3Backend(s3Args({ multipartCopyBytes: 6 * 1024 ** 3 }))).toThrow(/multipartCopyBytes.*5 GiB/);
      });

      it('small bodies and small streams go in one PutObject', async () => {
        const backend = new S3Backend(s3Args());
        const commands = recordCommands(backend);
        await backend.put(`${base}/small.txt`, 'tiny');
        async function* stream() {
          yield new Uint8Array(1000);
        }
        await backend.put(`${base}/small-stream.bin`, stream());
        expect(commands.filter((c) => c !== 'PutObjectCommand')).toEqual([]);
        expect(commands).toHaveLength(2);
        await backend.close();
      });

      it('rmtree deletes 2,500 keys in DeleteObjects batches of at most 1,000', async () => {
        const backend = new S3Backend(s3Args());
        const dir = `${base}/batch`;
        const keys = Array.from({ length: 2500 }, (_, i) => `${dir}/k${i}`);
        for (let i = 0; i < keys.length; i += 100) await Promise.all(keys.slice(i, i + 100).map((k) => backend.put(k, 'x')));
        const commands = recordCommands(backend);
        await backend.rmtree(dir);
        expect(commands.filter((c) => c === 'DeleteObjectsCommand')).toHaveLength(3);
        expect(commands.filter((c) => c === 'DeleteObjectCommand')).toHaveLength(0);
        expect(await backend.isDir(dir)).toBe(false);
        await backend.close();
      }, 120_000);

      it('a missing bucket is NotFoundError with a hint, and checks resolve false', async () => {
        const backend = new S3Backend(s3Args({ retry: { retries: 0 } }));
        await expect(backend.get('s3://no-such-bucket-savepoint/k')).rejects.toBeInstanceOf(NotFoundError);
        await expect(backend.get('s3://no-such-bucket-savepoint/k')).rejects.toThrow(/\[s3\]/);
        expect(await backend.isDir('s3://no-such-bucket-savepoint/k')).toBe(false);
        await backend.close();
      });

      it('bad options fail at construction, naming the option and never echoing a secret', () => {
        expect(() => new S3Backend({ partSize: 1024 })).toThrow(ConfigError);
        expect(() => new S3Backend({ partSize: 1024 })).toThrow(
          /"partSize" got 1024 \(number\); accepted: an integer >= 5242880/,
        );
        expect(() => new S3Backend({ endpoint: 'localhost:9000' })).toThrow(/"endpoint"/);
        expect(() => new S3Backend({ regoin: 'x' } as never)).toThrow(/unknown s3 backend option "regoin"/);
        const attempt = () => new S3Backend({ credentials: { accessKeyId: 'AKIASECRETVALUE', secretAccessKey: 42 } as never });
        expect(attempt).toThrow(/credentials.secretAccessKey/);
        try {
          attempt();
        } catch (error) {
          expect(String(error)).not.toContain('AKIASECRETVALUE');
        }
        expect(() => new S3Backend({ queueSize: 0 })).toThrow(/"queueSize"/);
        expect(() => new S3Backend({ retry: { retries: 'many' } } as never)).toThrow(/retry.retries/);
      });
    },
  );
}
