// Typed errors thrown by the client; each carries the gRPC status and the server's message
// (the Python SDK's errors.py).

import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";

export { Code };

/** gRPC status names, indexed by status code. */
const STATUS_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

export type StatusName = (typeof STATUS_NAMES)[number];

/** The gRPC name of a status code, such as "INVALID_ARGUMENT". */
export function statusName(code: Code): StatusName {
  return STATUS_NAMES[code] ?? "UNKNOWN";
}

/**
 * A call failed. `code` is the gRPC status code, `status` its name, `details` the server's explanation,
 * `retryAfterMs` when the server said when trying again can succeed (google.rpc.RetryInfo, sent with a
 * refused quota), else undefined.
 */
export class VoxbatchError extends Error {
  readonly code: Code;
  readonly status: StatusName;
  readonly details: string;
  readonly retryAfterMs: number | undefined;

  constructor(code: Code, details: string, options?: { cause?: unknown; retryAfterMs?: number | undefined }) {
    super(`${statusName(code)}: ${details}`, options);
    this.name = new.target.name;
    this.code = code;
    this.status = statusName(code);
    this.details = details;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** INVALID_ARGUMENT: the request is wrong; fix it before retrying. */
export class InvalidRequestError extends VoxbatchError {}

/** RESOURCE_EXHAUSTED: the server is full or the request too large. */
export class OverloadedError extends VoxbatchError {}

/** DEADLINE_EXCEEDED: the request did not finish in time. */
export class DeadlineExceededError extends VoxbatchError {}

/** UNAVAILABLE: the server cannot be reached or is shutting down; retrying can succeed. */
export class UnavailableError extends VoxbatchError {}

/** UNAUTHENTICATED: no API key, or one the server does not accept (wrong or revoked). */
export class AuthenticationError extends VoxbatchError {}

/** PERMISSION_DENIED: the API key is valid but may not make this call (a missing capability). */
export class PermissionDeniedError extends VoxbatchError {}

/** CANCELLED: the call was cancelled (its AbortSignal was aborted). */
export class CancelledError extends VoxbatchError {}

/** ALREADY_EXISTS: the name is taken (a saved voice). */
export class AlreadyExistsError extends VoxbatchError {}

/** NOT_FOUND: no such saved voice. */
export class NotFoundError extends VoxbatchError {}

/** FAILED_PRECONDITION: the server cannot do this as it is set up (an engine that cannot clone). */
export class FailedPreconditionError extends VoxbatchError {}

/** INTERNAL or another server-side failure. */
export class ServerError extends VoxbatchError {}

const BY_CODE = new Map<
  Code,
  new (code: Code, details: string, options?: { cause?: unknown; retryAfterMs?: number | undefined }) => VoxbatchError
>([
  [Code.InvalidArgument, InvalidRequestError],
  [Code.ResourceExhausted, OverloadedError],
  [Code.DeadlineExceeded, DeadlineExceededError],
  [Code.Unavailable, UnavailableError],
  [Code.Canceled, CancelledError],
  [Code.Unauthenticated, AuthenticationError],
  [Code.PermissionDenied, PermissionDeniedError],
  [Code.AlreadyExists, AlreadyExistsError],
  [Code.NotFound, NotFoundError],
  [Code.FailedPrecondition, FailedPreconditionError],
]);

/** The typed error for whatever a call threw. */
export function fromRpcError(error: unknown): VoxbatchError {
  if (error instanceof VoxbatchError) return error;
  const connectError = ConnectError.from(error);
  const kind = BY_CODE.get(connectError.code) ?? ServerError;
  const details = connectError.rawMessage || statusName(connectError.code);
  return new kind(connectError.code, details, { cause: error, retryAfterMs: retryAfterMs(connectError) });
}

/** RetryInfo's delay, from the status details (google.rpc.RetryInfo { Duration retry_delay = 1; }). */
function retryAfterMs(error: ConnectError): number | undefined {
  for (const detail of error.details) {
    if (!("type" in detail) || detail.type !== "google.rpc.RetryInfo") continue;
    try {
      const reader = new BinaryReader(detail.value);
      while (reader.pos < reader.len) {
        const [field, wireType] = reader.tag();
        if (field === 1 && wireType === WireType.LengthDelimited) {
          const delay = fromBinary(DurationSchema, reader.bytes());
          return Number(delay.seconds) * 1000 + delay.nanos / 1e6;
        }
        reader.skip(wireType);
      }
    } catch {
      return undefined; // a malformed detail is no reason to lose the error itself
    }
  }
  return undefined;
}
