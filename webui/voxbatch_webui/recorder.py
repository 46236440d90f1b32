"""Recording a voice from the microphone, in the browser.

The browser records with the Web Audio API (not MediaRecorder, whose WebM the server cannot
decode), resamples to 16 kHz mono, writes a 16-bit WAV and POSTs it to /recordings/TOKEN, where
the page that asked for it picks it up. Tokens are unguessable and used once."""

from __future__ import annotations

import secrets
import threading
import time

from fastapi import HTTPException, Request
from fastapi.responses import Response

RECORDING_ROUTE = "/recordings/{token}"
MAX_SECONDS = 30
MAX_BYTES = 16000 * 2 * MAX_SECONDS + 1024  # 16 kHz, 16-bit mono, plus the header
TOKEN_TTL_S = 600

SCRIPT = """
window.voxbatchRecorder = (() => {
  let stream = null, context = null, source = null, node = null, chunks = [], rate = 48000, started = 0;

  async function start() {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
    const Context = window.AudioContext || window.webkitAudioContext;
    context = new Context();
    if (context.state === "suspended") await context.resume();
    rate = context.sampleRate;
    source = context.createMediaStreamSource(stream);
    node = context.createScriptProcessor(4096, 1, 1);
    chunks = [];
    node.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    source.connect(node);
    node.connect(context.destination);
    started = performance.now();
    return true;
  }

  function release() {
    if (node) node.disconnect();
    if (source) source.disconnect();
    if (stream) stream.getTracks().forEach((t) => t.stop());
    if (context) context.close();
    node = source = stream = context = null;
  }

  async function to16k(samples) {
    const frames = Math.max(1, Math.round(samples.length * 16000 / rate));
    const offline = new OfflineAudioContext(1, frames, 16000);
    const buffer = offline.createBuffer(1, samples.length, rate);
    buffer.copyToChannel(samples, 0);
    const player = offline.createBufferSource();
    player.buffer = buffer;
    player.connect(offline.destination);
    player.start();
    return (await offline.startRendering()).getChannelData(0);
  }

  function wav(samples) {
    const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
    const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
    text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVEfmt ");
    view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
    view.setUint32(24, 16000, true); view.setUint32(28, 32000, true); view.setUint16(32, 2, true);
    view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, samples.length * 2, true);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([view], { type: "audio/wav" });
  }

  async function stop(url, maxSeconds) {
    release();
    const length = chunks.reduce((n, c) => n + c.length, 0);
    const all = new Float32Array(length);
    let offset = 0;
    for (const c of chunks) { all.set(c, offset); offset += c.length; }
    chunks = [];
    let samples = await to16k(all);
    if (samples.length > maxSeconds * 16000) samples = samples.subarray(samples.length - maxSeconds * 16000);
    const response = await fetch(url, { method: "POST", body: wav(samples), headers: { "Content-Type": "audio/wav" } });
    return { ok: response.ok, seconds: samples.length / 16000 };
  }

  function elapsed() { return started && node ? (performance.now() - started) / 1000 : 0; }

  return { start, stop, elapsed, release };
})();
"""


def head_html() -> str:
    return f"<script>{SCRIPT}</script>"


class RecordingInbox:
    """Recordings the browsers POSTed, by token, until their page takes them."""

    def __init__(self) -> None:
        self._expected: dict[str, float] = {}
        self._received: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def expect(self) -> str:
        token = secrets.token_urlsafe(16)
        now = time.monotonic()
        with self._lock:
            for old in [t for t, at in self._expected.items() if now - at > TOKEN_TTL_S]:
                self._expected.pop(old, None)
                self._received.pop(old, None)
            self._expected[token] = now
        return token

    def take(self, token: str) -> bytes | None:
        with self._lock:
            self._expected.pop(token, None)
            return self._received.pop(token, None)

    async def receive(self, token: str, request: Request) -> Response:
        """The route handler."""
        with self._lock:
            if token not in self._expected:
                raise HTTPException(status_code=404, detail="no recording was expected here")
        data = await request.body()
        if len(data) > MAX_BYTES:
            raise HTTPException(status_code=413, detail=f"a recording may last {MAX_SECONDS} s")
        with self._lock:
            self._received[token] = data
        return Response(status_code=204)
