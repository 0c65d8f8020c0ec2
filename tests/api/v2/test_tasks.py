"""hustle.v2.TaskService through a real channel: a task's life, BadRequests that list every
invalid field, field-mask updates, typed filters and the shared paging shape."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from hustle.v2 import common_pb2, task_pb2, user_pb2
from tests.api.v2.market import V2, fails, invalid, request_id, timestamp

T = task_pb2
S = grpc.StatusCode


async def test_the_whole_life_of_a_task(api: V2) -> None:
    poster, worker = api.poster(), api.worker()
    task = await api.create(poster, rid=request_id())
    assert (task.state, task.escrow_state) == (T.TASK_STATE_OPEN, T.ESCROW_STATE_PENDING)
    assert task.requirements.required_trust_tier == user_pb2.TRUST_TIER_ROOKIE  # no minimum
    seen = (
        await api.tasks.GetTask(T.GetTaskRequest(task_id=task.task_id), metadata=worker.auth)
    ).task
    assert not seen.eligible  # not funded yet
    await fails(api.accept(worker, task.task_id), S.FAILED_PRECONDITION, "HX204")

    funded = await api.fund(poster, task.task_id)
    assert funded.escrow_state == T.ESCROW_STATE_FUNDED
    accepted = await api.accept(worker, task.task_id, request_id())
    assert (accepted.state, accepted.worker_id) == (T.TASK_STATE_ACCEPTED, worker.id)

    submitted = await api.submit(worker, task.task_id, photos=2)
    assert submitted.task.state == T.TASK_STATE_PROOF_SUBMITTED
    assert submitted.proof.state == T.PROOF_STATE_SUBMITTED  # an enum, not v1's text
    rejected = await api.tasks.RejectProof(
        T.RejectProofRequest(task_id=task.task_id, reason="Blurry", request_id=request_id()),
        metadata=poster.auth,
    )
    assert rejected.task.state == T.TASK_STATE_ACCEPTED
    await api.submit(worker, task.task_id)
    approved = await api.tasks.ApproveProof(
        T.ApproveProofRequest(task_id=task.task_id, request_id=request_id()), metadata=poster.auth
    )
    assert (approved.task.state, approved.task.escrow_state) == (
        T.TASK_STATE_COMPLETED,
        T.ESCROW_STATE_RELEASED,
    )
    assert approved.xp_awarded == 42

    proofs = (await api.tasks.ListTaskProofs(T.ListTaskProofsRequest(task_id=task.task_id, page_size=1),
                                             metadata=worker.auth)).proofs  # fmt: skip
    assert [p.state for p in proofs] == [T.PROOF_STATE_ACCEPTED]  # newest first, one a page


async def test_refusals_of_the_life(api: V2) -> None:
    poster, worker, stranger, admin = api.poster(), api.worker(), api.worker(), api.admin()
    task = await api.post(poster)
    funding = T.FundTaskRequest(task_id=task.task_id, payment_reference="pi_x")
    await fails(api.tasks.FundTask(funding, metadata=stranger.auth), S.PERMISSION_DENIED, "HX202")
    await fails(api.tasks.FundTask(funding, metadata=poster.auth), S.FAILED_PRECONDITION, "HX003")
    await fails(api.accept(poster, task.task_id), S.FAILED_PRECONDITION, "HX008")
    await fails(api.accept(worker, str(uuid.uuid4())), S.NOT_FOUND, "HX302")
    picky = await api.post(poster, price=9900)
    await api.tasks.CancelTask(T.CancelTaskRequest(task_id=picky.task_id), metadata=admin.auth)
    await api.accept(worker, task.task_id)
    await fails(api.accept(stranger, task.task_id), S.FAILED_PRECONDITION, "HX203")
    await fails(
        api.tasks.GetTask(T.GetTaskRequest(task_id=task.task_id), metadata=stranger.auth),
        S.PERMISSION_DENIED,
        "HX202",
    )
    approve = T.ApproveProofRequest(task_id=task.task_id)
    await fails(
        api.tasks.ApproveProof(approve, metadata=poster.auth), S.FAILED_PRECONDITION, "HX003"
    )
    reject = T.RejectProofRequest(task_id=task.task_id, reason="No")
    await fails(api.tasks.RejectProof(reject, metadata=worker.auth), S.PERMISSION_DENIED, "HX202")
    proofs = T.ListTaskProofsRequest(task_id=task.task_id)
    await fails(
        api.tasks.ListTaskProofs(proofs, metadata=stranger.auth), S.PERMISSION_DENIED, "HX202"
    )
    cancelled = await api.tasks.CancelTask(
        T.CancelTaskRequest(task_id=task.task_id, reason="Rain", request_id=request_id()),
        metadata=poster.auth,
    )
    assert (cancelled.task.state, cancelled.task.escrow_state) == (
        T.TASK_STATE_CANCELLED,
        T.ESCROW_STATE_REFUNDED,
    )
    await fails(
        api.tasks.CancelTask(T.CancelTaskRequest(task_id=task.task_id), metadata=admin.auth),
        S.FAILED_PRECONDITION,
        "HX001",
    )
    await fails(api.submit(worker, task.task_id), S.FAILED_PRECONDITION, "HX003")


async def test_a_bad_request_lists_every_invalid_field(api: V2) -> None:
    poster = api.poster()
    task = api.task(price=10)
    task.title = ""
    assert await invalid(api.tasks.CreateTask(T.CreateTaskRequest(task=task), metadata=poster.auth)) == {
        "task.title": "must have 1 to 255 characters",
        "task.price.amount_cents": "must be at least 500 (5.00 USD)",
    }  # fmt: skip
    worse = T.Task(
        title="x" * 256, category="plumbing!", price=common_pb2.Money(amount_cents=900, currency="EUR"),
        location_state="California", location=common_pb2.LatLng(latitude=91, longitude=0),
        deadline=timestamp(datetime.now(UTC) + timedelta(days=400)),
        requirements=T.TaskRequirements(required_trade="Electrician!", required_trust_tier=9),
    )  # fmt: skip
    found = await invalid(
        api.tasks.CreateTask(T.CreateTaskRequest(task=worse, request_id="not-a-uuid"), metadata=poster.auth)
    )  # fmt: skip
    assert sorted(found) == [
        "request_id",
        "task.address",
        "task.category",
        "task.deadline",
        "task.location.latitude",
        "task.location_state",
        "task.price.currency",
        "task.requirements.required_trade",
        "task.requirements.required_trust_tier",
        "task.title",
    ]
    never = api.task()
    never.deadline.seconds = 10**12  # past year 9999: a bad time, not an internal error
    assert await invalid(api.tasks.CreateTask(T.CreateTaskRequest(task=never), metadata=poster.auth)) == {
        "task.deadline": "is not a valid time"}  # fmt: skip
    assert api.world.value("SELECT count(*) FROM tasks") == 0
    # v1 keeps stopping at the first (tests/api/test_errors.py): the same request there names one


async def test_an_update_changes_only_the_fields_its_mask_names(api: V2) -> None:
    poster, worker = api.poster(), api.worker()
    task = await api.post(poster, urgent=True)
    edit = T.Task(task_id=task.task_id, title="Fix the tap", description="", urgent=False)
    updated = (await api.tasks.UpdateTask(
        T.UpdateTaskRequest(task=edit, update_mask=FieldMask(paths=["title", "urgent"])),
        metadata=poster.auth)).task  # fmt: skip
    # the mask named title and urgent (urgent set to its empty value); description stays
    assert (updated.title, updated.urgent, updated.description) == (
        "Fix the tap",
        False,
        "It drips.",
    )

    # an absent mask names the changeable fields set in the task: an echo changes what differs
    echoed = T.Task()
    echoed.CopyFrom(updated)
    echoed.description = "It drips a lot."
    echoed.price.amount_cents = 1  # not changeable: ignored without a mask
    again = (
        await api.tasks.UpdateTask(T.UpdateTaskRequest(task=echoed), metadata=poster.auth)
    ).task
    assert (again.title, again.description, again.price.amount_cents) == (
        "Fix the tap", "It drips a lot.", 4200)  # fmt: skip

    moved = T.Task(task_id=task.task_id, address="9 Elm St", location_state="NV",
                   location=common_pb2.LatLng(latitude=36.17, longitude=-115.14))  # fmt: skip
    place = (await api.tasks.UpdateTask(
        T.UpdateTaskRequest(task=moved, update_mask=FieldMask(paths=["address", "location_state", "location"])),
        metadata=poster.auth)).task  # fmt: skip
    assert (place.address, place.location_state, place.title) == ("9 Elm St", "NV", "Fix the tap")

    everything = T.Task(task_id=task.task_id, title="All", address="1 Main St", location_state="CA",
                        location=common_pb2.LatLng(latitude=34.05, longitude=-118.25), deadline=updated.deadline)  # fmt: skip
    star = (await api.tasks.UpdateTask(T.UpdateTaskRequest(task=everything, update_mask=FieldMask(paths=["*"])),
                                       metadata=poster.auth)).task  # fmt: skip
    assert (star.title, star.description, star.location_state) == ("All", "", "CA")

    refused = await invalid(api.tasks.UpdateTask(
        T.UpdateTaskRequest(task=T.Task(task_id=task.task_id, title=""),
                            update_mask=FieldMask(paths=["title", "price", "address", "*"])),
        metadata=poster.auth))  # fmt: skip
    assert sorted(refused) == [
        "task.address",  # named, so checked: it may not be empty
        "task.title",
        "update_mask",  # address without location_state and location
        "update_mask.paths[1]",
        "update_mask.paths[3]",
    ]
    assert "changeable: title" in refused["update_mask.paths[1]"]
    other = T.UpdateTaskRequest(task=T.Task(task_id=task.task_id, title="Mine now"),
                                update_mask=FieldMask(paths=["title"]))  # fmt: skip
    await fails(api.tasks.UpdateTask(other, metadata=worker.auth), S.PERMISSION_DENIED, "HX202")
    missing = T.UpdateTaskRequest(task=T.Task(title="No id"))
    assert list(await invalid(api.tasks.UpdateTask(missing, metadata=poster.auth))) == [
        "task.task_id"
    ]
    await api.accept(worker, task.task_id)
    await fails(api.tasks.UpdateTask(T.UpdateTaskRequest(task=edit), metadata=poster.auth),
                S.FAILED_PRECONDITION, "HX003")  # fmt: skip


async def test_lists_filter_by_state_and_page_one_way(api: V2) -> None:
    poster, worker = api.poster(), api.worker()
    tasks = [await api.post(poster) for _ in range(3)]
    await api.create(poster)  # unfunded, OPEN
    await api.accept(worker, tasks[0].task_id)
    await api.accept(worker, tasks[1].task_id)

    async def posted(**request: object) -> T.ListMyPostedTasksResponse:
        return await api.tasks.ListMyPostedTasks(
            T.ListMyPostedTasksRequest(**request), metadata=poster.auth
        )

    everything = await posted()
    assert len(everything.tasks) == 4
    assert everything.next_page_token == ""
    accepted = await posted(states=[T.TASK_STATE_ACCEPTED])
    assert {t.task_id for t in accepted.tasks} == {tasks[0].task_id, tasks[1].task_id}
    assert len((await posted(states=[T.TASK_STATE_ACCEPTED, T.TASK_STATE_OPEN])).tasks) == 4
    first = await posted(states=[T.TASK_STATE_OPEN], page_size=1)
    second = await posted(states=[T.TASK_STATE_OPEN], page_size=1, page_token=first.next_page_token)
    assert second.next_page_token == ""
    assert {first.tasks[0].task_id, second.tasks[0].task_id} == {
        t.task_id for t in everything.tasks if t.state == T.TASK_STATE_OPEN
    }
    # a token is valid only with the filters it was made with
    assert list(await invalid(posted(page_size=1, page_token=first.next_page_token))) == [
        "page_token"
    ]
    # above the maximum: the maximum (v1 refuses it); negative and unset states are refused
    assert len((await posted(page_size=1000)).tasks) == 4
    assert sorted(await invalid(posted(page_size=-1, states=[T.TASK_STATE_OPEN, T.TASK_STATE_UNSPECIFIED]))) == [
        "page_size", "states[1]"]  # fmt: skip

    mine = await api.tasks.ListMyAcceptedTasks(
        T.ListMyAcceptedTasksRequest(states=[T.TASK_STATE_ACCEPTED], page_size=1),
        metadata=worker.auth,
    )
    rest = await api.tasks.ListMyAcceptedTasks(
        T.ListMyAcceptedTasksRequest(states=[T.TASK_STATE_ACCEPTED], page_size=1,
                                     page_token=mine.next_page_token), metadata=worker.auth)  # fmt: skip
    assert {mine.tasks[0].task_id, rest.tasks[0].task_id} == {tasks[0].task_id, tasks[1].task_id}
    assert rest.next_page_token == ""
    none = await api.tasks.ListMyAcceptedTasks(
        T.ListMyAcceptedTasksRequest(states=[T.TASK_STATE_COMPLETED]), metadata=worker.auth
    )
    assert list(none.tasks) == []


async def test_a_tasks_proofs_page(api: V2) -> None:
    poster, worker = api.poster(), api.worker()
    task = await api.post(poster)
    await api.accept(worker, task.task_id)
    for _ in range(3):
        await api.submit(worker, task.task_id)
        await api.tasks.RejectProof(T.RejectProofRequest(task_id=task.task_id, reason="Again"),
                                    metadata=poster.auth)  # fmt: skip
    request = T.ListTaskProofsRequest(task_id=task.task_id, page_size=2)
    first = await api.tasks.ListTaskProofs(request, metadata=poster.auth)
    request.page_token = first.next_page_token
    second = await api.tasks.ListTaskProofs(request, metadata=poster.auth)
    assert (len(first.proofs), len(second.proofs), second.next_page_token) == (2, 1, "")
    ids = [p.proof_id for p in (*first.proofs, *second.proofs)]
    assert len(set(ids)) == 3
    assert all(
        p.state == T.PROOF_STATE_REJECTED and p.rejection_reason == "Again" for p in first.proofs
    )
    # a token of one task's proofs is not a token of another's
    other = await api.post(poster)
    wrong = T.ListTaskProofsRequest(task_id=other.task_id, page_token=first.next_page_token)
    assert list(await invalid(api.tasks.ListTaskProofs(wrong, metadata=poster.auth))) == [
        "page_token"
    ]
    unknown = T.ListTaskProofsRequest(task_id=str(uuid.uuid4()))
    await fails(api.tasks.ListTaskProofs(unknown, metadata=poster.auth), S.NOT_FOUND, "HX302")


async def test_submit_proof_lists_each_bad_photo(api: V2) -> None:
    poster, worker = api.poster(), api.worker()
    task = await api.post(poster)
    await api.accept(worker, task.task_id)
    photo = api.people.photos(worker)[0]
    request = T.SubmitProofRequest(
        task_id="nope", photo_upload_ids=[photo, "bad", photo], note="x" * 2001
    )
    assert sorted(await invalid(api.tasks.SubmitProof(request, metadata=worker.auth))) == [
        "note", "photo_upload_ids", "photo_upload_ids[1]", "task_id"]  # fmt: skip
    twice = T.SubmitProofRequest(task_id=task.task_id, photo_upload_ids=[photo, photo])
    assert await invalid(api.tasks.SubmitProof(twice, metadata=worker.auth)) == {
        "photo_upload_ids": "must not repeat a photo"}  # fmt: skip
    none = T.SubmitProofRequest(task_id=task.task_id)
    assert list(await invalid(api.tasks.SubmitProof(none, metadata=worker.auth))) == [
        "photo_upload_ids"
    ]
    theirs = T.SubmitProofRequest(task_id=task.task_id, photo_upload_ids=api.people.photos(poster))
    await fails(api.tasks.SubmitProof(theirs, metadata=poster.auth), S.PERMISSION_DENIED, "HX202")
