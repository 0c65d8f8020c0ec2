/**
 * The TypeScript client end to end, against a real server (and a real worker for the jobs a
 * sign-up and a profile change queue): tests/clients/test_typescript.py starts both and runs
 * this with HUSTLE_ADDRESS=http://127.0.0.1:PORT. A poster and a worker sign up, the poster
 * creates and funds a task, the worker finds it in the NEARBY feed and accepts it, and a wrong
 * input comes back with its HX code and the fields it names.
 */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, type Client, createClient } from "@connectrpc/connect";

import { AuthService } from "../src/gen/hustle/v2/auth_pb.js";
import { LatLngSchema } from "../src/gen/hustle/v2/common_pb.js";
import { FeedMode, FeedService } from "../src/gen/hustle/v2/feed_pb.js";
import { EscrowState, type Task, TaskService, TaskState } from "../src/gen/hustle/v2/task_pb.js";
import { UserMode, UserService } from "../src/gen/hustle/v2/user_pb.js";
import { hustleTransport, hxError, requestId } from "../src/index.js";

const baseUrl = process.env.HUSTLE_ADDRESS ?? "";
const HERE = create(LatLngSchema, { latitude: 34.05, longitude: -118.25 });

/** A signed-up user's clients: every call carries their token. */
interface Account {
  userId: string;
  tasks: Client<typeof TaskService>;
  feed: Client<typeof FeedService>;
  users: Client<typeof UserService>;
}

async function signUp(name: string, mode: UserMode): Promise<Account> {
  const auth = createClient(AuthService, hustleTransport({ baseUrl }));
  const email = `${name.split(" ")[0]?.toLowerCase()}-${randomUUID()}@example.test`;
  const { session, me } = await auth.signUp(
    { email, password: "correct-horse-42", fullName: name, defaultMode: mode },
    { timeoutMs: 15_000 },
  );
  assert.ok(session?.accessToken, "SignUp returns a session");
  assert.equal(me?.email, email);
  const transport = hustleTransport({ baseUrl, token: session.accessToken });
  return {
    userId: me.userId,
    tasks: createClient(TaskService, transport),
    feed: createClient(FeedService, transport),
    users: createClient(UserService, transport),
  };
}

/** Polls `probe` until it returns a value, backing off up to 1 s between calls (the read
 * rate limit allows 120 a minute), for at most `seconds`. */
async function eventually<T>(what: string, seconds: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (let pause = 100; ; pause = Math.min(pause * 1.5, 1000)) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${seconds} s`);
    await sleep(pause);
  }
}

test("a task from sign-up to accepted, through the generated TypeScript client", async (t) => {
  assert.ok(baseUrl.startsWith("http"), "HUSTLE_ADDRESS must name the server, e.g. http://127.0.0.1:50051");
  const poster = await signUp("Pat Poster", UserMode.POSTER);
  const worker = await signUp("Wes Worker", UserMode.WORKER);
  let task: Task | undefined;

  await t.test("the worker sets a home state (the capability job derives their profile)", async () => {
    const { me } = await worker.users.updateProfile(
      { me: { locationState: "CA" }, updateMask: { paths: ["location_state"] } },
      { timeoutMs: 10_000 },
    );
    assert.equal(me?.locationState, "CA");
  });

  await t.test("the poster creates and funds a task", async () => {
    const created = await poster.tasks.createTask(
      {
        task: {
          title: "Hang two shelves",
          description: "Drill, level and screws are here.",
          category: "HANDYMAN",
          price: { amountCents: 6500n, currency: "USD" },
          address: "1 Main St, Los Angeles",
          locationState: "CA",
          location: HERE,
          deadline: timestampFromDate(new Date(Date.now() + 3 * 24 * 3600 * 1000)),
        },
        requestId: requestId(),
      },
      { timeoutMs: 10_000 },
    );
    assert.equal(created.task?.state, TaskState.OPEN);
    assert.equal(created.task?.posterId, poster.userId);
    const funded = await poster.tasks.fundTask(
      { taskId: created.task.taskId, paymentReference: "pi_ts_e2e", requestId: requestId() },
      { timeoutMs: 10_000 },
    );
    assert.equal(funded.task?.escrowState, EscrowState.FUNDED);
    task = funded.task;
  });

  await t.test("the worker finds it in the NEARBY feed", async () => {
    assert.ok(task);
    const taskId = task.taskId;
    const item = await eventually("the task in the worker's NEARBY feed", 60, async () => {
      const page = await worker.feed.getFeed(
        { mode: FeedMode.NEARBY, location: HERE, radiusMeters: 5000 },
        { timeoutMs: 10_000 },
      );
      return page.items.find((i) => i.task?.taskId === taskId);
    });
    assert.equal(item.task?.eligible, true);
    assert.equal(item.distanceMeters, 0); // set in NEARBY feeds, and 0 is a real distance
  });

  await t.test("the worker accepts it", async () => {
    assert.ok(task);
    const rid = requestId();
    const accepted = await worker.tasks.acceptTask({ taskId: task.taskId, requestId: rid }, { timeoutMs: 10_000 });
    assert.equal(accepted.task?.state, TaskState.ACCEPTED);
    assert.equal(accepted.task?.workerId, worker.userId);
    // a retry of the same operation gets the same answer
    const again = await worker.tasks.acceptTask({ taskId: task.taskId, requestId: rid }, { timeoutMs: 10_000 });
    assert.equal(again.task?.acceptedAt?.seconds, accepted.task?.acceptedAt?.seconds);
  });

  await t.test("a wrong input comes back with its HX code and every field it names", async () => {
    const failed = await poster.tasks
      .createTask(
        {
          task: { title: "", price: { amountCents: 10n, currency: "USD" }, locationState: "CA", location: HERE },
          requestId: requestId(),
        },
        { timeoutMs: 10_000 },
      )
      .then(
        () => assert.fail("CreateTask accepted an empty title and a price of 10 cents"),
        (error: unknown) => hxError(error),
      );
    assert.equal(failed.code, Code.InvalidArgument);
    assert.equal(failed.reason, "HX301");
    assert.ok(failed.fields.has("task.title"), `fields: ${[...failed.fields.keys()]}`);
    assert.ok(failed.fields.has("task.price.amount_cents"), `fields: ${[...failed.fields.keys()]}`);
  });

  await t.test("a call without a session is UNAUTHENTICATED (HX401)", async () => {
    const anonymous = createClient(FeedService, hustleTransport({ baseUrl }));
    const failed = await anonymous.getFeed({ mode: FeedMode.NORMAL }, { timeoutMs: 10_000 }).then(
      () => assert.fail("GetFeed answered without a session"),
      (error: unknown) => hxError(error),
    );
    assert.equal(failed.code, Code.Unauthenticated);
    assert.equal(failed.reason, "HX401");
  });
});
