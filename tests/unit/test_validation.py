"""The shared input checks: `Checks` collects every invalid field into one HX301 (hustle.v2's
BadRequest), field masks name what an update changes, page sizes clamp, request ids are UUIDs."""

from __future__ import annotations

import pytest
from google.rpc import error_details_pb2, status_pb2

from server import errors, validation
from server.errors import HxError, Violation
from server.validation import Checks

CHANGEABLE = ("title", "description", "urgent")


def test_checks_collect_every_invalid_field_in_order() -> None:
    with pytest.raises(HxError) as caught, Checks() as check:
        assert check(validation.text, " ok ", "title", low=1, high=5) == "ok"
        check(validation.text, "", "task.title", low=1, high=255)
        check(validation.uuid_id, "nope", "task_id")
        check.fail("price", "must be at least 500")
    error = caught.value
    assert error.code == "HX301"
    assert error.violations == (
        Violation("task.title", "must have 1 to 255 characters"),
        Violation("task_id", "is not a valid id"),
        Violation("price", "must be at least 500"),
    )
    assert error.message.startswith("3 fields are invalid: task.title must have 1 to 255")


def test_one_invalid_field_is_the_error_v1_answers() -> None:
    with pytest.raises(HxError) as caught, Checks() as check:
        check(validation.uuid_id, "nope", "task_id")
    assert (caught.value.field, caught.value.message) == ("task_id", "is not a valid id")
    assert caught.value.violations == (Violation("task_id", "is not a valid id"),)


def test_checks_let_other_errors_through_at_once() -> None:
    def not_found() -> None:
        raise HxError("HX302")

    check = Checks()
    with pytest.raises(HxError, match="HX302"):
        check(not_found)
    assert check.violations == []
    check.raise_if_any()  # nothing collected: nothing raised


def test_every_violation_reaches_the_bad_request() -> None:
    error = errors.invalid_fields([Violation("a", "is wrong"), Violation("b.c", "is worse")])
    [(_, blob)] = errors.to_rpc_status(error).trailing_metadata
    status = status_pb2.Status.FromString(blob)
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert status.details[0].Unpack(info)
    assert status.details[1].Unpack(bad)
    assert (info.reason, info.metadata["field"], info.metadata["fields"]) == ("HX301", "a", "a,b.c")
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("a", "is wrong"),
        ("b.c", "is worse"),
    ]


def test_update_paths() -> None:
    named = validation.update_paths
    assert named(["title"], CHANGEABLE, ["description"]) == {"title"}
    assert named([], CHANGEABLE, ["description", "category"]) == {"description"}
    assert named(["*"], CHANGEABLE, []) == set(CHANGEABLE)
    with pytest.raises(HxError) as caught:
        named(["title", "price", "*"], CHANGEABLE, [])
    assert [v.field for v in caught.value.violations] == [
        "update_mask.paths[1]",
        "update_mask.paths[2]",
    ]


def test_page_sizes_clamp_only_when_asked() -> None:
    assert validation.page_size(0, default=20, maximum=100, clamp=True) == 20
    assert validation.page_size(500, default=20, maximum=100, clamp=True) == 100
    with pytest.raises(HxError):
        validation.page_size(500, default=20, maximum=100)  # v1
    with pytest.raises(HxError):
        validation.page_size(-1, default=20, maximum=100, clamp=True)


def test_request_ids_are_uuids_or_empty() -> None:
    assert validation.request_id("") == ""
    rid = "0D1E5C1A-2B3C-4D5E-8F90-A1B2C3D4E5F6"
    assert validation.request_id(rid) == rid  # kept as sent: a retry sends the same text
    with pytest.raises(HxError) as caught:
        validation.request_id("retry-1")
    assert caught.value.field == "request_id"
