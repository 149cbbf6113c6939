# Sourced by demo.sh and test.sh: make .venv if missing and install the project into it.
# Re-installs only when pyproject.toml changed, so the second run is fast.
set -euo pipefail
PYTHON_BIN=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv" >&2
  "$PYTHON_BIN" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing smpc-ehr and its dependencies into .venv" >&2
  python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
