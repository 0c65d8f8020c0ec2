/**
 * The Hustle API from TypeScript: a gRPC transport that sends the session token and a request
 * id with every call, and the typed error details of a failed call. The services and messages
 * are generated into ./gen (scripts/gen_ts.py); call them with `createClient`:
 *
 *     const transport = hustleTransport({ baseUrl: "http://localhost:50051", token });
 *     const feed = createClient(FeedService, transport);
 *     const page = await feed.getFeed({ mode: FeedMode.NEARBY, location, radiusMeters: 5000 });
 *
 * Watch streams (WatchTask, WatchFeed, WatchNotifications) are server streams: iterate them with
 * `for await`. `followTask` below is the pattern for all three: keep the last `cursor`, and
 * when the stream breaks, watch again with it as `after` (every event once, in order):
 *
 *     const controller = new AbortController();
 *     for await (const event of followTask(tasks, taskId, { signal: controller.signal })) {
 *       console.log(event.kind, event.state, event.cursor);
 *     }
 */

import { randomUUID } from "node:crypto";

import { setTimeout as sleep } from "node:timers/promises";

import { type Client, Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import { TaskEventKind, type TaskService, type WatchTaskResponse } from "./gen/hustle/v2/task_pb.js";

export interface HustleTransportOptions {
  /** Where the server listens: `http://host:port` (plaintext HTTP/2) or `https://...`. */
  baseUrl: string;
  /** The session's access token (SignUp, SignIn), or a function that returns the current one. */
  token?: string | (() => string | undefined);
}

/** A gRPC transport (HTTP/2, no proxy) to the Hustle server. */
export function hustleTransport(options: HustleTransportOptions): Transport {
  const metadata: Interceptor = (next) => async (request) => {
    const token = typeof options.token === "function" ? options.token() : options.token;
    if (token && !request.header.has("authorization")) {
      request.header.set("authorization", `Bearer ${token}`);
    }
    if (!request.header.has("x-request-id")) {
      request.header.set("x-request-id", randomUUID()); // the server logs the call under it
    }
    return next(request);
  };
  return createGrpcTransport({ baseUrl: options.baseUrl, interceptors: [metadata] });
}

/** A new `request_id` for a mutation that takes one: make it once per operation, send it
 * again with every retry of that operation. */
export function requestId(): string {
  return randomUUID();
}

/** What a failed call says: its gRPC code, its HX code and the invalid fields. */
export interface HxError {
  code: Code;
  /** The HX code (`google.rpc.ErrorInfo.reason`), e.g. "HX301". */
  reason: string | undefined;
  message: string;
  /** Every invalid field of the request (`google.rpc.BadRequest`): path → what is wrong. */
  fields: Map<string, string>;
}

export function hxError(error: unknown): HxError {
  const failed = ConnectError.from(error);
  const fields = new Map<string, string>();
  for (const badRequest of failed.findDetails(BadRequestSchema)) {
    for (const violation of badRequest.fieldViolations) {
      fields.set(violation.field, violation.description);
    }
  }
  return {
    code: failed.code,
    reason: failed.findDetails(ErrorInfoSchema)[0]?.reason,
    message: failed.rawMessage,
    fields,
  };
}

export interface FollowOptions {
  /** The cursor of the last event already seen: resume after it (default: from now). */
  after?: string;
  /** Stop following when this aborts. */
  signal?: AbortSignal;
}

/**
 * A task's events (TaskService.WatchTask) for as long as `signal` allows: heartbeats are
 * skipped, and a stream that breaks the way the server says to retry (UNAVAILABLE when a server
 * shuts down, ABORTED when the client read too slowly) is watched again from the last cursor,
 * so every event comes once and in order. A cursor older than the server keeps events for
 * (FAILED_PRECONDITION, HX601) is thrown: reload the task, then follow it without `after`.
 */
export async function* followTask(
  tasks: Client<typeof TaskService>,
  taskId: string,
  options: FollowOptions = {},
): AsyncGenerator<WatchTaskResponse> {
  let after = options.after ?? "";
  for (let failures = 0; ; ) {
    try {
      for await (const message of tasks.watchTask({ taskId, after }, { signal: options.signal })) {
        after = message.cursor;
        failures = 0;
        if (message.kind !== TaskEventKind.HEARTBEAT) yield message;
      }
      return;
    } catch (error) {
      if (options.signal?.aborted) return;
      const failed = ConnectError.from(error);
      if (failed.code !== Code.Unavailable && failed.code !== Code.Aborted) throw error;
      failures += 1;
      await sleep(Math.min(1000 * 2 ** (failures - 1), 10_000)); // the server asks for 1 s first
    }
  }
}
