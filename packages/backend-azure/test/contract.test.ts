import { testBackend, testCheckpointPolicy } from '@savepoint/backend-test-suite';
import { azureContext, server } from './azure-setup.js';

testBackend('azure', azureContext, { skipReason: server.skipReason });
testCheckpointPolicy('azure', azureContext, { skipReason: server.skipReason });
