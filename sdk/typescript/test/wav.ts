// A small RIFF/WAVE reader for the tests: checks the header and returns the format and samples.

export interface Wav {
  format: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** The data chunk's length field (0xFFFFFFFF in a stream's header, whose length is unknown). */
  declaredDataBytes: number;
  samples: Int16Array;
}

function ascii(bytes: Uint8Array, offset: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(offset, offset + length));
}

export function parseWav(bytes: Uint8Array): Wav {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (ascii(bytes, 0, 4) !== "RIFF" || ascii(bytes, 8, 4) !== "WAVE") throw new Error("not a RIFF/WAVE file");
  let offset = 12;
  let fmt: Omit<Wav, "samples" | "declaredDataBytes"> | undefined;
  while (offset + 8 <= bytes.length) {
    const id = ascii(bytes, offset, 4);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === "fmt ") {
      fmt = {
        format: view.getUint16(body, true),
        channels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
        bitsPerSample: view.getUint16(body + 14, true),
      };
    } else if (id === "data") {
      if (fmt === undefined) throw new Error("data chunk before fmt chunk");
      const end = size === 0xffffffff ? bytes.length : Math.min(bytes.length, body + size);
      const pcm = bytes.slice(body, end - ((end - body) % 2));
      return { ...fmt, declaredDataBytes: size, samples: new Int16Array(pcm.buffer, 0, pcm.length / 2) };
    }
    offset = body + size + (size % 2);
  }
  throw new Error("no data chunk");
}

/** Root mean square of the samples, in [0, 1]. */
export function rms(samples: Int16Array): number {
  let sum = 0;
  for (const s of samples) sum += (s / 32768) ** 2;
  return Math.sqrt(sum / Math.max(1, samples.length));
}
