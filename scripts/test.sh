#!/usr/bin/env bash
# The whole test suite on a fresh machine: venv, install, generated-code check, lint,
# format, types, tests. Extra arguments go to pytest (e.g. scripts/test.sh -k mesh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_env.sh

echo "== generated protobuf code matches proto/"
python scripts/gen_proto.py --check
echo "== ruff (lint and format)"
ruff check .
ruff format --check .
echo "== mypy"
mypy
echo "== pytest"
python -m pytest -q "$@"
