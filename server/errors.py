"""The HX error catalogue (DOMAIN.md "Errors") and its mapping to gRPC statuses.

Domain code raises `HxError(code, message, field=...)`. The error interceptor turns it into a gRPC
status with rich details: `google.rpc.ErrorInfo` (reason = the HX code), `google.rpc.BadRequest`
when a field is named (one violation per invalid field: `invalid_fields` makes one error of
several, as hustle.v2 answers), `google.rpc.RetryInfo` when a retry delay is known. Database
rules raise with the HX code as SQLSTATE, or carry it in a constraint name (`..._hx008`), so that
`from_db_error` gives the client the same error whichever layer caught the violation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import grpc
import psycopg
import psycopg_pool
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "hustle"
S = grpc.StatusCode


@dataclass(frozen=True, slots=True)
class Spec:
    status: grpc.StatusCode
    message: str


CATALOGUE = MappingProxyType(
    {
        # state machine
        "HX001": Spec(S.FAILED_PRECONDITION, "The task is in a terminal state."),
        "HX002": Spec(S.FAILED_PRECONDITION, "The escrow is in a terminal state."),
        "HX003": Spec(S.FAILED_PRECONDITION, "This state transition is not allowed."),
        "HX004": Spec(S.FAILED_PRECONDITION, "An escrow's amount cannot change after funding."),
        "HX005": Spec(S.FAILED_PRECONDITION, "An escrow is released only for a completed task."),
        "HX006": Spec(S.FAILED_PRECONDITION, "A task is completed only with an accepted proof."),
        "HX007": Spec(S.FAILED_PRECONDITION, "A proof needs 1 to 5 photos."),
        "HX008": Spec(S.FAILED_PRECONDITION, "A task's worker cannot be its poster."),
        # ledgers
        "HX101": Spec(S.FAILED_PRECONDITION, "XP is awarded only for a released escrow."),
        "HX102": Spec(S.FAILED_PRECONDITION, "Ledgers are append-only."),
        "HX103": Spec(S.ALREADY_EXISTS, "XP was already awarded for this escrow."),
        "HX104": Spec(S.FAILED_PRECONDITION, "A trust tier changes only with a reason."),
        # eligibility and ownership
        "HX201": Spec(S.PERMISSION_DENIED, "You are not eligible for this task."),
        "HX202": Spec(S.PERMISSION_DENIED, "This is not yours."),
        "HX203": Spec(S.FAILED_PRECONDITION, "The task was already taken."),
        "HX204": Spec(S.FAILED_PRECONDITION, "The task's escrow is not funded."),
        "HX205": Spec(S.PERMISSION_DENIED, "Only an admin may do this."),
        "HX206": Spec(S.FAILED_PRECONDITION, "Not on yourself, and not on the last admin."),
        # input
        "HX301": Spec(S.INVALID_ARGUMENT, "Invalid argument."),
        "HX302": Spec(S.NOT_FOUND, "Not found."),
        "HX303": Spec(S.ALREADY_EXISTS, "Already exists."),
        "HX304": Spec(S.FAILED_PRECONDITION, "The upload is not ready."),
        # identity
        "HX401": Spec(S.UNAUTHENTICATED, "Sign in first."),
        "HX402": Spec(S.UNAUTHENTICATED, "Wrong credentials."),
        "HX403": Spec(S.FAILED_PRECONDITION, "The code is invalid, expired or already used."),
        "HX404": Spec(S.RESOURCE_EXHAUSTED, "Too many attempts."),
        "HX405": Spec(S.PERMISSION_DENIED, "This account is suspended or banned."),
        # messaging and ratings (Part 2)
        "HX801": Spec(S.FAILED_PRECONDITION, "This task's thread is closed."),
        "HX802": Spec(S.PERMISSION_DENIED, "Only the task's poster and worker take part."),
        "HX803": Spec(S.INVALID_ARGUMENT, "A message has at most 3 ready photos."),
        "HX804": Spec(S.INVALID_ARGUMENT, "A message has 1 to 500 characters."),
        "HX807": Spec(S.FAILED_PRECONDITION, "Only a completed task is rated."),
        "HX808": Spec(S.FAILED_PRECONDITION, "The rating window is closed."),
        "HX809": Spec(S.FAILED_PRECONDITION, "A rating cannot change."),
        "HX810": Spec(S.INVALID_ARGUMENT, "A rating has 1 to 5 stars."),
        "HX811": Spec(S.INVALID_ARGUMENT, "A rating's comment has at most 500 characters."),
        "HX812": Spec(S.INVALID_ARGUMENT, "No links, phone numbers or emails in messages."),
        # limits
        "HX501": Spec(S.RESOURCE_EXHAUSTED, "Too many requests; retry later."),
        # watch streams (issue 16)
        "HX601": Spec(
            S.FAILED_PRECONDITION,
            "The cursor is older than the events kept: reload, then watch without a cursor.",
        ),
        "HX602": Spec(S.RESOURCE_EXHAUSTED, "Too many open streams; close one first."),
        "HX603": Spec(S.ABORTED, "The stream fell behind; watch again from your last cursor."),
        # internal
        "HX901": Spec(S.INTERNAL, "Internal error."),
        "HX902": Spec(S.UNAVAILABLE, "The service is temporarily unavailable; retry later."),
    }
)

_CONSTRAINT_CODE = re.compile(r"(?:^|_)hx(\d{3})(?:_|$)")
# An UNAVAILABLE answer always says when to retry (clients back off by it, not at once).
UNAVAILABLE_RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Violation:
    """One invalid request field: its path (`task.price.amount_cents`) and what is wrong."""

    field: str
    description: str


class HxError(Exception):
    """A typed, client-safe error: its code, message and field(s) reach the client as they are.

    `field` names the one invalid field of an error about a field; `violations` lists every
    invalid field (one, `field`'s, unless the error was made from several by `invalid_fields`).
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        field: str | None = None,
        retry_after_seconds: float | None = None,
        violations: tuple[Violation, ...] = (),
    ) -> None:
        if code not in CATALOGUE:
            raise ValueError(f"unknown HX code {code!r}")
        self.code = code
        self.message = message or CATALOGUE[code].message
        if not violations and field:
            violations = (Violation(field, self.message),)
        self.violations = violations
        self.field = field or (violations[0].field if violations else None)
        if retry_after_seconds is None and CATALOGUE[code].status is S.UNAVAILABLE:
            retry_after_seconds = UNAVAILABLE_RETRY_SECONDS
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"{code}: {self.message}")

    @property
    def status(self) -> grpc.StatusCode:
        return CATALOGUE[self.code].status


def invalid(field: str, message: str) -> HxError:
    """HX301 naming the offending request field (reaches the client as a BadRequest violation)."""
    return HxError("HX301", message, field=field)


def invalid_fields(violations: Sequence[Violation]) -> HxError:
    """One HX301 for several invalid fields (each reaches the client as a BadRequest violation,
    in the order given). A single violation is the same error `invalid` makes."""
    if not violations:
        raise ValueError("invalid_fields needs at least one violation")
    if len(violations) == 1:
        return invalid(violations[0].field, violations[0].description)
    listed = "; ".join(f"{v.field} {v.description}" for v in violations)
    return HxError(
        "HX301", f"{len(violations)} fields are invalid: {listed}.", violations=tuple(violations)
    )


def to_rpc_status(error: HxError) -> grpc.Status:
    """The gRPC status (code, message and `grpc-status-details-bin` trailer) for an HxError."""
    info = error_details_pb2.ErrorInfo(reason=error.code, domain=ERROR_DOMAIN)
    if error.field:
        info.metadata["field"] = error.field
    if len(error.violations) > 1:
        info.metadata["fields"] = ",".join(v.field for v in error.violations)
    details = [info]
    if error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        details.append(bad_request)
    if error.retry_after_seconds is not None:
        whole = math.floor(error.retry_after_seconds)
        delay = duration_pb2.Duration(
            seconds=whole, nanos=int((error.retry_after_seconds - whole) * 1e9)
        )
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    packed = []
    for detail in details:
        message = any_pb2.Any()
        message.Pack(detail)
        packed.append(message)
    code_value = getattr(code_pb2, error.status.name)
    status = rpc_status.to_status(
        status_pb2.Status(code=code_value, message=error.message, details=packed)
    )
    if error.status is S.UNAVAILABLE and error.retry_after_seconds is not None:
        # gRPC's own retry policy (gRFC A6) waits this long before its next attempt.
        pushback = ("grpc-retry-pushback-ms", str(round(error.retry_after_seconds * 1000)))
        return _Status(status.code, status.details, (*status.trailing_metadata, pushback))
    return status


class _Status(grpc.Status):
    """A gRPC status with the trailing metadata we choose (grpc.Status is abstract)."""

    def __init__(
        self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[Any, ...]
    ) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def from_db_error(exc: BaseException) -> HxError | None:
    """The HxError a database error stands for, or None when it is not a rule we know."""
    if not isinstance(exc, psycopg.Error):
        return None
    if exc.sqlstate is not None and exc.sqlstate in CATALOGUE:
        # Raised by our own triggers (psycopg files unknown SQLSTATE classes under
        # OperationalError, so this comes first): the message was written for clients.
        return HxError(exc.sqlstate, exc.diag.message_primary or None)
    constraint = exc.diag.constraint_name or ""
    match = _CONSTRAINT_CODE.search(constraint)
    if match and f"HX{match.group(1)}" in CATALOGUE:
        return HxError(f"HX{match.group(1)}")
    if exc.sqlstate is not None and exc.sqlstate.startswith("22"):
        # Data exceptions (a value too long for its column, out of range, malformed): bad input
        # that got past validation; the database's message names the problem, not our schema.
        return HxError("HX301", "A value is malformed or out of range.")
    if isinstance(exc, psycopg_pool.PoolTimeout | psycopg.OperationalError):
        # The database is unreachable or overloaded: the client may retry.
        return HxError("HX902")
    return None
