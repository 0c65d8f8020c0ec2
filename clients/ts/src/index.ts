/**
 * The Hustle API from TypeScript: a gRPC transport that sends the session token and a request
 * id with every call, and the typed error details of a failed call. The services and messages
 * are generated into ./gen (scripts/gen_ts.py); call them with `createClient`:
 *
 *     const transport = hustleTransport({ baseUrl: "http://localhost:50051", token });
 *     const feed = createClient(FeedService, transport);
 *     const page = await feed.getFeed({ mode: FeedMode.NEARBY, location, radiusMeters: 5000 });
 */

import { randomUUID } from "node:crypto";

import { type Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

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
