"""CrypTen's config read as plain Python attributes, so its hot path skips OmegaConf.

CrypTen wraps every attribute access of a secret tensor (`CrypTensor.__getattribute__`,
through `crypten.debug.register_validation`) in a read of `cfg.debug.validation_mode`.
`crypten.cfg` is a `CrypTenConfig` whose `__getattribute__` first fails an ordinary
lookup (an AttributeError) and then walks an OmegaConf tree: ~110 us a read, 27-34 % of
rank 0's time in a logistic regression (issue 16). Its other reads (the multiplication
protocol, the provider, the encoder's precision) take the same path.

`install` makes the one `cfg` object that every CrypTen module holds a `PlainConfig`:
a read of a top-level table returns a snapshot of it as plain objects, taken once per
distinct OmegaConf tree. CrypTen replaces the tree on each change (`temp_override`,
`cfg["a.b"] = v`, `load_config`), so the snapshot follows by the tree's identity; a
write through a snapshot (`cfg.mpc.provider = "DEALER"`, as a job selects its
provider) updates the tree and drops the snapshots. Nothing else writes the tree in
place. What CrypTen computes is unchanged: it reads the same values, faster.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

MAX_SNAPSHOTS = 8
"""Snapshots kept (one per tree): the job's own and those of nested `temp_override`s."""
_SNAPSHOTS = "_plain_snapshots"
"""Where a PlainConfig keeps {id(tree): (tree, {name: table or None})} in its __dict__."""


class PlainSection:
    """One table of the config as plain attributes; setting one writes the config."""

    _owner: Any
    _path: str

    def __init__(self, owner: Any, path: str, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_path", path)
        for key, value in values.items():
            object.__setattr__(self, key, _plain(owner, f"{path}.{key}", value))

    def __setattr__(self, key: str, value: Any) -> None:
        set_value(self._owner, f"{self._path}.{key}", value)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __repr__(self) -> str:
        keys = [k for k in vars(self) if not k.startswith("_")]
        return f"PlainSection({self._path}: {', '.join(keys)})"


def _plain(owner: Any, path: str, value: Any) -> Any:
    return PlainSection(owner, path, value) if isinstance(value, dict) else value


def set_value(cfg: Any, path: str, value: Any) -> None:
    """Set `path` ("mpc.provider") in cfg's OmegaConf tree, as writing to the tree's
    node did before, and drop the snapshots (they no longer match the tree)."""
    OmegaConf.update(object.__getattribute__(cfg, "config"), path, value, merge=False)
    object.__getattribute__(cfg, "__dict__").pop(_SNAPSHOTS, None)


def _table(cfg: Any, tree: Any, name: str) -> Any:
    """The top-level table `name` of `tree` as plain objects; None if there is none."""
    node = tree.get(name) if not name.startswith("_") else None
    if not OmegaConf.is_dict(node):
        return None
    return PlainSection(cfg, name, OmegaConf.to_container(node, resolve=True))  # type: ignore[arg-type]


def _read(base: Any, cfg: Any, name: str) -> Any:
    """`cfg.<name>`: a top-level table from the snapshot of the current tree (made on
    first read, per table), anything else (methods, `config`, dotted names, a top-level
    value) as CrypTen's own class reads it."""
    state = object.__getattribute__(cfg, "__dict__")
    tree = state.get("config")
    snapshots = state.get(_SNAPSHOTS)
    if snapshots is None:
        snapshots = state[_SNAPSHOTS] = {}
    entry = snapshots.get(id(tree))
    if entry is None or entry[0] is not tree:
        if tree is None:
            return base.__getattribute__(cfg, name)
        if len(snapshots) >= MAX_SNAPSHOTS:
            snapshots.clear()
        entry = snapshots[id(tree)] = (tree, {})
    tables = entry[1]
    if name in tables:
        table = tables[name]
    else:
        table = tables[name] = _table(cfg, tree, name)
    return base.__getattribute__(cfg, name) if table is None else table


_CLASSES: dict[type, type] = {}


def plain_class(base: type) -> type:
    """CrypTen's config class (`base`) with plain reads (`_read`), made once."""
    if base not in _CLASSES:

        def __getattribute__(self: Any, name: str) -> Any:
            return _read(base, self, name)

        _CLASSES[base] = type("PlainConfig", (base,), {"__getattribute__": __getattribute__})
    return _CLASSES[base]


def install(cfg: Any) -> None:
    """Make `cfg` (crypten.cfg, the object every CrypTen module imported) read plainly."""
    base = type(cfg)
    if base.__name__ != "PlainConfig":
        cfg.__class__ = plain_class(base)
