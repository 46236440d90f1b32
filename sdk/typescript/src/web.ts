// Browser entry point: gRPC-Web over fetch, through a proxy that translates it to gRPC (Envoy's
// envoy.filters.http.grpc_web filter in front of the server).

import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { Client, type ClientOptions, interceptorsFor } from "./client.js";

export * from "./index.js";

export interface WebClientOptions extends Omit<ClientOptions, "onClose"> {}

/** A client speaking gRPC-Web to `baseUrl`, such as "https://tts.example.com" (the proxy). */
export function createClient(baseUrl: string, options: WebClientOptions = {}): Client {
  const transport = createGrpcWebTransport({ baseUrl, useBinaryFormat: true, interceptors: interceptorsFor(options) });
  return new Client(transport, options);
}
