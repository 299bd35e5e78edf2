"""Reads a savepoint incremental checkpoint (incremental: true) with numpy and safetensors.

Each tensor's bytes are safetensors files in the run's savepoint-objects folder, named
by dtype and the SHA-256 of their data; the checkpoint folder's manifest lists them.
Usage: tensors, metadata = load_incremental("run/epoch_3.safetensors")
"""
import json, os, re
import numpy as np
from safetensors.numpy import load_file


def load_incremental(checkpoint_dir):
    objects = os.path.join(os.path.dirname(os.path.normpath(checkpoint_dir)), "savepoint-objects")
    with open(os.path.join(checkpoint_dir, "savepoint-manifest.json")) as f:
        manifest = json.load(f)

    def chunk(dtype, sha256):
        name = f"{dtype}-{sha256}.safetensors"
        assert re.fullmatch(r"[A-Z0-9]+-[0-9a-f]{64}\.safetensors", name), name  # never a path outside the folder
        return load_file(os.path.join(objects, name))["data"]

    tensors = {
        t["name"]: np.concatenate([chunk(t["dtype"], c["sha256"]) for c in t["chunks"]]).reshape(t["shape"])
        for t in manifest["tensors"]
    }
    return tensors, manifest["metadata"]


if __name__ == "__main__":
    import sys

    tensors, metadata = load_incremental(sys.argv[1])
    print(json.dumps({
        "tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape), "values": v.flatten().tolist()} for k, v in tensors.items()},
        "metadata": metadata,
    }))
