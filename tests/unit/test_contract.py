"""The contract keeps its own rules: what each RPC declares (access, rate limit, idempotency, HX
codes) is consistent, v2 has every v1 capability in the better shape it promises, and both
versions load into one process."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions

import hustle
from hustle.v1 import options_pb2 as v1_options
from hustle.v2 import options_pb2 as v2_options
from server.errors import CATALOGUE
from server.policy import Access, policy_of

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(hustle.__path__, "hustle.") if m.name.endswith("_pb2")
)
for _name in MODULES:  # every generated module in one process: extension numbers do not clash
    importlib.import_module(_name)

NO_SIDE_EFFECTS = MethodOptions.NO_SIDE_EFFECTS
IDEMPOTENT = MethodOptions.IDEMPOTENT
# Interceptors' codes (server/interceptors/admission.py, server/errors.py's from_db_error).
EVERY_RPC = {"HX501", "HX902"}
# v2 mutations that carry no request_id, and why a retry needs none or cannot have one.
NOT_RETRYABLE = {
    "AuthService.SignUp": "public: no caller to remember ids for; a retry finds the account (HX303)",
    "AuthService.SignIn": "a retry opens another session, which is harmless",
    "AuthService.SignOut": "a retry finds the session gone (HX401)",
    "AuthService.RevokeSession": "ending an ended session again is OK: a retry needs no id",
    "AuthService.RefreshSession": "a retry is made with the old token, which no longer works",
    "AuthService.RequestEmailVerification": "a retry sends a new link, the old one is retired",
    "AuthService.VerifyEmail": "single-use token: a retry is told it was used (HX403)",
    "AuthService.RequestPasswordReset": "public; a retry sends a new link",
    "AuthService.ResetPassword": "single-use token: a retry is told it was used (HX403)",
    "AuthService.StartPhoneVerification": "a retry texts a new code, the old one is retired",
    "AuthService.ConfirmPhoneVerification": "single-use code: a retry is told it was used",
}


def methods(package: str) -> Iterator[tuple[str, MethodDescriptor]]:
    for name in MODULES:
        if not name.startswith(package + "."):
            continue
        module = importlib.import_module(name)
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                yield f"{service.name}.{method.name}", method


V1 = dict(methods("hustle.v1"))
V2 = dict(methods("hustle.v2"))


def errors(method: MethodDescriptor, extension: FieldDescriptor) -> list[str]:
    return list(method.GetOptions().Extensions[extension])


def field(message: Descriptor, name: str) -> FieldDescriptor | None:
    return message.fields_by_name.get(name)


def test_both_versions_are_complete() -> None:
    assert len(V1) == 40
    # same services, and every v1 procedure under the same name: the same capabilities
    assert set(V1) <= set(V2)


def test_extension_numbers_stay_in_their_ranges() -> None:
    for module, low, high in ((v1_options, 50001, 50009), (v2_options, 50100, 50199)):
        numbers = [e.number for e in module.DESCRIPTOR.extensions_by_name.values()]
        assert numbers
        assert all(low <= n <= high for n in numbers), (module.__name__, numbers)


@pytest.mark.parametrize(
    ("version", "extension"),
    [(V1, v1_options.errors), (V2, v2_options.errors)],
    ids=["v1", "v2"],
)
def test_every_rpc_declares_its_codes(
    version: dict[str, MethodDescriptor], extension: FieldDescriptor
) -> None:
    for name, method in version.items():
        codes = errors(method, extension)
        assert codes == sorted(set(codes)), f"{name}: sorted, once each"
        assert set(codes) <= set(CATALOGUE), name
        assert "HX901" not in codes, f"{name}: HX901 is possible anywhere and not listed"
        assert set(codes) >= EVERY_RPC, name


def test_v1_codes_follow_the_enforced_policy() -> None:
    for name, method in V1.items():
        policy = policy_of(method)
        codes = set(errors(method, v1_options.errors))
        assert ("HX401" in codes) == (policy.access is not Access.PUBLIC), name
        if policy.access is Access.ADMIN:
            assert "HX202" in codes, name


def test_v1_idempotency_keys() -> None:
    honoured = {n for n, m in V1.items() if m.GetOptions().Extensions[v1_options.idempotency_key]}
    # the mutations whose repeat would do the work twice (the others are idempotent for the
    # caller who owns their effect: tests/api/test_retries.py)
    assert honoured == {
        "AuthService.RequestEmailVerification",
        "AuthService.StartPhoneVerification",
        "TaskService.CreateTask",
        "TaskService.FundTask",
        "TaskService.SubmitProof",
        "UploadService.CreateUpload",
        "VerificationService.SubmitVerification",
    }


def test_v2_states_every_rule() -> None:
    for name, method in V2.items():
        options = method.GetOptions()
        access = options.Extensions[v2_options.access]
        group = options.Extensions[v2_options.rate_limit_group]
        assert access != v2_options.ACCESS_UNSPECIFIED, f"{name}: state its access"
        assert group != v2_options.RATE_LIMIT_GROUP_UNSPECIFIED, f"{name}: state its group"
        codes = set(errors(method, v2_options.errors))
        assert ("HX401" in codes) == (access != v2_options.ACCESS_PUBLIC), name
        if access == v2_options.ACCESS_ADMIN:
            assert "HX202" in codes, name
            assert group == v2_options.RATE_LIMIT_GROUP_ADMIN, name
            assert options.Extensions[v2_options.rate_limit_fail_closed], f"{name}: fail closed"


def test_v2_retryable_mutations_carry_a_request_id() -> None:
    for name, method in V2.items():
        options = method.GetOptions()
        by_request_id = options.Extensions[v2_options.idempotency] == (
            v2_options.IDEMPOTENCY_REQUEST_ID
        )
        request_id = field(method.input_type, "request_id")
        assert by_request_id == (request_id is not None), name
        if request_id is not None:
            assert request_id.type == FieldDescriptor.TYPE_STRING, name
        if options.idempotency_level == NO_SIDE_EFFECTS:
            assert not by_request_id, name
        elif options.idempotency_level != IDEMPOTENT and not by_request_id:
            assert name in NOT_RETRYABLE, f"{name}: a mutation takes a request_id, or says why not"


def test_v2_lists_share_one_paging_shape() -> None:
    lists = {n: m for n, m in V2.items() if n.split(".")[1].startswith("List")}
    lists["FeedService.GetFeed"] = V2["FeedService.GetFeed"]
    assert (
        len(lists) == 12
    )  # v1's 8; ListNotifications, ListMessages, ListUserLedgers, ListAdminActions
    for name, method in lists.items():
        page_size = field(method.input_type, "page_size")
        page_token = field(method.input_type, "page_token")
        next_token = field(method.output_type, "next_page_token")
        assert page_size is not None, name
        assert page_token is not None, name
        assert next_token is not None, name
        assert page_size.type == FieldDescriptor.TYPE_INT32, name
        assert page_token.type == FieldDescriptor.TYPE_STRING, name
        assert next_token.type == FieldDescriptor.TYPE_STRING, name
        items = [f.number for f in method.output_type.fields if f.is_repeated]
        assert items == [1], f"{name}: one repeated field, the first"
        assert method.GetOptions().idempotency_level == NO_SIDE_EFFECTS, name


def test_v2_updates_take_a_field_mask() -> None:
    updates = {n: m for n, m in V2.items() if n.split(".")[1].startswith("Update")}
    assert set(updates) == {
        "UserService.UpdateProfile",
        "TaskService.UpdateTask",
        "NotificationService.UpdateNotificationPreferences",
    }
    for name, method in updates.items():
        mask = field(method.input_type, "update_mask")
        assert mask is not None, name
        assert mask.message_type.full_name == "google.protobuf.FieldMask", name


def test_v2_states_are_enums() -> None:
    seen = 0
    for name in MODULES:
        if not name.startswith("hustle.v2."):
            continue
        for message in importlib.import_module(name).DESCRIPTOR.message_types_by_name.values():
            for f in message.fields:
                if f.name == "state" or (f.name.endswith("_state") and f.name != "location_state"):
                    seen += 1
                    assert f.type == FieldDescriptor.TYPE_ENUM, f"{message.name}.{f.name}"
    assert seen >= 6  # Task (2), Proof, Dispute, Upload, Verification


def test_v2_stands_alone() -> None:
    for name in MODULES:
        if name.startswith("hustle.v2."):
            file = importlib.import_module(name).DESCRIPTOR
            assert not [d.name for d in file.dependencies if d.name.startswith("hustle/v1/")]
