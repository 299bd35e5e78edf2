#!/usr/bin/env bash
# The Python tools the tests use, in a virtualenv under .cache/venv (never the system
# Python): moto (the S3 server), and numpy + safetensors (Python reads our files).
# Idempotent: a second run only checks. Prints nothing on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="$PWD/.cache/venv"
PACKAGES=("moto[server]==5.2.1" "numpy==2.4.6" "safetensors==0.8.0")

if [ ! -x "$VENV/bin/python" ]; then
  echo "[python-env] creating $VENV" >&2
  python3 -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c "import moto.server, flask, werkzeug, numpy, safetensors" 2>/dev/null; then
  echo "[python-env] installing ${PACKAGES[*]} into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2
fi
