// Request options of the client, mirroring the contract with TypeScript types
// (the Python SDK's options.py).

import { create } from "@bufbuild/protobuf";
import {
  AudioEncoding,
  Priority,
  ReferenceAudioSchema,
  type StreamSynthesizeRequest,
  StreamSynthesizeRequestSchema,
  SynthesisParametersSchema,
  type SynthesizeRequest,
  SynthesizeRequestSchema,
} from "./gen/voxbatch/tts/v1/tts_pb.js";
import { Code, InvalidRequestError } from "./errors.js";

/** Encoding of returned audio: `Encoding.WAV`, `Encoding.MP3`, ... (the contract's AudioEncoding). */
export { AudioEncoding as Encoding, Priority };

/** Encoding names accepted wherever an `Encoding` is: the enum's names in lower case, plus aliases. */
export type EncodingName = "wav" | "flac" | "ogg_opus" | "ogg" | "opus" | "mp3" | "pcm_s16le" | "pcm" | "raw";

/** Priority names accepted wherever a `Priority` is. */
export type PriorityName = "interactive" | "background";

const ENCODING_NAMES: Record<EncodingName, AudioEncoding> = {
  wav: AudioEncoding.WAV,
  flac: AudioEncoding.FLAC,
  ogg_opus: AudioEncoding.OGG_OPUS,
  ogg: AudioEncoding.OGG_OPUS,
  opus: AudioEncoding.OGG_OPUS,
  mp3: AudioEncoding.MP3,
  pcm_s16le: AudioEncoding.PCM_S16LE,
  pcm: AudioEncoding.PCM_S16LE,
  raw: AudioEncoding.PCM_S16LE,
};

/** A bad argument, found before any call: the same error the server would give (INVALID_ARGUMENT). */
function invalid(message: string): InvalidRequestError {
  return new InvalidRequestError(Code.InvalidArgument, message);
}

/** An `Encoding` from an enum value or a name such as "mp3" (any case); throws InvalidRequestError otherwise. */
export function parseEncoding(value: AudioEncoding | EncodingName | string): AudioEncoding {
  if (typeof value === "number") {
    if (value === AudioEncoding.UNSPECIFIED) return AudioEncoding.WAV;
    if (AudioEncoding[value] !== undefined) return value;
  } else {
    const found = typeof value === "string" ? ENCODING_NAMES[value.toLowerCase() as EncodingName] : undefined;
    if (found !== undefined) return found;
  }
  const names = ["wav", "flac", "ogg_opus", "mp3", "pcm_s16le"].join(", ");
  throw invalid(`unknown encoding ${JSON.stringify(value)}; use one of ${names}`);
}

/** A `Priority` from an enum value or "interactive" / "background"; throws InvalidRequestError otherwise. */
export function parsePriority(value: Priority | PriorityName): Priority {
  if (value === "interactive" || value === Priority.INTERACTIVE) return Priority.INTERACTIVE;
  if (value === "background" || value === Priority.BACKGROUND) return Priority.BACKGROUND;
  throw invalid(`unknown priority ${JSON.stringify(value)}; use interactive or background`);
}

/**
 * A recording to clone the voice from, and what it says. An empty or missing transcript clones
 * from the clip alone (servers whose `supportsIsolatedReference` is true, such as VoxCPM2).
 */
export interface Reference {
  audio: Uint8Array;
  transcript?: string;
}

/** Deadline and cancellation of one call. */
export interface CallOptions {
  /**
   * Deadline of the call in milliseconds; the server sees it too (queued work past it is dropped).
   * Defaults to the client's `timeoutMs`; 0 or less means no deadline.
   */
  timeoutMs?: number;
  /** Aborting the signal cancels the call; the server drops the call's queued work. */
  signal?: AbortSignal;
}

/** What `synthesize` and `stream` accept besides the text. Unset engine parameters take the engine's defaults. */
export interface SynthesisOptions extends CallOptions {
  /** Voice name from `voices()`; empty or unset selects the default voice. */
  voice?: string;
  /** Defaults to WAV. */
  encoding?: AudioEncoding | EncodingName;
  /** Output sample rate in Hz; 0 or unset means the engine's native rate. */
  sampleRate?: number;
  /** Recording to clone the voice from (engines that support cloning). */
  reference?: Reference;
  cfgValue?: number;
  inferenceSteps?: number;
  temperature?: number;
  seed?: number | bigint;
  speakingRate?: number;
  /** Generate a sentence again when it never stops (VoxCPM); unset keeps the engine's rule. */
  retryBadcase?: boolean;
  /** Defaults to interactive. */
  priority?: Priority | PriorityName;
  /** Echoed in the response and the server's logs; the server makes one up when empty. */
  requestId?: string;
  /**
   * How the voice should sound and speak ("a warm, slow, elderly voice"), for servers whose
   * `supportsInstructions` is true (VoxCPM2); others refuse it.
   */
  instructions?: string;
  /** A recording with its transcript to continue from, next to a `reference` without one (VoxCPM2). */
  prompt?: Reference;
  /** Spell out numbers, dates, units... first; unset is the engine's default. */
  normalize?: boolean;
}

/** What `createVoice` accepts besides the name and the recording. */
export interface VoiceOptions extends CallOptions {
  description?: string;
  /** BCP-47 codes (en, zh); unset means every language the engine speaks. */
  languages?: string[];
  /** Default instructions, for engines that take them. */
  instructions?: string;
}

/** The request message of `Synthesize` (or, with `StreamSynthesizeRequestSchema`, of `StreamSynthesize`). */
export function buildRequest(schema: typeof SynthesizeRequestSchema, text: string, options?: SynthesisOptions): SynthesizeRequest;
export function buildRequest(
  schema: typeof StreamSynthesizeRequestSchema,
  text: string,
  options?: SynthesisOptions,
): StreamSynthesizeRequest;
export function buildRequest(
  schema: typeof SynthesizeRequestSchema | typeof StreamSynthesizeRequestSchema,
  text: string,
  options: SynthesisOptions = {},
): SynthesizeRequest | StreamSynthesizeRequest {
  const parameters = create(SynthesisParametersSchema);
  if (options.cfgValue !== undefined) parameters.cfgValue = checkNumber("cfgValue", options.cfgValue);
  if (options.inferenceSteps !== undefined) parameters.inferenceSteps = checkInteger("inferenceSteps", options.inferenceSteps, 1, INT32_MAX);
  if (options.temperature !== undefined) parameters.temperature = checkNumber("temperature", options.temperature);
  if (options.seed !== undefined) parameters.seed = checkSeed(options.seed);
  if (options.speakingRate !== undefined) parameters.speakingRate = checkNumber("speakingRate", options.speakingRate);
  if (options.retryBadcase !== undefined) {
    if (typeof options.retryBadcase !== "boolean") throw invalid(`retryBadcase must be true or false, not ${String(options.retryBadcase)}`);
    parameters.retryBadcase = options.retryBadcase;
  }
  if (typeof text !== "string") throw invalid(`text must be a string, not ${typeof text}`);
  const init = {
    text,
    voice: options.voice ?? "",
    encoding: parseEncoding(options.encoding ?? AudioEncoding.WAV),
    sampleRateHz: checkInteger("sampleRate", options.sampleRate ?? 0, 0, INT32_MAX, " of Hz"),
    parameters,
    priority: parsePriority(options.priority ?? Priority.INTERACTIVE),
    requestId: options.requestId ?? "",
    instructions: options.instructions ?? "",
    ...(options.reference === undefined ? {} : { reference: clip(options.reference) }),
    ...(options.prompt === undefined ? {} : { prompt: clip(options.prompt) }),
    ...(options.normalize === undefined ? {} : { normalize: options.normalize }),
  };
  return schema === SynthesizeRequestSchema ? create(SynthesizeRequestSchema, init) : create(StreamSynthesizeRequestSchema, init);
}

function clip(reference: Reference) {
  return create(ReferenceAudioSchema, { audio: reference.audio, transcript: reference.transcript ?? "" });
}

const INT32_MAX = 2 ** 31 - 1;
const UINT64_MAX = 2n ** 64n - 1n;

function checkInteger(name: string, value: unknown, low: number, high: number, unit = ""): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw invalid(`${name} must be a whole number${unit}, not ${String(value)}`);
  }
  if (value < low || value > high) throw invalid(`${name} must be between ${low} and ${high}, not ${value}`);
  return value;
}

function checkNumber(name: string, value: unknown): number {
  if (typeof value !== "number") throw invalid(`${name} must be a number, not ${JSON.stringify(value)}`);
  return value;
}

function checkSeed(value: unknown): bigint {
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw invalid(`seed must be a whole number (a bigint above 2^53), not ${value}`);
  }
  if (typeof value !== "number" && typeof value !== "bigint") throw invalid(`seed must be a whole number, not ${String(value)}`);
  const seed = BigInt(value);
  if (seed < 0n || seed > UINT64_MAX) throw invalid(`seed must be between 0 and ${UINT64_MAX}, not ${seed}`);
  return seed;
}
