// Frame boundaries in the upstream → client byte stream of a relayed WebSocket (RFC 6455 §5.2), so the
// gateway can slip a close frame in between two frames. Only headers are read: a payload is skipped by its
// length, never looked at, and nothing is allocated per frame or chunk.

/** Where the stream stands: inside a frame header, inside a payload, or between two frames. */
export class FrameScanner {
  /** Header bytes read of the current frame (0: not in a header). */
  #headerRead = 0;
  /** The current header's full length (2 + extended length bytes + masking key), known after its 2nd byte. */
  #headerLength = 2;
  /** Extended payload length bytes (0, 2 or 8). */
  #extended = 0;
  #length = 0;
  /** Payload bytes of the current frame not seen yet. */
  #remaining = 0;

  /** Between two frames: a close frame written now cannot split one. */
  get atBoundary(): boolean {
    return this.#headerRead === 0 && this.#remaining === 0;
  }

  /** Follows `chunk` through. */
  pass(chunk: Buffer): void {
    this.#scan(chunk, false);
  }

  /**
   * Follows `chunk` up to the first frame boundary in it and returns how many of its bytes come before that
   * boundary (0: it starts on one), or -1 when it holds none (the whole chunk was followed).
   */
  boundaryIn(chunk: Buffer): number {
    return this.#scan(chunk, true);
  }

  #scan(chunk: Buffer, stop: boolean): number {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, n - i);
        this.#remaining -= take;
        i += take;
        continue;
      }
      if (stop && this.#headerRead === 0) return i;
      this.#header(chunk[i++] as number);
    }
    return stop && this.atBoundary ? n : -1;
  }

  /** One header byte: FIN/RSV/opcode, MASK + 7-bit length, extended length, masking key. */
  #header(byte: number): void {
    const at = ++this.#headerRead;
    if (at === 2) {
      const len7 = byte & 0x7f;
      this.#extended = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      // Server frames are unmasked, but a masked one is still framed correctly.
      this.#headerLength = 2 + this.#extended + (byte & 0x80 ? 4 : 0);
      this.#length = this.#extended === 0 ? len7 : 0;
    } else if (at > 2 && at <= 2 + this.#extended) {
      // A 64-bit length above 2^53 loses precision: no real frame is that long.
      this.#length = this.#length * 256 + byte;
    }
    if (at >= 2 && at === this.#headerLength) {
      this.#headerRead = 0;
      this.#remaining = this.#length;
    }
  }
}

/** A close frame (server → client, unmasked) with a status code and a reason of at most 123 bytes. */
export function closeFrame(code: number, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 123);
  const out = Buffer.alloc(4 + text.length);
  out[0] = 0x88; // FIN + close
  out[1] = 2 + text.length;
  out.writeUInt16BE(code, 2);
  text.copy(out, 4);
  return out;
}
