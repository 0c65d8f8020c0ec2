"""The committed API reference (docs/api/) is exactly what `make protos` makes from protos/ now,
and it states each procedure's policy as the server enforces it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from server.app import SERVICE_DESCRIPTORS
from server.policy import Retry, policy_of

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "api"


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_reference", ROOT / "scripts/gen_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_the_reference_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "scripts/gen_reference.py", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    fresh = {p.name: p.read_text() for p in tmp_path.glob("*.md")}
    committed = {p.name: p.read_text() for p in DOCS.glob("*.md")}
    assert sorted(fresh) == ["v1.md", "v2.md"]
    stale = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not stale, f"docs/api/ is stale, run `make protos`: {stale}"


@pytest.mark.parametrize("package", ["hustle.v1", "hustle.v2"])
def test_the_reference_states_the_policy_the_server_enforces(
    generator: ModuleType, tmp_path: Path, package: str
) -> None:
    """For every procedure of both versions, the rules the reference prints are those of
    server/policy.py, the ones the server enforces."""
    image = generator.build_image(tmp_path / "image.binpb")
    writer = generator.Writer(package, image)
    served = {}
    for service in SERVICE_DESCRIPTORS:
        if service.file.package != package:
            continue
        for method in service.methods:
            served[service.name, method.name] = policy_of(method)
    documented = {
        (service.name, method.name): writer.rules(method)
        for file in writer.files
        for service in file.service
        for method in service.method
    }
    assert documented.keys() == served.keys()
    retries = {Retry.HEADER: "idempotency_key", Retry.REQUEST_ID: "request_id"}
    for key, policy in served.items():
        rules = documented[key]
        assert rules.access == policy.access.name, key
        assert rules.group == policy.group.name, key
        assert rules.fail_closed == policy.fail_closed, key
        if policy.retry is not Retry.NONE:
            assert rules.idempotency == retries[policy.retry], key
        else:
            assert rules.idempotency in ("read", "idempotent", "none"), key


def test_the_reference_documents_each_rpc(generator: ModuleType, tmp_path: Path) -> None:
    """Spot checks of what a reader relies on, in both versions."""
    v1 = (DOCS / "v1.md").read_text()
    v2 = (DOCS / "v2.md").read_text()
    accept = v2.split("#### TaskService.AcceptTask", 1)[1].split("#### ", 1)[0]
    assert "| Access | user: a signed-in user" in accept
    assert "| Rate limit | WRITE: 20 a minute" in accept
    assert "| Idempotency | retryable: send the same `request_id`" in accept
    assert "- [HX203](#hx203) `FAILED_PRECONDITION`: The task was already taken." in accept
    create_v1 = v1.split("#### TaskService.CreateTask", 1)[1].split("#### ", 1)[0]
    assert "| Idempotency | retryable: send an `idempotency-key` header" in create_v1
    resolve = v1.split("#### DisputeService.ResolveDispute", 1)[1].split("#### ", 1)[0]
    assert "| Access | admin" in resolve
    assert "| Rate limiter unreachable | refused (UNAVAILABLE, HX902) |" in resolve
    assert "| `state` | 4 | [ProofState](#proofstate) | Where its review is. |" in v2
    assert "| `PROOF_STATE_REJECTED` | 3 | Rejected: see rejection_reason. |" in v2


def test_an_uncommented_element_is_refused(generator: ModuleType, tmp_path: Path) -> None:
    image = generator.build_image(tmp_path / "image.binpb")
    task = next(f for f in image.file if f.name == "hustle/v2/task.proto")
    for location in task.source_code_info.location:
        if location.leading_comments.strip() == "Its escrow's state. Output only.":
            location.leading_comments = ""
    with pytest.raises(generator.ContractError, match=r"field Task\.escrow_state has no comment"):
        generator.Writer("hustle.v2", image).write()
