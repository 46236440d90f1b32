// Audio returned by the client (the Python SDK's audio.py).

import {
  AudioEncoding,
  type StreamSynthesizeResponse,
  type SynthesisTimings,
  type SynthesizeResponse,
} from "./gen/voxbatch/tts/v1/tts_pb.js";

/** How a request (or a stream's sentence) was served. */
export interface Timings {
  /** Seconds its work waited in the queue before its first batch started. */
  readonly queueWaitSeconds: number;
  /** Largest batch any part of it ran in. */
  readonly batchSize: number;
  /** Seconds of engine compute for the batches it ran in. */
  readonly computeSeconds: number;
  /** Seconds from receiving the request to finishing it. */
  readonly totalSeconds: number;
  /** True when the audio came from the result cache and no engine ran. */
  readonly cacheHit: boolean;
}

/** Encoded audio with what the server said about it. */
export interface Audio {
  /** The encoded file (or raw PCM for `Encoding.PCM_S16LE`). */
  readonly data: Uint8Array;
  readonly encoding: AudioEncoding;
  /** Sample rate of `data` in Hz. */
  readonly sampleRate: number;
  readonly durationSeconds: number;
  readonly requestId: string;
  /** How the request was served; absent on the Audio that `joinChunks` makes (see each chunk's). */
  readonly timings?: Timings;
  /** True when the engine's length cap cut some part of the text short. */
  readonly lengthCapped: boolean;
}

/** What `synthesize` resolves to: Audio whose timings are always there. */
export interface SynthesizedAudio extends Audio {
  readonly timings: Timings;
}

/** One piece of a stream; joining every chunk's `data` gives one file. */
export interface Chunk {
  readonly data: Uint8Array;
  /** Position of the chunk in the stream, from 0. */
  readonly sequence: number;
  /** Index of the sentence this chunk speaks, from 0. */
  readonly sentenceIndex: number;
  /** Number of sentences the text was split into. */
  readonly sentenceCount: number;
  /** Start of the sentence in the request text, in Unicode code points. */
  readonly textStart: number;
  /** End (exclusive) of the sentence in the request text, in Unicode code points. */
  readonly textEnd: number;
  /** Where this chunk starts in the whole audio, in seconds. */
  readonly audioOffsetSeconds: number;
  readonly durationSeconds: number;
  /** True on the last chunk of the stream. */
  readonly final: boolean;
  readonly encoding: AudioEncoding;
  readonly sampleRate: number;
  readonly requestId: string;
  readonly timings: Timings;
  readonly lengthCapped: boolean;
}

function encodingOf(value: AudioEncoding): AudioEncoding {
  return value === AudioEncoding.UNSPECIFIED ? AudioEncoding.WAV : value;
}

export function timingsFrom(t: SynthesisTimings | undefined): Timings {
  return {
    queueWaitSeconds: t?.queueWaitSeconds ?? 0,
    batchSize: t?.batchSize ?? 0,
    computeSeconds: t?.computeSeconds ?? 0,
    totalSeconds: t?.totalSeconds ?? 0,
    cacheHit: t?.cacheHit ?? false,
  };
}

export function audioFrom(r: SynthesizeResponse): SynthesizedAudio {
  return {
    data: r.audio,
    encoding: encodingOf(r.encoding),
    sampleRate: r.sampleRateHz,
    durationSeconds: r.durationSeconds,
    requestId: r.requestId,
    timings: timingsFrom(r.timings),
    lengthCapped: r.lengthCapped,
  };
}

export function chunkFrom(r: StreamSynthesizeResponse): Chunk {
  return {
    data: r.audio,
    sequence: r.sequence,
    sentenceIndex: r.sentenceIndex,
    sentenceCount: r.sentenceCount,
    textStart: r.textStart,
    textEnd: r.textEnd,
    audioOffsetSeconds: r.audioOffsetSeconds,
    durationSeconds: r.durationSeconds,
    final: r.final,
    encoding: encodingOf(r.encoding),
    sampleRate: r.sampleRateHz,
    requestId: r.requestId,
    timings: timingsFrom(r.timings),
    lengthCapped: r.lengthCapped,
  };
}

/** The whole stream as one Audio. */
export function joinChunks(chunks: readonly Chunk[]): Audio {
  const last = chunks[chunks.length - 1];
  if (last === undefined) throw new RangeError("no chunks to join");
  const data = new Uint8Array(chunks.reduce((n, c) => n + c.data.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk.data, offset);
    offset += chunk.data.length;
  }
  return {
    data,
    encoding: last.encoding,
    sampleRate: last.sampleRate,
    durationSeconds: chunks.reduce((s, c) => s + c.durationSeconds, 0),
    requestId: last.requestId,
    lengthCapped: chunks.some((c) => c.lengthCapped),
  };
}
