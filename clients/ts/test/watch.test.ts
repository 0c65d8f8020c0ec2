/**
 * A watch stream from TypeScript (issue 16), against the real server that
 * tests/clients/test_typescript.py starts: a poster watches their task, sees its cancellation
 * the moment it commits, and `followTask` resumed from the stream's first cursor replays exactly
 * that event from the server's log.
 */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";

import { AuthService } from "../src/gen/hustle/v2/auth_pb.js";
import { LatLngSchema } from "../src/gen/hustle/v2/common_pb.js";
import { TaskEventKind, TaskService, TaskState } from "../src/gen/hustle/v2/task_pb.js";
import { UserMode } from "../src/gen/hustle/v2/user_pb.js";
import { followTask, hustleTransport, hxError, requestId } from "../src/index.js";

const baseUrl = process.env.HUSTLE_ADDRESS ?? "";

test("a poster watches a task change, and a resumed stream replays what it missed", async () => {
  const auth = createClient(AuthService, hustleTransport({ baseUrl }));
  const { session } = await auth.signUp(
    { email: `watcher-${randomUUID()}@example.test`, password: "correct-horse-42", fullName: "Wanda Watcher", defaultMode: UserMode.POSTER },
    { timeoutMs: 15_000 },
  );
  assert.ok(session?.accessToken);
  const tasks = createClient(TaskService, hustleTransport({ baseUrl, token: session.accessToken }));
  const created = await tasks.createTask(
    {
      task: {
        title: "Water the plants",
        category: "GARDENING",
        price: { amountCents: 1500n, currency: "USD" },
        address: "2 Elm St, Los Angeles",
        locationState: "CA",
        location: create(LatLngSchema, { latitude: 34.05, longitude: -118.25 }),
        deadline: timestampFromDate(new Date(Date.now() + 2 * 24 * 3600 * 1000)),
      },
      requestId: requestId(),
    },
    { timeoutMs: 10_000 },
  );
  const taskId = created.task?.taskId ?? "";
  await tasks.fundTask({ taskId, paymentReference: "pi_ts_watch", requestId: requestId() }, { timeoutMs: 10_000 });

  // live: the first message is a heartbeat with the cursor to resume from
  const controller = new AbortController();
  const stream = tasks.watchTask({ taskId }, { signal: controller.signal })[Symbol.asyncIterator]();
  const first = (await stream.next()).value;
  assert.equal(first?.kind, TaskEventKind.HEARTBEAT);
  assert.ok(first?.cursor);
  await tasks.cancelTask({ taskId, reason: "not needed", requestId: requestId() }, { timeoutMs: 10_000 });
  // (the funding may come first: "from now" is from where the server's hub was)
  const skipped = new Set([TaskEventKind.HEARTBEAT, TaskEventKind.FUNDED]);
  let live = (await stream.next()).value;
  while (live !== undefined && skipped.has(live.kind)) live = (await stream.next()).value;
  assert.equal(live?.kind, TaskEventKind.STATE_CHANGED);
  assert.equal(live?.previousState, TaskState.OPEN);
  assert.equal(live?.state, TaskState.CANCELLED);
  controller.abort();

  // resumed from the first cursor: the same event, from the log, and nothing else
  const resume = new AbortController();
  const replayed = followTask(tasks, taskId, { after: first.cursor, signal: resume.signal });
  let again = (await replayed.next()).value;
  while (again?.kind === TaskEventKind.FUNDED) again = (await replayed.next()).value;
  assert.equal(again?.cursor, live?.cursor);
  assert.equal(again?.state, TaskState.CANCELLED);
  resume.abort();
  await replayed.return(undefined);

  // a cursor the server never gave is refused with its HX code
  const refused = await tasks
    .watchTask({ taskId, after: "not-a-cursor" })
    [Symbol.asyncIterator]()
    .next()
    .then(
      () => assert.fail("WatchTask accepted a malformed cursor"),
      (error: unknown) => hxError(error),
    );
  assert.equal(refused.code, Code.InvalidArgument);
  assert.equal(refused.reason, "HX301");
});
