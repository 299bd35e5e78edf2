import { testBackend, testCheckpointPolicy } from '@savepoint/backend-test-suite';
import { gcsContext, server } from './gcs-setup.js';

testBackend('gcs', gcsContext, { skipReason: server.skipReason });
testCheckpointPolicy('gcs', gcsContext, { skipReason: server.skipReason });
