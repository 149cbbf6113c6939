"""Federation configuration: the roster and each process's config, validated on load.

roster (who is in the federation), party / coordinator / analyst (one config per
process). TOML is read with tomllib into frozen dataclasses; every problem is a
ConfigError that names the file and the key. See docs/configuration.md.
"""
