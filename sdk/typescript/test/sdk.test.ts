// The SDK against a real voxbatch server on a loopback port (started once for this file).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test, type TestContext } from "node:test";
import { promisify } from "node:util";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  CancelledError,
  type Chunk,
  type Client,
  Code,
  DeadlineExceededError,
  FailedPreconditionError,
  Encoding,
  InvalidRequestError,
  NotFoundError,
  joinChunks,
  pb,
} from "../src/node.js";
import { createClient as createWebClient } from "../src/web.js";
import { clientFor, PACKAGE_ROOT, REPO_ROOT, type RunningServer, startServer } from "./server.js";
import { parseWav, rms } from "./wav.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// One sentence per batch, so the number of batches run counts the sentences synthesized; no cache,
// so every request really runs the engine.
let server: RunningServer;
let tts: Client;

before(async () => {
  // One sentence per work item (work items of up to 20 characters), so tests can count sentences.
  server = await startServer({
    VOXBATCH_MAX_BATCH_SIZE: "1", VOXBATCH_CACHE_MB: "0", VOXBATCH_WORK_ITEM_CHARS: "20", VOXBATCH_MAX_TEXT_CHARS: "2000",
  });
  tts = clientFor(server);
});

after(async () => {
  tts?.close();
  if (server !== undefined) {
    const code = await server.stop();
    assert.equal(code, 0, `the server did not stop cleanly:\n${server.log()}`);
  }
});

const WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];

/** A text of `n` short sentences. */
function sentences(n: number): string {
  return Array.from({ length: n }, (_, i) => `This is sentence ${WORDS[i % 10]} of part ${WORDS[Math.floor(i / 10) % 10]}.`).join(" ");
}

/** Waits until the server's queue is empty and no batch runs, then returns its info. */
async function idleInfo(): Promise<pb.GetServerInfoResponse> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const info = await tts.serverInfo();
    if (info.queueDepth === 0 && info.runningBatches === 0) return info;
    assert.ok(Date.now() < deadline, `the queue did not drain: depth ${info.queueDepth}, running ${info.runningBatches}`);
    await sleep(50);
  }
}

describe("unary synthesis", () => {
  test("returns WAV audio that decodes, with its metadata", async () => {
    const audio = await tts.synthesize("Hello from the TypeScript SDK.", { requestId: "ts-unary-1" });
    assert.equal(audio.encoding, Encoding.WAV);
    assert.equal(audio.requestId, "ts-unary-1");
    assert.equal(audio.sampleRate, 22050);
    const wav = parseWav(audio.data);
    assert.deepEqual([wav.format, wav.channels, wav.bitsPerSample, wav.sampleRate], [1, 1, 16, audio.sampleRate]);
    assert.equal(wav.declaredDataBytes, wav.samples.length * 2);
    assert.ok(Math.abs(wav.samples.length / wav.sampleRate - audio.durationSeconds) < 0.01);
    assert.ok(audio.durationSeconds > 1 && audio.durationSeconds < 5, `duration ${audio.durationSeconds}`);
    assert.ok(rms(wav.samples) > 0.01, "the audio is silent");
    assert.equal(audio.timings.batchSize, 1);
    assert.equal(audio.timings.cacheHit, false);
    assert.ok(audio.timings.computeSeconds > 0 && audio.timings.totalSeconds >= audio.timings.computeSeconds);
    assert.equal(audio.lengthCapped, false);
  });

  test("honours encoding and sample rate", async () => {
    const wav = parseWav((await tts.synthesize("Resampled.", { sampleRate: 16000 })).data);
    assert.equal(wav.sampleRate, 16000);
    const mp3 = await tts.synthesize("Compressed.", { encoding: "mp3", sampleRate: 44100 });
    assert.equal(mp3.encoding, Encoding.MP3);
    const [b0, b1, b2] = mp3.data;
    const id3 = b0 === 0x49 && b1 === 0x44 && b2 === 0x33;
    assert.ok(id3 || (b0 === 0xff && ((b1 ?? 0) & 0xe0) === 0xe0), "not an MP3 stream");
  });

  test("passes a deadline to the server and reports DEADLINE_EXCEEDED", async () => {
    const error = await tts.synthesize(sentences(20), { timeoutMs: 50 }).then(
      () => assert.fail("no deadline error"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof DeadlineExceededError, String(error));
    assert.equal(error.code, Code.DeadlineExceeded);
    assert.equal(error.status, "DEADLINE_EXCEEDED");
    await idleInfo();
  });
});

describe("streaming", () => {
  test("yields ordered chunks that end with the final one and join into one WAV", async () => {
    const text = "The first sentence is short. The second one is a little longer than that. Third! And the fourth?";
    const chunks: Chunk[] = [];
    for await (const chunk of tts.stream(text, { requestId: "ts-stream-1" })) chunks.push(chunk);
    assert.ok(chunks.length >= 4, `${chunks.length} chunks`);
    chunks.forEach((chunk, i) => {
      assert.equal(chunk.sequence, i);
      assert.equal(chunk.sentenceCount, 4);
      assert.equal(chunk.final, i === chunks.length - 1);
      assert.equal(chunk.requestId, "ts-stream-1");
      assert.equal(chunk.encoding, Encoding.WAV);
      if (i > 0) {
        const previous = chunks[i - 1]!;
        assert.ok(chunk.sentenceIndex >= previous.sentenceIndex);
        assert.ok(Math.abs(chunk.audioOffsetSeconds - (previous.audioOffsetSeconds + previous.durationSeconds)) < 1e-6);
      }
    });
    const spoken = [...new Set(chunks.map((c) => text.slice(c.textStart, c.textEnd)))];
    assert.deepEqual(spoken, ["The first sentence is short.", "The second one is a little longer than that.", "Third!", "And the fourth?"]);
    assert.deepEqual([...new Set(chunks.map((c) => c.sentenceIndex))], [0, 1, 2, 3]);

    const whole = joinChunks(chunks);
    const wav = parseWav(whole.data);
    assert.equal(wav.declaredDataBytes, 0xffffffff, "a stream's WAV header has an unknown length");
    assert.equal(wav.sampleRate, whole.sampleRate);
    assert.ok(Math.abs(wav.samples.length / wav.sampleRate - whole.durationSeconds) < 0.01);
    assert.ok(rms(wav.samples) > 0.01);
  });
});

describe("errors", () => {
  test("a bad request surfaces INVALID_ARGUMENT with the server's message", async () => {
    await assert.rejects(tts.synthesize("   "), (error: unknown) => {
      assert.ok(error instanceof InvalidRequestError, String(error));
      assert.equal(error.code, Code.InvalidArgument);
      assert.equal(error.status, "INVALID_ARGUMENT");
      assert.match(error.details, /empty/);
      assert.equal(error.message, `INVALID_ARGUMENT: ${error.details}`);
      return true;
    });
  });

  test("a stream's bad request fails the loop with the same typed error", async () => {
    const iterate = async () => {
      for await (const _ of tts.stream("Hello.", { voice: "nobody" })) assert.fail("no chunk expected");
    };
    await assert.rejects(iterate, (error: unknown) => {
      assert.ok(error instanceof InvalidRequestError, String(error));
      assert.match(error.details, /unknown voice 'nobody'; this server has: joe/);
      return true;
    });
  });

  test("options are checked before any call", async () => {
    await assert.rejects(tts.synthesize("Hi.", { encoding: "aiff" as "wav" }), InvalidRequestError);
  });
});

describe("cancellation", () => {
  const SENTENCES = 30;

  /** Streams a long text, stops after the first chunk with `stop`, and checks the server dropped the rest. */
  async function stopsServerWork(t: TestContext, stop: "abort" | "break"): Promise<void> {
    const batchesBefore = (await idleInfo()).recentBatches.length;
    const controller = new AbortController();
    let chunks = 0;
    let queuedAtFirstChunk = 0;
    const iterate = async () => {
      for await (const chunk of tts.stream(sentences(SENTENCES), { signal: controller.signal })) {
        chunks += 1;
        assert.equal(chunk.sentenceIndex, 0);
        queuedAtFirstChunk = (await tts.serverInfo()).queueDepth;
        if (stop === "abort") controller.abort();
        else break;
      }
    };
    if (stop === "abort") {
      await assert.rejects(iterate, (error: unknown) => {
        assert.ok(error instanceof CancelledError, String(error));
        assert.equal(error.code, Code.Canceled);
        return true;
      });
    } else {
      await iterate();
    }
    assert.equal(chunks, 1);
    assert.ok(queuedAtFirstChunk >= SENTENCES - 10, `only ${queuedAtFirstChunk} sentences were queued`);
    const drained = await idleInfo();
    await sleep(300); // nothing left to start: the batch count stays put
    const later = await idleInfo();
    assert.equal(later.recentBatches.length, drained.recentBatches.length);
    const ran = later.recentBatches.length - batchesBefore;
    t.diagnostic(`${queuedAtFirstChunk} sentences queued at the first chunk; ${ran} batches ran for ${SENTENCES} sentences`);
    assert.ok(ran >= 1 && ran <= 8, `${ran} batches ran for ${SENTENCES} sentences after the stream was stopped`);
  }

  test("aborting the signal cancels the stream and the server drops its queued work", (t) => stopsServerWork(t, "abort"));

  test("leaving the loop early cancels the stream too", (t) => stopsServerWork(t, "break"));

  test("aborting a unary call cancels it and the server drops its queued work", async (t) => {
    const batchesBefore = (await idleInfo()).recentBatches.length;
    const controller = new AbortController();
    const call = tts.synthesize(sentences(SENTENCES), { signal: controller.signal });
    await sleep(150);
    controller.abort();
    await assert.rejects(call, CancelledError);
    const ran = (await idleInfo()).recentBatches.length - batchesBefore;
    t.diagnostic(`${ran} batches ran for ${SENTENCES} sentences`);
    assert.ok(ran <= 8, `${ran} batches ran for ${SENTENCES} sentences after the call was aborted`);
  });

  test("a stream left early does not keep the process alive until its deadline", async () => {
    // Connect clears a call's deadline timer only when the call settles; the client settles it.
    const node = new URL("../src/node.js", import.meta.url).href;
    const script = `
      import { createClient } from ${JSON.stringify(node)};
      const tts = createClient(${JSON.stringify(server.target)});
      for await (const chunk of tts.stream("One. Two. Three.")) break;
      const controller = new AbortController();
      try {
        for await (const chunk of tts.stream("Four. Five. Six.", { signal: controller.signal })) controller.abort();
      } catch (error) {
        console.log(error.status);
      }
      tts.close();`;
    const started = Date.now();
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { timeout: 20_000 });
    assert.equal(stdout.trim(), "CANCELLED");
    assert.ok(Date.now() - started < 10_000, `the process took ${Date.now() - started} ms to exit`);
  });
});

describe("other calls", () => {
  test("voices and server info", async () => {
    const voices = await tts.voices();
    assert.ok(voices.voices.some((v) => v.name === voices.defaultVoice));
    assert.match(voices.defaultVoice, /joe/);
    const info = await tts.serverInfo();
    assert.equal(info.engine, "piper");
    assert.equal(info.batching?.maxBatchSize, 1);
    assert.ok(info.encodings.includes(Encoding.OGG_OPUS));
  });

  test("saved voices: Piper cannot save any, unknown names are NOT_FOUND", async () => {
    const voices = await tts.voices();
    assert.deepEqual(voices.voices[0]?.languages, ["en"]);
    await assert.rejects(tts.createVoice("anna", { audio: new Uint8Array(16), transcript: "words" }), (error: unknown) => {
      assert.ok(error instanceof FailedPreconditionError);
      assert.match(error.details, /cannot clone/);
      return true;
    });
    await assert.rejects(tts.getVoice("nobody"), NotFoundError);
    await assert.rejects(tts.deleteVoice("nobody"), NotFoundError);
    const joe = await tts.getVoice("joe");
    assert.equal(joe.voice?.name, "joe");
  });
});

describe("gRPC-Web", () => {
  // Browsers speak gRPC-Web to a proxy (Envoy in production). Here a small Node proxy translates
  // gRPC-Web into gRPC for the server, so the web client's transport runs for real.
  let proxy: Server;
  let upstream: Client;
  let baseUrl: string;

  before(async () => {
    upstream = clientFor(server);
    // Like Envoy, forward every method of the contract as it is.
    type Forward = (request: unknown, context: HandlerContext) => unknown;
    const rpc = upstream.rpc as unknown as Record<string, (request: unknown, options: { signal: AbortSignal }) => unknown>;
    const forward: Record<string, Forward> = {};
    for (const method of pb.TtsService.methods) {
      const call = rpc[method.localName];
      assert.ok(call !== undefined && (method.methodKind === "unary" || method.methodKind === "server_streaming"));
      forward[method.localName] = (request, context) => call(request, { signal: context.signal });
    }
    const adapter = connectNodeAdapter({
      grpcWeb: true,
      grpc: false,
      connect: false,
      routes: (router) => router.service(pb.TtsService, forward as Partial<ServiceImpl<typeof pb.TtsService>>),
    });
    proxy = createServer(adapter).listen(0, "127.0.0.1");
    await new Promise((resolve) => proxy.once("listening", resolve));
    const address = proxy.address();
    assert.ok(address !== null && typeof address === "object");
    baseUrl = `http://127.0.0.1:${address.port}`;
  });

  after(async () => {
    upstream?.close();
    proxy?.closeAllConnections();
    await new Promise((resolve) => proxy?.close(resolve));
  });

  test("the web client synthesizes, streams and reports errors through the proxy", async () => {
    const web = createWebClient(baseUrl, { timeoutMs: 60_000 });
    const audio = await web.synthesize("Hello from a browser.");
    assert.equal(parseWav(audio.data).sampleRate, audio.sampleRate);
    const chunks: Chunk[] = [];
    for await (const chunk of web.stream("One. Two.")) chunks.push(chunk);
    assert.deepEqual([...new Set(chunks.map((c) => c.sentenceIndex))], [0, 1]);
    assert.equal(chunks.at(-1)?.final, true);
    await assert.rejects(web.synthesize(""), (error: unknown) => {
      assert.ok(error instanceof InvalidRequestError, String(error));
      assert.match(error.details, /empty/);
      return true;
    });
  });
});

describe("README", () => {
  test("the Node example runs as written", async () => {
    const readme = await readFile(join(REPO_ROOT, "README.md"), "utf8");
    const section = readme.split("\n## TypeScript SDK\n")[1]?.split("\n## ")[0] ?? "";
    const example = /```js\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(example !== undefined, "no ```js block in the README's TypeScript SDK section");
    assert.ok(example.trim().split("\n").length <= 10, "the example is longer than ten lines");
    assert.ok(example.includes('"localhost:50051"'));
    // A project that installed the SDK from this folder, as the README says.
    const project = await mkdtemp(join(tmpdir(), "voxbatch-readme-"));
    try {
      await mkdir(join(project, "node_modules", "@voxbatch"), { recursive: true });
      await symlink(PACKAGE_ROOT, join(project, "node_modules", "@voxbatch", "sdk"), "dir");
      await writeFile(join(project, "package.json"), JSON.stringify({ type: "module" }));
      const port = server.target.split(":")[1]!;
      await writeFile(join(project, "hello.mjs"), example.replace('"localhost:50051"', `"localhost:${port}"`));
      const { stdout } = await run(process.execPath, ["hello.mjs"], { cwd: project, timeout: 60_000 });
      const lines = stdout.trim().split("\n");
      assert.equal(lines.length, 3, stdout);
      assert.match(lines[1]!, /^0 0 15 \d+ false$/);
      assert.match(lines[2]!, /^1 16 32 \d+ true$/);
      const mp3 = await readFile(join(project, "hello.mp3"));
      assert.ok(mp3.length > 1000);
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  });
});
