// Starts a real voxbatch server (the Python one, from the repository's .venv) on a free loopback
// port for the tests, and stops it.

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { AuthenticationError, type Client, createClient } from "../src/node.js";

/** The repository root (this file runs as dist/test/server.js under sdk/typescript). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
export const PACKAGE_ROOT = resolve(REPO_ROOT, "sdk/typescript");

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

export interface RunningServer {
  target: string;
  process: ChildProcess;
  /** Everything the server logged so far (shown when a test fails). */
  log(): string;
  stop(): Promise<number | null>;
}

/**
 * `python -m voxbatch.cli serve --host 127.0.0.1` with VOXBATCH_PORT set, after which it waits
 * until GetServerInfo answers. VOXBATCH_PYTHON overrides the interpreter (default: ../../.venv).
 */
export async function startServer(
  env: Record<string, string> = {},
  connect: { https?: boolean; ca?: string } = {},
): Promise<RunningServer> {
  const python = process.env["VOXBATCH_PYTHON"] ?? resolve(REPO_ROOT, ".venv/bin/python");
  const port = await freePort();
  const child = spawn(python, ["-m", "voxbatch.cli", "serve", "--host", "127.0.0.1"], {
    cwd: REPO_ROOT,
    env: { ...process.env, VOXBATCH_PORT: String(port), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.setEncoding("utf8").on("data", (text: string) => (output += text));
  child.stderr?.setEncoding("utf8").on("data", (text: string) => (output += text));
  const exited = once(child, "exit");
  const running: RunningServer = {
    target: connect.https ? `https://localhost:${port}` : `127.0.0.1:${port}`,
    process: child,
    log: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        await exited;
        clearTimeout(timer);
      }
      return child.exitCode;
    },
  };
  const client = createClient(running.target, { timeoutMs: 2_000, ...(connect.ca ? { ca: connect.ca } : {}) });
  const deadline = Date.now() + 90_000;
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`server did not start in 90 s:\n${output}`);
      try {
        await client.serverInfo();
        return running;
      } catch (error) {
        if (error instanceof AuthenticationError) return running; // up, and asking for a key
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } catch (error) {
    await running.stop();
    throw error;
  } finally {
    client.close();
  }
}

/** A client for `server`, closed by the caller. */
export function clientFor(server: RunningServer, timeoutMs = 60_000): Client {
  return createClient(server.target, { timeoutMs });
}
