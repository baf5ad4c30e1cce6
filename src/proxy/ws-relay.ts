// One upgraded WebSocket connection after the upstream's 101: the client's socket and the upstream's.
// Client → upstream stays http-proxy-3's raw pipe. Upstream → client is relayed here, through a frame-header
// scanner (ws-frames.ts), so the gateway can end the connection with a close frame between two frames.
// When one side ends, the other is ended too, and both are destroyed after a short grace: a peer that keeps
// its half open cannot hold the connection (its sockets, gauge and audit record) forever.
import type { Duplex } from 'node:stream';
import { FrameScanner } from './ws-frames.ts';

/** Told when a relayed connection opens (the upstream's 101) and when both of its sockets have closed. */
export interface RelayHooks {
  opened(relay: WebSocketRelay): void;
  closed(relay: WebSocketRelay): void;
}

/** How long an end may take: the wait for a frame boundary, then for the peers to close after the close frame. */
export interface EndTiming {
  readonly boundaryMs: number;
  readonly graceMs: number;
}

export const END_TIMING: EndTiming = Object.freeze({ boundaryMs: 1000, graceMs: 2000 });

export class WebSocketRelay {
  readonly client: Duplex;
  readonly upstream: Duplex;
  /** Why it ended: the reason the gateway gave, else the side that closed first ('client' or 'upstream'). */
  endReason: string | undefined;
  /** Bytes relayed each way since the 101 (set when both sockets have closed). */
  bytesIn = 0;
  bytesOut = 0;
  readonly #scanner = new FrameScanner();
  readonly #baseRead: number;
  #baseWritten = 0;
  /** The close frame waiting for the next frame boundary. */
  #pending: Buffer | null = null;
  #timer: NodeJS.Timeout | undefined;
  #ending = false;
  #open = 2;

  constructor(client: Duplex, upstream: Duplex, hooks: RelayHooks) {
    this.client = client;
    this.upstream = upstream;
    this.#baseRead = bytesRead(client);
    const onClose = (side: 'client' | 'upstream'): void => {
      this.#sideEnded(side);
      if (--this.#open > 0) return;
      clearTimeout(this.#timer);
      this.bytesIn = bytesRead(client) - this.#baseRead;
      this.bytesOut = bytesWritten(client) - this.#baseWritten;
      hooks.closed(this);
    };
    client.once('close', () => onClose('client'));
    upstream.once('close', () => onClose('upstream'));
    client.once('end', () => this.#sideEnded('client'));
    upstream.once('end', () => this.#sideEnded('upstream'));
    hooks.opened(this);
  }

  /**
   * Takes the upstream → client direction over from http-proxy-3's pipe (called right after it set the pipe
   * up, before any byte flowed through it).
   */
  relay(): void {
    const { client, upstream } = this;
    this.#baseWritten = bytesWritten(client); // after the 101 head
    upstream.unpipe(client);
    upstream.on('data', this.#onData);
    client.on('drain', this.#onDrain);
    upstream.resume();
  }

  /**
   * Ends both sides with `frame` (a close frame) sent to the client at the next frame boundary; with none
   * within timing.boundaryMs both sockets are destroyed. Idempotent: the first reason is the one recorded.
   */
  end(reason: string, frame: Buffer, timing: EndTiming = END_TIMING): void {
    if (this.#ending) return;
    this.#ending = true;
    this.endReason = reason;
    // Nothing more reaches the upstream (the client's answering close frame included).
    this.client.unpipe(this.upstream);
    this.client.resume();
    if (this.#scanner.atBoundary) return this.#finish(null, frame, timing.graceMs);
    this.#pending = frame;
    this.#timer = setTimeout(this.destroy, timing.boundaryMs);
    this.#timer.unref();
    this.#graceMs = timing.graceMs;
    this.upstream.resume(); // the boundary may be in bytes a slow client's backpressure would hold back
  }

  #graceMs = END_TIMING.graceMs;

  /** Destroys both sockets at once. */
  readonly destroy = (): void => {
    clearTimeout(this.#timer);
    this.client.destroy();
    this.upstream.destroy();
  };

  readonly #onData = (chunk: Buffer): void => {
    const frame = this.#pending;
    if (frame !== null) {
      const at = this.#scanner.boundaryIn(chunk);
      if (at < 0) {
        this.client.write(chunk);
        return;
      }
      clearTimeout(this.#timer);
      this.#finish(at > 0 ? chunk.subarray(0, at) : null, frame, this.#graceMs);
      return;
    }
    this.#scanner.pass(chunk);
    if (!this.client.write(chunk)) this.upstream.pause();
  };

  readonly #onDrain = (): void => {
    if (!this.#ending) this.upstream.resume();
  };

  /** The last bytes before the boundary, the close frame, then both sides ended; destroyed after a grace. */
  #finish(before: Buffer | null, frame: Buffer, graceMs: number): void {
    this.#pending = null;
    const { client, upstream } = this;
    upstream.off('data', this.#onData);
    upstream.resume(); // what the upstream still sends is dropped
    if (before !== null) client.write(before);
    client.end(frame);
    upstream.end();
    this.#timer = setTimeout(this.destroy, graceMs);
    this.#timer.unref();
  }

  /** One side sent its FIN or closed: the other is ended, and both destroyed after the grace. */
  #sideEnded(side: 'client' | 'upstream'): void {
    if (this.#ending) return;
    this.#ending = true;
    this.endReason = side;
    if (side === 'upstream') this.client.end();
    else this.upstream.end();
    this.#timer = setTimeout(this.destroy, END_TIMING.graceMs);
    this.#timer.unref();
  }
}

function bytesRead(s: Duplex): number {
  return (s as { bytesRead?: number }).bytesRead ?? 0;
}

function bytesWritten(s: Duplex): number {
  return (s as { bytesWritten?: number }).bytesWritten ?? 0;
}
