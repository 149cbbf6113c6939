# Sourced by demo.sh and test.sh: make .venv if missing and install the project into it.
# Re-installs only when pyproject.toml or this file changed, so the second run is fast.
set -euo pipefail
PYTHON_BIN=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv" >&2
  "$PYTHON_BIN" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=".venv/.installed-$(cat pyproject.toml scripts/_env.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing smpc-ehr and its dependencies into .venv" >&2
  pip_install() { python -m pip install --quiet --disable-pip-version-check "$@"; }
  # The CPU build of torch this machine's pip finds locally; elsewhere any torch >= 2.1.
  # (Asking for a plain `torch` first would fetch a CUDA build of several GB.)
  pip_install "torch==2.13.0" || pip_install "torch>=2.1"
  pip_install -e ".[dev,crypten]"
  # crypten 0.4.1 declares the withdrawn `sklearn` package and torchvision as
  # dependencies; it imports neither for what we use. Its real imports are in the
  # `crypten` extra above; smpc_ehr/backends/crypten/compat.py fixes its torch import.
  pip_install --no-deps "crypten==0.4.1"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
