"""Generate the TypeScript client's code (clients/ts/src/gen/) from protos/, with buf and the
local protoc-gen-es of clients/ts/node_modules (no remote plugin).

    python scripts/gen_ts.py [OUT_DIR]     (default: clients/ts; the code goes to OUT_DIR/src/gen)

The input is every file of hustle.v2 (so a new service or RPC appears by regenerating) and
google/rpc/error_details.proto from the googleapis-common-protos wheel (ErrorInfo, BadRequest,
RetryInfo, for `ConnectError.findDetails`). They are gathered into a temporary buf module; the
well-known types (descriptor, timestamp, ...) come with @bufbuild/protobuf. The plugin runs on
clients/ts's own Node (the `node` package), whatever Node the machine has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import google.rpc.error_details_pb2

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "clients" / "ts"
BUF = ROOT / "node_modules" / ".bin" / "buf"
PACKAGES = ["hustle/v2"]  # the packages a client is generated for
ERROR_DETAILS = Path(google.rpc.error_details_pb2.__file__).with_name("error_details.proto")


def gather(module: Path) -> None:
    """Copy the input files into `module`, a buf module root, at their import paths."""
    for package in PACKAGES:
        target = module / package
        target.mkdir(parents=True)
        for proto in sorted((ROOT / "protos" / package).glob("*.proto")):
            shutil.copy2(proto, target / proto.name)
    (module / "google" / "rpc").mkdir(parents=True)
    shutil.copy2(ERROR_DETAILS, module / "google" / "rpc" / ERROR_DETAILS.name)


def generate(out: Path) -> None:
    for tool in (BUF, CLIENT / "node_modules" / ".bin" / "protoc-gen-es"):
        if not tool.exists():
            raise SystemExit(f"{tool} is missing: run `make protos` (it installs the Node tools)")
    env = {
        **os.environ,
        "PATH": f"{CLIENT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}",
    }
    with tempfile.TemporaryDirectory(prefix="hustle-ts-protos-") as temp:
        module = Path(temp)
        gather(module)
        done = subprocess.run(
            [str(BUF), "generate", str(module), "--template", "buf.gen.yaml", "-o", str(out)],
            cwd=CLIENT,  # buf.gen.yaml names the plugin relative to clients/ts
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"buf generate failed:\n{done.stdout}{done.stderr}")


def main() -> None:
    out = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else CLIENT
    generate(out)


if __name__ == "__main__":
    main()
