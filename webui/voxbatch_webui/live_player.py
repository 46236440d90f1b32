"""The browser side of streaming, added to every page (inline, so it ships inside the Python
package without any package-data setting).

It plays a stream while it arrives: each piece (a small WAV file with the newest sentence's
audio) is fetched, decoded and scheduled right after the previous one with the Web Audio API, so
the first sentence plays while the server still works on the rest, without gaps between pieces.
`voxbatchLive.unlock()` runs on the Synthesize click itself, which lets the page make sound."""

SCRIPT = """
window.voxbatchLive = (() => {
  let context = null;
  let chain = Promise.resolve();
  let next = 0;
  let generation = 0;
  let sources = [];
  const state = { queued: 0, started: 0, ended: 0, firstStart: null, error: "" };

  function unlock() {
    // Called from the Synthesize click, so the browser lets the page make sound.
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!context) context = new Context();
    if (context.state === "suspended") context.resume();
  }

  function stop() {
    generation += 1;
    for (const source of sources) {
      try { source.stop(); } catch (e) { /* already ended */ }
    }
    sources = [];
    next = 0;
    chain = Promise.resolve();
    Object.assign(state, { queued: 0, started: 0, ended: 0, firstStart: null, error: "" });
  }

  function enqueue(url) {
    const mine = generation;
    state.queued += 1;
    const loading = fetch(url).then((r) => {
      if (!r.ok) throw new Error(`piece ${url}: HTTP ${r.status}`);
      return r.arrayBuffer();
    });
    chain = chain.then(async () => {
      const data = await loading;
      if (mine !== generation) return;
      unlock();
      if (!context) return;
      const buffer = await context.decodeAudioData(data);
      if (mine !== generation) return;
      const source = context.createBufferSource();
      source.buffer = buffer;
      source.connect(context.destination);
      const at = Math.max(context.currentTime + 0.05, next);
      source.onended = () => { if (mine === generation) state.ended += 1; };
      source.start(at);
      next = at + buffer.duration;
      sources.push(source);
      if (state.firstStart === null) state.firstStart = at;
      state.started += 1;
    }).catch((error) => { state.error = String(error); });
  }

  function playing() {
    return Boolean(context) && context.state === "running" && state.firstStart !== null
      && context.currentTime > state.firstStart && context.currentTime < next;
  }

  return { unlock, stop, enqueue, playing, state, context: () => context };
})();
"""


def head_html() -> str:
    return f"<script>{SCRIPT}</script>"
