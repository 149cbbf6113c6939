"""Regenerate smpc_ehr/wire/*_pb2*.py(i) from proto/ (or, with --check, fail on drift).

The proto folder mirrors the package path, so generated imports resolve as
`smpc_ehr.wire.*` with no patching.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT_PACKAGE = Path("smpc_ehr") / "wire"


def generate(out_root: Path) -> list[Path]:
    """Run protoc for every .proto under proto/ into out_root; return the generated files."""
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    proto_include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{proto_include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted((out_root / OUT_PACKAGE).glob("*_pb2*.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed code drifted")
    args = parser.parse_args()
    if not args.check:
        generate(ROOT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        drifted = []
        for path in fresh:
            committed = ROOT / OUT_PACKAGE / path.name
            if not committed.exists() or not filecmp.cmp(path, committed, shallow=False):
                drifted.append(path.name)
        committed_names = {p.name for p in (ROOT / OUT_PACKAGE).glob("*_pb2*.py*")}
        drifted += sorted(committed_names - {p.name for p in fresh})
    if drifted:
        print("generated protobuf code differs from proto/: " + ", ".join(drifted), file=sys.stderr)
        print("run: python scripts/gen_proto.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
