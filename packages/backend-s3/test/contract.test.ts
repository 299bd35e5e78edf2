import { testBackend, testCheckpointPolicy } from '@savepoint/backend-test-suite';
import { s3Context, server } from './s3-setup.js';

testBackend('s3', s3Context, { skipReason: server.skipReason });
testCheckpointPolicy('s3', s3Context, { skipReason: server.skipReason });
