"""Generate the Python package `hustle` from protos/: messages, gRPC stubs and their types.

    python scripts/gen_protos.py [OUT_DIR]     (default: the repository's hustle/)

grpcio-tools compiles with `-I protos`, so generated modules import each other as
`hustle.v1.x_pb2`; mypy-protobuf writes the `.pyi` files for messages and stubs. The output
folder is rebuilt from scratch so that a deleted .proto leaves nothing behind.
"""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def generate(out: Path) -> None:
    sources = sorted(p.relative_to(PROTOS).as_posix() for p in PROTOS.rglob("*.proto"))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    bin_dir = Path(sys.executable).parent
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out.parent}",
        f"--grpc_python_out={out.parent}",
        f"--mypy_out={out.parent}",
        f"--mypy_grpc_out={out.parent}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for folder in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    (out / "py.typed").touch()


def main() -> None:
    out = Path(sys.argv[1]).resolve() / "hustle" if len(sys.argv) > 1 else ROOT / "hustle"
    generate(out)


if __name__ == "__main__":
    main()
