import { testBackend, testCheckpointPolicy } from '@savepoint/backend-test-suite';
import { S3_SERVERS, s3Context } from './s3-setup.js';

// The same suite on each S3 server: moto, and versitygw.
for (const on of S3_SERVERS) {
  testBackend(`s3 (${on.name})`, () => s3Context(on), { skipReason: on.skipReason, capabilities: on.capabilities });
  testCheckpointPolicy(`s3 (${on.name})`, () => s3Context(on), { skipReason: on.skipReason });
}
