"""The one place crypten is imported, with what makes crypten 0.4.1 import at all.

crypten 0.4.1 (its last release) imports `torch.onnx._internal.registration` for its
ONNX converter, which this project never uses; since torch 2.9 that module lives at
`torch.onnx._internal.torchscript_exporter.registration`. We alias the new location
under the old name before importing crypten. It is installed with `--no-deps`
(its declared dependencies include the withdrawn `sklearn` package and torchvision),
plus what it really imports: onnx, omegaconf, pyyaml (see scripts/_env.sh).

Also here: CrypTen's config made to read as plain attributes (`plain_config`: its
OmegaConf reads took a third of a party's time), and registering our own tuple
provider under a name, because crypten keeps its providers in a module-level table
with no public way to add one.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType
from typing import Any

from smpc_ehr.backends.crypten import plain_config
from smpc_ehr.dealer_protocol.torch_setup import limit_torch_threads

_OLD_REGISTRY = "torch.onnx._internal.registration"
_NEW_REGISTRY = "torch.onnx._internal.torchscript_exporter.registration"
_lock = threading.Lock()


def import_crypten() -> ModuleType:
    """Import crypten (and torch, with the process's compute threads), aliasing the
    moved ONNX registry module if needed."""
    with _lock:
        if "crypten" in sys.modules:
            return sys.modules["crypten"]
        limit_torch_threads()
        try:
            importlib.import_module(_OLD_REGISTRY)
        except ModuleNotFoundError:
            sys.modules[_OLD_REGISTRY] = importlib.import_module(_NEW_REGISTRY)
        crypten = importlib.import_module("crypten")
        plain_config.install(crypten.cfg)
        return crypten


def register_provider(name: str, provider: Any) -> None:
    """Make `provider` selectable as `crypten.cfg.mpc.provider = name`."""
    mpc = import_crypten().mpc
    table: dict[str, Any] = vars(mpc)["__SUPPORTED_PROVIDERS"]
    table[name] = provider
