// The live connections of this process: upgraded WebSockets and responses still streaming after their head
// was sent. Each is registered with the context that admitted it; triggers (logout, revocation, expiry, a
// reload's new policy, shutdown) look through them and end the ones whose trust is gone. Consulted on events,
// never per frame or chunk: registering is one Set insert, ending one delete.
import type { EndReason, LiveKind } from './reasons.ts';

export interface LiveConnection<C> {
  readonly kind: LiveKind;
  /** The request context that admitted it (route, identity, decision): what triggers re-check. */
  readonly ctx: C;
  /** When it was admitted (ms since the epoch, on the gateway's clock). */
  readonly openedAt: number;
  /**
   * Ends both sides: a WebSocket gets a close frame naming the reason, a stream is aborted. Idempotent: the
   * first reason is the one recorded.
   */
  end(reason: EndReason): void;
}

export class LiveRegistry<C> {
  readonly #open = new Set<LiveConnection<C>>();

  /** Registers a connection; the returned function removes it (call it once, when it has ended). */
  add(conn: LiveConnection<C>): () => void {
    this.#open.add(conn);
    return () => void this.#open.delete(conn);
  }

  /**
   * Registers a connection without allocating a remover (the per-request path of streaming responses); pair
   * it with delete().
   */
  insert(conn: LiveConnection<C>): void {
    this.#open.add(conn);
  }

  delete(conn: LiveConnection<C>): void {
    this.#open.delete(conn);
  }

  get size(): number {
    return this.#open.size;
  }

  [Symbol.iterator](): IterableIterator<LiveConnection<C>> {
    return this.#open.values();
  }

  /** Ends every connection for which `why` names a reason; returns how many were ended. */
  endWhere(why: (conn: LiveConnection<C>) => EndReason | undefined): number {
    // Judge all first, end after: ending one removes it from the set, and the ticker calls this four times a
    // second, so nothing is copied unless something ends.
    let ending: Array<[LiveConnection<C>, EndReason]> | undefined;
    for (const conn of this.#open) {
      const reason = why(conn);
      if (reason !== undefined) (ending ??= []).push([conn, reason]);
    }
    if (ending === undefined) return 0;
    for (const [conn, reason] of ending) conn.end(reason);
    return ending.length;
  }

  endAll(reason: EndReason): number {
    return this.endWhere(() => reason);
  }
}
