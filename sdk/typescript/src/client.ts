// The client over any Connect transport: gRPC over HTTP/2 in Node.js (./node.ts), gRPC-Web in
// browsers (./web.ts). It mirrors the Python SDK's Client.

import { type Client as RpcClient, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import {
  CreateVoiceRequestSchema,
  DeleteVoiceRequestSchema,
  type GetServerInfoResponse,
  GetVoiceRequestSchema,
  type GetVoiceResponse,
  ReferenceAudioSchema,
  type Voice,
  GetServerInfoRequestSchema,
  type ListVoicesResponse,
  ListVoicesRequestSchema,
  StreamSynthesizeRequestSchema,
  SynthesizeRequestSchema,
  TtsService,
} from "./gen/voxbatch/tts/v1/tts_pb.js";
import { create } from "@bufbuild/protobuf";
import { audioFrom, type Chunk, chunkFrom, type SynthesizedAudio } from "./audio.js";
import { fromRpcError } from "./errors.js";
import { buildRequest, type CallOptions, type Reference, type SynthesisOptions, type VoiceOptions } from "./options.js";

/** The default deadline of every call, as in the Python SDK (300 s). */
export const DEFAULT_TIMEOUT_MS = 300_000;

export interface ClientOptions {
  /** Deadline of every call unless the call sets its own; 0 or less means none. Default 300 000. */
  timeoutMs?: number;
  /** Called by `close()`, to release the transport's connection. */
  onClose?: () => void;
  /**
   * API key of a server that requires one: sent as `authorization: Bearer <key>` with every call.
   * Read it from the environment (VOXBATCH_API_KEY) or a file, never from source code.
   */
  apiKey?: string;
}

/** The interceptors a transport needs for `options`: the API key's header, when there is one. */
export function interceptorsFor(options: { apiKey?: string }): Interceptor[] {
  const key = options.apiKey?.trim();
  if (!key) return [];
  return [
    (next) => async (request) => {
      request.header.set("authorization", `Bearer ${key}`);
      return await next(request);
    },
  ];
}

/**
 * Talks to a voxbatch server.
 *
 *     const tts = createClient("localhost:50051");   // from "@voxbatch/sdk/node"
 *     const audio = await tts.synthesize("Hello there.", { encoding: "mp3" });
 *     for await (const chunk of tts.stream("One. Two.")) console.log(chunk.sentenceIndex);
 *     tts.close();
 *
 * Failures throw `VoxbatchError` subclasses carrying the gRPC status.
 */
export class Client {
  /** The generated Connect client, for anything the methods below do not cover. */
  readonly rpc: RpcClient<typeof TtsService>;
  readonly timeoutMs: number;
  private readonly onClose: (() => void) | undefined;

  constructor(transport: Transport, options: ClientOptions = {}) {
    this.rpc = createClient(TtsService, transport);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.onClose = options.onClose;
  }

  /** Synthesizes the whole text; resolves to the encoded audio and what the server said about it. */
  async synthesize(text: string, options: SynthesisOptions = {}): Promise<SynthesizedAudio> {
    const request = buildRequest(SynthesizeRequestSchema, text, options);
    try {
      return audioFrom(await this.rpc.synthesize(request, this.callOptions(options)));
    } catch (error) {
      throw fromRpcError(error);
    }
  }

  /**
   * Streams the audio sentence by sentence, in order; the last chunk has `final` set.
   * Leaving the loop early (break, return, throw) or aborting `options.signal` cancels the call,
   * and the server drops the work still queued for it.
   */
  async *stream(text: string, options: SynthesisOptions = {}): AsyncGenerator<Chunk, void, undefined> {
    const request = buildRequest(StreamSynthesizeRequestSchema, text, options);
    const controller = new AbortController();
    const outer = options.signal;
    const forward = () => controller.abort(outer?.reason);
    if (outer?.aborted) forward();
    outer?.addEventListener("abort", forward, { once: true });
    const responses = this.rpc.streamSynthesize(request, { ...this.callOptions(options), signal: controller.signal });
    const iterator = responses[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done === true) break;
        yield chunkFrom(next.value);
      }
      finished = true;
    } catch (error) {
      finished = true;
      throw fromRpcError(error);
    } finally {
      outer?.removeEventListener("abort", forward);
      if (!finished) {
        // The loop was left early: cancel the call (the server drops its queued work), then read
        // to the end so that Connect settles the call and clears its deadline timer, which would
        // otherwise keep the process alive until the deadline.
        controller.abort();
        try {
          while (!(await iterator.next()).done);
        } catch {
          // the cancellation itself
        }
      }
    }
  }

  /** The voices of the server's engine, the default one first. */
  async voices(options: CallOptions = {}): Promise<ListVoicesResponse> {
    try {
      return await this.rpc.listVoices(create(ListVoicesRequestSchema), this.callOptions(options));
    } catch (error) {
      throw fromRpcError(error);
    }
  }

  /** Saves a cloned voice under `name`; afterwards `synthesize(text, { voice: name })` uses it. */
  async createVoice(name: string, reference: Reference, options: VoiceOptions = {}): Promise<Voice> {
    const request = create(CreateVoiceRequestSchema, {
      name,
      reference: create(ReferenceAudioSchema, reference),
      description: options.description ?? "",
      languages: options.languages ?? [],
      instructions: options.instructions ?? "",
    });
    try {
      const response = await this.rpc.createVoice(request, this.callOptions(options));
      if (response.voice === undefined) throw new Error("CreateVoice answered no voice");
      return response.voice;
    } catch (error) {
      throw fromRpcError(error);
    }
  }

  /** One voice; with `includeAudio`, a saved voice's reference clip too. */
  async getVoice(name: string, options: CallOptions & { includeAudio?: boolean } = {}): Promise<GetVoiceResponse> {
    const request = create(GetVoiceRequestSchema, { name, includeAudio: options.includeAudio ?? false });
    try {
      return await this.rpc.getVoice(request, this.callOptions(options));
    } catch (error) {
      throw fromRpcError(error);
    }
  }

  /** Deletes a saved voice; work already queued with it still finishes. */
  async deleteVoice(name: string, options: CallOptions = {}): Promise<void> {
    try {
      await this.rpc.deleteVoice(create(DeleteVoiceRequestSchema, { name }), this.callOptions(options));
    } catch (error) {
      throw fromRpcError(error);
    }
  }

  /** Engine, parameters, batching settings, queue depth and recent batches and requests. */
  async serverInfo(options: CallOptions = {}): Promise<GetServerInfoResponse> {
    try {
      return await this.rpc.getServerInfo(create(GetServerInfoRequestSchema), this.callOptions(options));
    } catch (error) {
      throw fromRpcError(error);
    }
  }

  /** Closes the connection; calls still running are cancelled. */
  close(): void {
    this.onClose?.();
  }

  private callOptions(options: CallOptions): { timeoutMs: number; signal?: AbortSignal } {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return options.signal === undefined ? { timeoutMs } : { timeoutMs, signal: options.signal };
  }
}
