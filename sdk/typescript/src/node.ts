// Node.js entry point: gRPC over HTTP/2, straight to the server (no proxy).

import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Client, type ClientOptions, interceptorsFor } from "./client.js";

export * from "./index.js";

/** Same limits as the Python SDK's channel: 256 MiB answers, 32 MiB requests. */
const READ_MAX_BYTES = 256 << 20;
const WRITE_MAX_BYTES = 32 << 20;

export interface NodeClientOptions extends Omit<ClientOptions, "onClose"> {
  /** CA certificate(s), PEM, that signed the server's certificate (for an https:// target). */
  ca?: string | Buffer;
  /** Client certificate and its private key, PEM, for servers that require mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** "localhost:50051" -> "http://localhost:50051"; a URL with a scheme (https: for TLS) is kept. */
export function baseUrlOf(target: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(target) ? target : `http://${target}`;
}

/**
 * A client speaking gRPC to `target` ("host:port", or "https://host:port" for TLS).
 * Call `close()` when done, to close its HTTP/2 connection.
 */
export function createClient(target = "localhost:50051", options: NodeClientOptions = {}): Client {
  const baseUrl = baseUrlOf(target);
  const { ca, cert, key, ...common } = options;
  const tls = Object.fromEntries(Object.entries({ ca, cert, key }).filter(([, value]) => value !== undefined));
  const sessionManager = new Http2SessionManager(baseUrl, undefined, tls);
  const transport = createGrpcTransport({
    baseUrl,
    sessionManager,
    readMaxBytes: READ_MAX_BYTES,
    writeMaxBytes: WRITE_MAX_BYTES,
    interceptors: interceptorsFor(common),
  });
  return new Client(transport, { ...common, onClose: () => sessionManager.abort() });
}
