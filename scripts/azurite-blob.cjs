// Starts Azurite's blob service for the tests, with its garbage collector off.
// Azurite's in-memory GC wakes every 10 minutes and walks every extent; once a test
// run has written a few thousand blobs it holds the server at 100% CPU for minutes,
// and every Azure request in flight times out. A test server lives for one run, so
// it does not need to reclaim memory. Arguments are Azurite's own (azurite-blob).
const gc = require('azurite/dist/src/blob/gc/BlobGCManager.js');
gc.default.prototype.markSweep = async () => {};
require('azurite/dist/src/blob/main.js');
