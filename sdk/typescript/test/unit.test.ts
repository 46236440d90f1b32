// The hand-written layer's pure parts: options, error mapping, joining chunks.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ConnectError } from "@connectrpc/connect";
import {
  baseUrlOf,
  buildRequest,
  type Chunk,
  Code,
  Encoding,
  fromRpcError,
  InvalidRequestError,
  joinChunks,
  OverloadedError,
  parseEncoding,
  pb,
  Priority,
  ServerError,
  UnavailableError,
} from "../src/node.js";

test("targets become base URLs", () => {
  assert.equal(baseUrlOf("localhost:50051"), "http://localhost:50051");
  assert.equal(baseUrlOf("https://tts.example.com:443"), "https://tts.example.com:443");
});

test("encodings by value or name", () => {
  assert.equal(parseEncoding("MP3"), Encoding.MP3);
  assert.equal(parseEncoding("ogg"), Encoding.OGG_OPUS);
  assert.equal(parseEncoding("raw"), Encoding.PCM_S16LE);
  assert.equal(parseEncoding(Encoding.UNSPECIFIED), Encoding.WAV);
  assert.throws(() => parseEncoding("aiff"), /unknown encoding "aiff"; use one of wav, flac, ogg_opus, mp3, pcm_s16le/);
  assert.throws(() => parseEncoding(42 as Encoding), InvalidRequestError);
});

test("bad arguments throw InvalidRequestError with a clear message before any call", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ seed: -1 }, /seed must be between 0 and 18446744073709551615, not -1/],
    [{ seed: 1.5 }, /seed must be a whole number/],
    [{ seed: 2n ** 64n }, /seed must be between 0 and/],
    [{ encoding: "aac" }, /unknown encoding "aac"; use one of wav, flac, ogg_opus, mp3, pcm_s16le/],
    [{ sampleRate: 44100.5 }, /sampleRate must be a whole number of Hz, not 44100.5/],
    [{ sampleRate: -8000 }, /sampleRate must be between 0 and/],
    [{ inferenceSteps: 0 }, /inferenceSteps must be between 1 and/],
    [{ temperature: "hot" }, /temperature must be a number, not "hot"/],
    [{ priority: "urgent" }, /unknown priority "urgent"/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => buildRequest(pb.SynthesizeRequestSchema, "Hi.", options as never), (error: unknown) => {
      assert.ok(error instanceof InvalidRequestError, String(error));
      assert.equal(error.status, "INVALID_ARGUMENT");
      assert.match(error.details, message);
      return true;
    });
  }
  assert.equal(buildRequest(pb.SynthesizeRequestSchema, "Hi.", { seed: 2n ** 64n - 1n }).parameters?.seed, 2n ** 64n - 1n);
});

test("requests carry every option, and only the parameters given", () => {
  const request = buildRequest(pb.StreamSynthesizeRequestSchema, "Hi.", {
    voice: "joe",
    encoding: "flac",
    sampleRate: 16000,
    speakingRate: 1.5,
    seed: 7,
    priority: "background",
    requestId: "r1",
    reference: { audio: new Uint8Array([1, 2]), transcript: "hm" },
  });
  assert.equal(request.$typeName, "voxbatch.tts.v1.StreamSynthesizeRequest");
  assert.equal(request.encoding, Encoding.FLAC);
  assert.equal(request.sampleRateHz, 16000);
  assert.equal(request.priority, Priority.BACKGROUND);
  assert.equal(request.parameters?.speakingRate, 1.5);
  assert.equal(request.parameters?.seed, 7n);
  assert.equal(request.parameters?.temperature, undefined);
  assert.equal(request.reference?.transcript, "hm");
  const plain = buildRequest(pb.SynthesizeRequestSchema, "Hi.");
  assert.equal(plain.encoding, Encoding.WAV);
  assert.equal(plain.priority, Priority.INTERACTIVE);
  assert.equal(plain.reference, undefined);
  assert.equal(plain.instructions, "");
});

test("voice design and isolated cloning: instructions, a reference without transcript, a prompt", () => {
  const request = buildRequest(pb.SynthesizeRequestSchema, "Hi.", {
    instructions: "a warm, slow voice",
    reference: { audio: new Uint8Array([1, 2]) },
    prompt: { audio: new Uint8Array([3]), transcript: "A tone." },
  });
  assert.equal(request.instructions, "a warm, slow voice");
  assert.equal(request.reference?.transcript, "");
  assert.deepEqual(Array.from(request.prompt?.audio ?? []), [3]);
  assert.equal(request.prompt?.transcript, "A tone.");
});

test("errors map to typed errors with the gRPC status", () => {
  const invalid = fromRpcError(new ConnectError("text is empty", Code.InvalidArgument));
  assert.ok(invalid instanceof InvalidRequestError);
  assert.equal(invalid.name, "InvalidRequestError");
  assert.equal(invalid.message, "INVALID_ARGUMENT: text is empty");
  assert.ok(fromRpcError(new ConnectError("full", Code.ResourceExhausted)) instanceof OverloadedError);
  assert.ok(fromRpcError(new ConnectError("down", Code.Unavailable)) instanceof UnavailableError);
  const internal = fromRpcError(new ConnectError("", Code.Internal));
  assert.ok(internal instanceof ServerError);
  assert.equal(internal.details, "INTERNAL");
  assert.equal(fromRpcError(new TypeError("boom")).status, "UNKNOWN");
});

test("joined chunks are one audio", () => {
  const chunk = (data: number[], final: boolean): Chunk => ({
    data: new Uint8Array(data), sequence: 0, sentenceIndex: 0, sentenceCount: 1, textStart: 0, textEnd: 1,
    audioOffsetSeconds: 0, durationSeconds: 0.5, final, encoding: Encoding.PCM_S16LE, sampleRate: 8000,
    requestId: "r", lengthCapped: final,
    timings: { queueWaitSeconds: 0, batchSize: 1, computeSeconds: 0, totalSeconds: 0, cacheHit: false },
  });
  const audio = joinChunks([chunk([1, 2], false), chunk([3], true)]);
  assert.deepEqual([...audio.data], [1, 2, 3]);
  assert.equal(audio.durationSeconds, 1);
  assert.equal(audio.lengthCapped, true);
  assert.throws(() => joinChunks([]), RangeError);
});
