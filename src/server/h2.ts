// HTTP/2 on the main listener (ALPN h2 on TLS, or h2c with prior knowledge on a plain listener that enables
// it). Sessions get the limits HTTP/1.1 has: a request timer per stream, an idle timeout ending with GOAWAY,
// maxHeaderListSize from max_header_bytes, a cap on concurrent streams and on session memory, and a bound
// on client resets (CVE-2023-44487). Each request is adapted at this edge (h2-request.ts) so the pipeline
// runs on it exactly as on an HTTP/1.1 request.
import { constants, type SecureServerOptions, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';

/** Streams one client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
export const H2_MAX_CONCURRENT_STREAMS = 100;
/** Per-session memory cap of nghttp2 (MB); over it new streams are refused with ENHANCE_YOUR_CALM. */
export const H2_MAX_SESSION_MEMORY_MB = 10;
/** Rapid reset: more stream resets than this within the window closes the session (GOAWAY). */
export const H2_RESET_LIMIT = 100;
export const H2_RESET_WINDOW_MS = 10_000;

export interface H2Limits {
  readonly maxHeaderBytes: number;
  /** Per stream: from its HEADERS until the whole request body has arrived (request_timeout). */
  readonly requestTimeout: number;
  /** A session with no open stream for this long is closed with GOAWAY (keep_alive_timeout). */
  readonly idleTimeout: number;
}

/** node:http2 options: never SETTINGS_ENABLE_CONNECT_PROTOCOL (extended CONNECT stays refused by nghttp2). */
export function h2Options(limits: H2Limits): SecureServerOptions {
  return {
    maxSessionMemory: H2_MAX_SESSION_MEMORY_MB,
    maxHeaderListPairs: 128,
    peerMaxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS,
    // nghttp2's own reset-rate limit (GOAWAY when exceeded) backs up the window count below.
    streamResetBurst: H2_RESET_LIMIT,
    streamResetRate: 33,
    settings: {
      maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS,
      maxHeaderListSize: limits.maxHeaderBytes,
      enableConnectProtocol: false,
    },
  } as SecureServerOptions;
}

interface SessionState {
  readonly socket: Socket;
  open: number;
  idle: NodeJS.Timeout | undefined;
  /** When the last stream closed (the idle timer is armed once and checks this, not re-armed per stream). */
  idleSince: number;
  resets: number;
  windowStart: number;
}

/** The open HTTP/2 sessions of a listener: their real sockets, idle timers and reset counts. */
export class H2Sessions {
  readonly #sessions = new Map<ServerHttp2Session, SessionState>();
  readonly #bySocket = new WeakMap<Socket, ServerHttp2Session>();
  readonly limits: H2Limits;
  #pending: Socket | undefined;

  constructor(limits: H2Limits) {
    this.limits = limits;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /**
   * node creates the session synchronously in its own `secureConnection` (or `connection`) listener, right
   * after ours: the socket seen last is the session's. (session.socket is only a proxy of it.)
   */
  connection(socket: Socket): void {
    this.#pending = socket;
  }

  session(session: ServerHttp2Session): void {
    const socket = this.#pending;
    this.#pending = undefined;
    if (socket === undefined) return void session.destroy();
    const state: SessionState = { socket, open: 0, idle: undefined, idleSince: Date.now(), resets: 0, windowStart: Date.now() };
    this.#sessions.set(session, state);
    this.#bySocket.set(socket, session);
    this.#armIdle(session, state);
    session.on('stream', (stream: ServerHttp2Stream) => this.#stream(session, state, stream));
    session.on('error', () => undefined); // a protocol error ends the session; nothing to do here
    session.once('close', () => {
      clearTimeout(state.idle);
      this.#sessions.delete(session);
    });
  }

  /** The TLS (or TCP) socket under a session. */
  socketOf(session: ServerHttp2Session | undefined): Socket | undefined {
    return session === undefined ? undefined : this.#sessions.get(session)?.socket;
  }

  sessionOf(socket: Socket): ServerHttp2Session | undefined {
    return this.#bySocket.get(socket);
  }

  /** Shutdown / trust change: GOAWAY to every session (or those `which` picks); open streams finish. */
  closeAll(which: (socket: Socket) => boolean = () => true): void {
    for (const [session, state] of this.#sessions) if (which(state.socket) && !session.closed) session.close();
  }

  destroyAll(): void {
    for (const session of this.#sessions.keys()) session.destroy();
  }

  #armIdle(session: ServerHttp2Session, state: SessionState, delay = this.limits.idleTimeout): void {
    state.idle = setTimeout(() => {
      state.idle = undefined;
      if (state.open > 0 || session.closed || session.destroyed) return; // re-armed when the last stream closes
      const left = state.idleSince + this.limits.idleTimeout - Date.now();
      if (left > 0) return this.#armIdle(session, state, left);
      session.close(); // GOAWAY NO_ERROR
      setTimeout(() => session.destroy(), 1000).unref();
    }, delay);
    state.idle.unref();
  }

  #stream(session: ServerHttp2Session, state: SessionState, stream: ServerHttp2Stream): void {
    state.open++;
    stream.once('close', () => {
      state.open--;
      if (stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR) this.#reset(session, state);
      if (state.open > 0 || session.closed || session.destroyed) return;
      state.idleSince = Date.now();
      if (state.idle === undefined) this.#armIdle(session, state);
    });
  }

  /** CVE-2023-44487: a client that resets streams as fast as it opens them loses the session. */
  #reset(session: ServerHttp2Session, state: SessionState): void {
    const now = Date.now();
    if (now - state.windowStart > H2_RESET_WINDOW_MS) {
      state.windowStart = now;
      state.resets = 0;
    }
    if (++state.resets <= H2_RESET_LIMIT || session.destroyed) return;
    // GOAWAY (last stream 0: nothing more is processed), flushed before the connection is cut.
    session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM, 0);
    setTimeout(() => session.destroy(), 50).unref();
  }
}
