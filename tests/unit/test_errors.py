"""The HX catalogue and its mapping to gRPC statuses and details."""

from __future__ import annotations

import re

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from server import errors

DOMAIN_CODES = {
    "HX001",
    "HX002",
    "HX003",
    "HX004",
    "HX005",
    "HX006",
    "HX007",
    "HX008",
    "HX101",
    "HX102",
    "HX103",
    "HX201",
    "HX202",
    "HX203",
    "HX204",
    "HX301",
    "HX302",
    "HX303",
    "HX304",
    "HX401",
    "HX402",
    "HX403",
    "HX404",
    "HX501",
    "HX901",
}
# DOMAIN.md "Part 2 identifiers"
PART2_CODES = {
    "HX104",
    "HX205",
    "HX206",
    "HX405",
    "HX801",
    "HX802",
    "HX803",
    "HX804",
    "HX807",
    "HX808",
    "HX809",
    "HX810",
    "HX811",
    "HX812",
}


def test_catalogue_covers_every_code_of_the_domain() -> None:
    assert set(errors.CATALOGUE) >= DOMAIN_CODES | PART2_CODES
    assert all(re.fullmatch(r"HX\d{3}", code) for code in errors.CATALOGUE)


def test_unknown_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown HX code"):
        errors.HxError("HX999")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("HX202", grpc.StatusCode.PERMISSION_DENIED),
        ("HX203", grpc.StatusCode.FAILED_PRECONDITION),
        ("HX301", grpc.StatusCode.INVALID_ARGUMENT),
        ("HX302", grpc.StatusCode.NOT_FOUND),
        ("HX401", grpc.StatusCode.UNAUTHENTICATED),
        ("HX501", grpc.StatusCode.RESOURCE_EXHAUSTED),
        ("HX601", grpc.StatusCode.FAILED_PRECONDITION),
        ("HX602", grpc.StatusCode.RESOURCE_EXHAUSTED),
        ("HX603", grpc.StatusCode.ABORTED),
        ("HX901", grpc.StatusCode.INTERNAL),
    ],
)
def test_status_codes(code: str, status: grpc.StatusCode) -> None:
    rpc = errors.to_rpc_status(errors.HxError(code))
    assert rpc.code == status
    [(key, blob)] = rpc.trailing_metadata
    assert key == "grpc-status-details-bin"
    decoded = status_pb2.Status.FromString(blob)
    info = error_details_pb2.ErrorInfo()
    assert decoded.details[0].Unpack(info)
    assert info.reason == code


def test_constraint_names_carry_codes() -> None:
    assert errors._CONSTRAINT_CODE.search("tasks_worker_not_poster_hx008").group(1) == "008"
    assert errors._CONSTRAINT_CODE.search("outbox_job_name") is None
    assert errors._CONSTRAINT_CODE.search("phx0081") is None
