// Python's own `safetensors` must open a savepoint checkpoint with the same
// tensors and metadata. Needs numpy and safetensors (scripts/python-env.sh puts them in
// .cache/venv); without them the test skips on a laptop and fails under CI=true.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PYTHON, pythonSkipReason } from '../../../test-support/python.js';
import { LocalBackend } from '../../backend-local/src/index.js';
import { Run, saveCheckpointFile, Tensor } from '../src/index.js';

const available = pythonSkipReason === undefined;
const reason = available ? '' : ` (skipped: ${pythonSkipReason})`;

const READER = `
import json, sys
from safetensors import safe_open
from safetensors.numpy import load_file
tensors = load_file(sys.argv[1])
with safe_open(sys.argv[1], framework="np") as f:
    meta = f.metadata()
print(json.dumps({
  "tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape), "values": v.flatten().tolist()} for k, v in tensors.items()},
  "metadata": meta,
}))
`;

describe.skipIf(!available)(`Python safetensors reads savepoint checkpoints${reason}`, () => {
  it('loads the same tensors, dtypes, shapes and metadata', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'savepoint-py-'));
    try {
      const path = join(dir, 'epoch_1.safetensors');
      await saveCheckpointFile(new LocalBackend(), path, {
        meta: { epoch: 1, iter: 10 },
        state_dict: {
          'fc.weight': new Tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]),
          'fc.bias': new Float64Array([0.5, -0.5]),
        },
        optimizer: { state: { 0: { step: new Int32Array([7]) } }, param_groups: [{ lr: 0.01 }] },
        message_hub: { runtime_info: { keep_ckpt_ids: [1], last_ckpt: path } },
      });
      const out = JSON.parse(execFileSync(PYTHON, ['-c', READER, path], { encoding: 'utf8' }));
      expect(out.tensors['state_dict.fc.weight']).toEqual({ dtype: 'float32', shape: [2, 3], values: [1, 2, 3, 4, 5, 6] });
      expect(out.tensors['state_dict.fc.bias']).toEqual({ dtype: 'float64', shape: [2], values: [0.5, -0.5] });
      expect(out.tensors['optimizer.state.0.step']).toEqual({ dtype: 'int32', shape: [1], values: [7] });
      expect(JSON.parse(out.metadata.meta)).toEqual({ epoch: 1, iter: 10 });
      expect(JSON.parse(out.metadata.message_hub)).toEqual({ runtime_info: { keep_ckpt_ids: [1], last_ckpt: path } });
      expect(JSON.parse(out.metadata.optimizer).param_groups).toEqual([{ lr: 0.01 }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('(ours) reads an incremental checkpoint with the documented loader (examples/python/load_incremental.py)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'savepoint-py-'));
    try {
      const run = Run.open(dir, { backend: new LocalBackend() });
      const weight = new Float32Array(40).map((_, i) => i);
      const checkpoint = {
        meta: { epoch: 2 },
        state_dict: {
          'fc.weight': new Tensor(weight, [4, 10]),
          'fc.bias': new Float64Array([0.5, -0.5]),
          empty: new Float32Array(0),
        },
        optimizer: { state: { 0: { step: new Int32Array([7]) } } },
      };
      // 64-byte chunks: the 160-byte weight is three objects, in order.
      await run.save('epoch_1.safetensors', { ...checkpoint, meta: { epoch: 1 } }, { kind: 'incremental', chunkBytes: 64 });
      await run.save('epoch_2.safetensors', checkpoint, { kind: 'incremental', chunkBytes: 64 });
      const loader = join(import.meta.dirname, '..', '..', '..', 'examples', 'python', 'load_incremental.py');
      const out = JSON.parse(execFileSync(PYTHON, [loader, join(dir, 'epoch_2.safetensors')], { encoding: 'utf8' }));
      expect(out.tensors['state_dict.fc.weight']).toEqual({ dtype: 'float32', shape: [4, 10], values: [...weight] });
      expect(out.tensors['state_dict.fc.bias']).toEqual({ dtype: 'float64', shape: [2], values: [0.5, -0.5] });
      expect(out.tensors['state_dict.empty']).toEqual({ dtype: 'float32', shape: [0], values: [] });
      expect(out.tensors['optimizer.state.0.step']).toEqual({ dtype: 'int32', shape: [1], values: [7] });
      expect(JSON.parse(out.metadata.meta)).toEqual({ epoch: 2 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
