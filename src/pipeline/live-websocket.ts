// An upgraded WebSocket as a live connection: registered in runtime.live from the upstream's 101 until both
// of its sockets closed, ended by a trigger with a close frame naming the reason (proxy/ws-relay.ts), by the
// route's max_lifetime, or by shutdown. Its two audit records (opened, closed) are written by exchange.ts.
import type { Logger } from '../audit/index.ts';
import { CLOSE_TEXT, END_REASONS, type EndReason, type LiveConnection } from '../live/index.ts';
import { closeFrame, END_TIMING, type EndTiming, type RelayHooks, type WebSocketRelay } from '../proxy/index.ts';
import { closeUpgrade, openUpgrade, type Outcome } from './exchange.ts';
import type { PipelineContext } from './route.ts';
import type { RuntimeHandle, RuntimeState } from './state.ts';
import type { ServerTrace } from '../tracing/index.ts';

/** 1008 (policy violation) naming the trigger; 1001 (going away) when the gateway shuts down. */
const CLOSE_FRAMES = Object.fromEntries(END_REASONS.map((r) => [r, closeFrame(r === 'shutdown' ? 1001 : 1008, CLOSE_TEXT[r])])) as Record<EndReason, Buffer>;

/** Shutdown has drain_timeout + 1 s in all: a shorter wait for the boundary and for the peers to close. */
const SHUTDOWN_TIMING: EndTiming = Object.freeze({ boundaryMs: 400, graceMs: 200 });

export class LiveWebSocket implements LiveConnection<PipelineContext>, RelayHooks {
  readonly kind = 'websocket';
  readonly ctx: PipelineContext;
  openedAt = 0;
  readonly #runtime: RuntimeHandle;
  readonly #state: RuntimeState;
  readonly #log: Logger;
  readonly #outcome: Outcome;
  #relay: WebSocketRelay | undefined;
  #unregister: (() => void) | undefined;
  #lifetime: NodeJS.Timeout | undefined;
  #openedNs = 0n;
  /** The handshake's server span (tracing.otlp), ended at the 101. */
  readonly #trace: ServerTrace | undefined;

  constructor(runtime: RuntimeHandle, state: RuntimeState, log: Logger, ctx: PipelineContext, outcome: Outcome, trace: ServerTrace | undefined) {
    this.#runtime = runtime;
    this.#trace = trace;
    this.#state = state;
    this.#log = log;
    this.ctx = ctx;
    this.#outcome = outcome;
  }

  /** Relayed since the upstream's 101. */
  get isOpen(): boolean {
    return this.#relay !== undefined;
  }

  readonly opened = (relay: WebSocketRelay): void => {
    this.#relay = relay;
    this.openedAt = Date.now();
    this.#openedNs = process.hrtime.bigint();
    openUpgrade(this.#runtime, this.#state, this.ctx, this.#outcome, this.#trace);
    this.#unregister = this.#runtime.live.add(this);
    const lifetime = this.ctx.route?.websocketLifetime ?? null;
    if (lifetime !== null) {
      // setTimeout takes at most 2^31 - 1 ms (~24.8 days); beyond that it would fire at once.
      this.#lifetime = setTimeout(() => this.end('lifetime'), Math.min(lifetime, 2_147_483_647));
      this.#lifetime.unref();
    }
  };

  readonly closed = (relay: WebSocketRelay): void => {
    clearTimeout(this.#lifetime);
    this.#unregister?.();
    closeUpgrade(this.#runtime, this.#state, this.#log, {
      ctx: this.ctx,
      reason: relay.endReason ?? 'client',
      durationMs: Number(process.hrtime.bigint() - this.#openedNs) / 1e6,
      bytesIn: relay.bytesIn,
      bytesOut: relay.bytesOut,
    });
  };

  end(reason: EndReason): void {
    this.#relay?.end(reason, CLOSE_FRAMES[reason], reason === 'shutdown' ? SHUTDOWN_TIMING : END_TIMING);
  }
}
