// The transport-independent part of the SDK. Import from "@voxbatch/sdk/node" in Node.js (gRPC)
// or "@voxbatch/sdk/web" in browsers (gRPC-Web); both re-export everything here.

export { type Audio, type Chunk, joinChunks, type SynthesizedAudio, type Timings } from "./audio.js";
export { Client, type ClientOptions, DEFAULT_TIMEOUT_MS, interceptorsFor } from "./client.js";
export {
  AuthenticationError,
  AlreadyExistsError,
  CancelledError,
  Code,
  DeadlineExceededError,
  FailedPreconditionError,
  fromRpcError,
  InvalidRequestError,
  NotFoundError,
  OverloadedError,
  PermissionDeniedError,
  ServerError,
  type StatusName,
  statusName,
  UnavailableError,
  VoxbatchError,
} from "./errors.js";
export {
  buildRequest,
  type CallOptions,
  Encoding,
  type EncodingName,
  parseEncoding,
  parsePriority,
  Priority,
  type PriorityName,
  type Reference,
  type SynthesisOptions,
  type VoiceOptions,
} from "./options.js";
/** The generated messages, enums and the TtsService descriptor (src/gen/, never edited by hand). */
export * as pb from "./gen/voxbatch/tts/v1/tts_pb.js";
