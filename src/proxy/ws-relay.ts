// One upgraded WebSocket connection after the upstream's 101: the client's socket and the upstream's, relayed
// by http-proxy-3's pipes. What the gateway needs to end it on its own terms lives here.
import type { Duplex } from 'node:stream';

/** Told when a relayed connection opens (the upstream's 101) and when both of its sockets have closed. */
export interface RelayHooks {
  opened(relay: WebSocketRelay): void;
  closed(relay: WebSocketRelay): void;
}

export class WebSocketRelay {
  readonly client: Duplex;
  readonly upstream: Duplex;
  /** Why the gateway ended it (the first reason given), or undefined when one side closed on its own. */
  endReason: string | undefined;
  #open = 2;

  constructor(client: Duplex, upstream: Duplex, hooks: RelayHooks) {
    this.client = client;
    this.upstream = upstream;
    const onClose = (): void => {
      if (--this.#open === 0) hooks.closed(this);
    };
    client.once('close', onClose);
    upstream.once('close', onClose);
    hooks.opened(this);
  }

  /** Ends both sides; the first reason is the one recorded. */
  end(reason: string): void {
    if (this.endReason !== undefined) return;
    this.endReason = reason;
    this.client.destroy();
    this.upstream.destroy();
  }
}
