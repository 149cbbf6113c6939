"""CrypTen's config read as plain attributes (`backends/crypten/plain_config`): every
value CrypTen reads is the OmegaConf tree's, through writes, overrides and reloads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from smpc_ehr.backends.crypten.compat import import_crypten
from smpc_ehr.backends.crypten.plain_config import PlainSection

crypten = import_crypten()


def leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every leaf of an OmegaConf tree, read by OmegaConf itself."""
    from omegaconf import OmegaConf

    for key, value in OmegaConf.to_container(node, resolve=True).items():  # type: ignore[union-attr]
        full = f"{path}{key}"
        if isinstance(value, dict):
            yield from leaves(OmegaConf.select(node, str(key)), f"{full}.")
        else:
            yield full, value


def plain(cfg: Any, dotted: str) -> Any:
    """A value read the way CrypTen's modules read it: attribute by attribute."""
    value = cfg
    for key in dotted.split("."):
        value = getattr(value, key)
    return value


@pytest.fixture
def cfg() -> Iterator[Any]:
    """crypten.cfg, its tree restored afterwards."""
    config = crypten.cfg
    before = config.config
    yield config
    config.set_config(before)


def test_every_value_reads_as_in_the_tree(cfg: Any) -> None:
    assert type(cfg).__name__ == "PlainConfig"
    expected = dict(leaves(cfg.config))
    assert {"debug.validation_mode", "mpc.provider", "nn.dpsmpc.protocol"} <= set(expected)
    for dotted, value in expected.items():
        assert plain(cfg, dotted) == value, dotted
        assert cfg[dotted] == value, dotted  # CrypTen's own dotted lookup still works
    assert isinstance(cfg.debug, PlainSection) and cfg.debug.validation_mode is False


def test_writes_overrides_and_reloads_are_seen(cfg: Any) -> None:
    cfg.mpc.provider = "DEALER"  # how a job selects its provider
    assert cfg.mpc.provider == "DEALER" and cfg.config.mpc.provider == "DEALER"
    cfg["functions.exp_iterations"] = 5  # CrypTen's own setter: a merged, new tree
    assert cfg.functions.exp_iterations == 5
    with cfg.temp_override({"functions.reciprocal_all_pos": True, "mpc.provider": "TTP"}):
        assert cfg.functions.reciprocal_all_pos is True and cfg.mpc.provider == "TTP"
        with cfg.temp_override({"functions.reciprocal_all_pos": False}):
            assert cfg.functions.reciprocal_all_pos is False
        assert cfg.functions.reciprocal_all_pos is True
    assert cfg.functions.reciprocal_all_pos is False and cfg.mpc.provider == "DEALER"
    cfg.load_config(None)  # CrypTen's defaults again
    assert cfg.mpc.provider == "TFP" and cfg.functions.exp_iterations == 8
    with pytest.raises(AttributeError):
        _ = cfg.no_such_table


def test_the_hot_read_is_plain(cfg: Any) -> None:
    """`cfg.debug.validation_mode` is read on every attribute access of a secret tensor:
    it must not walk OmegaConf (~100 us a read before; well under 10 us now)."""
    cfg.debug.validation_mode  # noqa: B018  (the snapshot is made on the first read)
    reads = 20_000
    start = time.perf_counter()
    for _ in range(reads):
        cfg.debug.validation_mode  # noqa: B018
    assert (time.perf_counter() - start) / reads < 10e-6
