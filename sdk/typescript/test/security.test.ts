// API keys and TLS from the Node SDK, against a real server whose keys file and certificates are
// made for this file (certificates by the Python tests' helper, with the `cryptography` library).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { AuthenticationError, createClient, OverloadedError, PermissionDeniedError, VoxbatchError } from "../src/node.js";
import { REPO_ROOT, type RunningServer, startServer } from "./server.js";

const run = promisify(execFile);
const python = process.env["VOXBATCH_PYTHON"] ?? join(REPO_ROOT, ".venv/bin/python");

let dir: string;
let server: RunningServer;
let ca: string;
let otherCa: string;
let synthKey: string;
let readOnlyKey: string;
let meteredKey: string;

async function createKey(file: string, capability: string, ...limits: string[]): Promise<string> {
  const { stdout } = await run(python, ["-m", "voxbatch.cli", "keys", "create", "--name", capability,
    "--capability", capability, ...limits, "--file", file], { cwd: REPO_ROOT });
  return stdout.trim().split("\n").at(-1) ?? "";
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "voxbatch-ts-security-"));
  await run(python, ["-c", "import sys; from pathlib import Path; from tests.support.security import make_pki; make_pki(Path(sys.argv[1]))", dir],
    { cwd: REPO_ROOT });
  const keys = join(dir, "keys.json");
  synthKey = await createKey(keys, "synthesize");
  readOnlyKey = await createKey(keys, "manage-voices");
  meteredKey = await createKey(keys, "synthesize", "--per-minute", "1");
  ca = await readFile(join(dir, "ca.pem"), "utf8");
  otherCa = await readFile(join(dir, "other-ca.pem"), "utf8");
  server = await startServer(
    { VOXBATCH_API_KEYS_FILE: keys, VOXBATCH_TLS_CERT: join(dir, "server.pem"), VOXBATCH_TLS_KEY: join(dir, "server-key.pem") },
    { https: true, ca },
  );
});

after(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

test("an https target with the CA and a key synthesizes", async () => {
  assert.match(server.target, /^https:\/\//);
  const tts = createClient(server.target, { ca, apiKey: synthKey, timeoutMs: 30_000 });
  try {
    const audio = await tts.synthesize("Hello over TLS.");
    assert.ok(audio.durationSeconds > 0);
  } finally {
    tts.close();
  }
});

test("no key, a wrong key, or a key without the capability is refused", async () => {
  for (const apiKey of [undefined, synthKey.slice(0, -4) + "AAAA"]) {
    const tts = createClient(server.target, { ca, timeoutMs: 10_000, ...(apiKey ? { apiKey } : {}) });
    try {
      await assert.rejects(tts.voices(), AuthenticationError);
    } finally {
      tts.close();
    }
  }
  const reader = createClient(server.target, { ca, apiKey: readOnlyKey, timeoutMs: 10_000 });
  try {
    assert.ok((await reader.voices()).voices.length > 0);
    await assert.rejects(reader.synthesize("Hello."), PermissionDeniedError);
  } finally {
    reader.close();
  }
});

test("a server certificate from an untrusted CA, or plaintext, gets nothing", async () => {
  const port = server.target.split(":").at(-1) ?? "";
  const untrusted = createClient(server.target, { ca: otherCa, apiKey: synthKey, timeoutMs: 5_000 });
  const plaintext = createClient(`127.0.0.1:${port}`, { apiKey: synthKey, timeoutMs: 5_000 });
  try {
    // Connect reports a failed certificate check as INTERNAL, naming it.
    await assert.rejects(untrusted.voices(), /unable to verify the first certificate/);
    // Plaintext HTTP/2 against the TLS port fails at the transport, before any key is looked at.
    await assert.rejects(plaintext.voices(), (error: unknown) => error instanceof VoxbatchError && !(error instanceof AuthenticationError));
  } finally {
    untrusted.close();
    plaintext.close();
  }
});

test("a refused quota says when to retry", async () => {
  const tts = createClient(server.target, { ca, apiKey: meteredKey, timeoutMs: 30_000 });
  try {
    await tts.synthesize("Once.");
    const error = await tts.synthesize("Twice.").then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof OverloadedError, String(error));
    assert.match(error.details, /1 requests per minute/);
    assert.ok(error.retryAfterMs !== undefined && error.retryAfterMs > 0 && error.retryAfterMs <= 60_000, String(error.retryAfterMs));
  } finally {
    tts.close();
  }
});
