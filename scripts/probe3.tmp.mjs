import http from 'node:http';
import { Storage } from '@google-cloud/storage';

const apiEndpoint = process.env.SAVEPOINT_TEST_GCS_ENDPOINT;
const storage = new Storage({ apiEndpoint, projectId: 'bench' });
const [exists] = await storage.bucket('probe').exists();
if (!exists) await storage.createBucket('probe');
const file = storage.bucket('probe').file('big');
const N = 256 << 20;
await file.save(Buffer.alloc(N, 3), { resumable: false });
const url = `${apiEndpoint}/storage/v1/b/probe/o/big?alt=media`;
const impls = {
  fetch: async () => {
    const r = await fetch(url);
    let n = 0,
      c = 0;
    for await (const x of r.body) {
      n += x.byteLength;
      c++;
    }
    return [n, c];
  },
  http: () =>
    new Promise((resolve, reject) =>
      http
        .get(url, async (res) => {
          let n = 0,
            c = 0;
          for await (const x of res) {
            n += x.byteLength;
            c++;
          }
          resolve([n, c]);
        })
        .on('error', reject),
    ),
};
const t = { fetch: [], http: [] };
for (let i = 0; i < 6; i++)
  for (const k of i % 2 ? ['http', 'fetch'] : ['fetch', 'http']) {
    const s = performance.now();
    const [n, c] = await impls[k]();
    const d = performance.now() - s;
    t[k].push(d.toFixed(0));
    if (i === 0) console.log(k, n, c, 'chunks');
  }
console.log(t);
