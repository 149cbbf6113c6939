#!/usr/bin/env bash
# The test suite on a fresh machine: venv, install, generated-code check, lint, format,
# types, tests. Extra arguments go to pytest (e.g. scripts/test.sh -k mesh).
#   scripts/test.sh          everything: both tiers of tests (what CI runs)
#   scripts/test.sh --fast   lint, format and the fast tier (pytest -m "not slow": unit
#                            tests and the in-process federation), under a minute;
#                            the slow tier starts real multi-process federations
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
if [ "${1:-}" = "--fast" ]; then
  fast=1
  shift
fi
. scripts/_env.sh

if [ "$fast" = 1 ]; then
  echo "== ruff (lint and format)"
  ruff check .
  ruff format --check .
  echo "== pytest (fast tier)"
  python -m pytest -q -m "not slow" "$@"
  exit
fi
echo "== generated protobuf code matches proto/"
python scripts/gen_proto.py --check
echo "== ruff (lint and format)"
ruff check .
ruff format --check .
echo "== mypy"
mypy
echo "== pytest"
python -m pytest -q --durations=20 "$@"
