// When live connections end because the trust that admitted them is gone. Events, never frames:
//   - a session ended (logout, back-channel logout: announced to every instance; revoke-sessions: through
//     the access state) → `logout`;
//   - the access state changed (suspension, revoked token/key/device, revoked grant) or a reload swapped the
//     config → every connection is judged again as a new request would be (pipeline/live-checks.ts);
//   - one unref'd ticker (TICK_MS) for what the clock ends: the credential's expiry (token exp, session ttl)
//     → `expired`, session idle → `expired`, and the routes whose policy reads the clock (time windows,
//     grants) → judged again. A tick costs a few comparisons per connection; only those routes evaluate policy.
// Idle rule: a connection that carried bytes since the last tick (socket byte counters compared at the tick:
// nothing per frame) counts as a use of its session; the session's last use is then rewritten at most once per
// touch interval (so HTTP requests with that session do not go idle either). A connection whose session has
// seen no use (by it or any request) for idle_timeout ends with `expired`; the absolute ttl ends it anyway.
// Once per touch interval the store is also asked whether the session still exists: a session end whose
// announcement this instance missed (Redis pub/sub is at-most-once) still ends the connection then.
import type { Logger } from '../audit/index.ts';
import type { OidcSession, RelyingParty } from '../authn/index.ts';
import type { LiveConnection } from '../live/index.ts';
import { judgedByClock, judgeLive, sessionEndCovers, type PipelineContext } from '../pipeline/index.ts';
import type { SessionEndNotice, SessionEnds } from '../state/index.ts';
import type { Runtime } from './runtime.ts';

/** Ticker period: with the time a close takes, a deadline is acted on well within the promised 1 s. */
export const TICK_MS = 250;

type Conn = LiveConnection<PipelineContext>;

/** What the triggers remember of one connection (made on first sight, gone with the connection). */
interface Track {
  /** The session it was admitted with (session identities only). */
  readonly session: OidcSession | undefined;
  /** Credential expiry (ms): token exp, session absolute ttl; Infinity when none. */
  readonly deadline: number;
  /** Socket bytes in and out at the last tick. */
  bytes: number;
  /** Last tick at which it had carried bytes (its opening counts). */
  active: number;
  /** When it last touched its session. */
  touched: number;
  /** The session's latest use known (requests, other connections), from the store. */
  seen: number;
  /** When the store was last asked about the session (a backstop for a session end announced while we missed it). */
  checked: number;
  /** A store read is under way. */
  checking: boolean;
}

const socketBytes = (c: PipelineContext): number => (c.connection.bytesRead ?? 0) + (c.connection.bytesWritten ?? 0);

export class LiveTriggers {
  readonly #runtime: Runtime;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #ends: SessionEnds;
  readonly #tracks = new WeakMap<Conn, Track>();
  readonly #timer: NodeJS.Timeout;

  constructor(runtime: Runtime, ends: SessionEnds, now: () => number, log: Logger) {
    this.#runtime = runtime;
    this.#ends = ends;
    this.#now = now;
    this.#log = log;
    ends.onEnd((end) => this.sessionEnded(end));
    runtime.access.onSessionsRevoked((subject, atMs) => this.subjectSessionsEnded(subject, atMs));
    runtime.access.onChange(() => this.recheck());
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
  }

  get #rp(): RelyingParty | null {
    return this.#runtime.current.compiled.rp;
  }

  /** Judges every live connection against the running config and access state (a reload, a state change). */
  recheck(): number {
    const state = this.#runtime.current;
    const now = this.#now();
    return this.#endWhere((conn) => judgeLive(state, conn.ctx, conn.kind, conn.openedAt, now));
  }

  /** A session end announced by this or another instance (logout, back-channel logout). */
  sessionEnded(end: SessionEndNotice): number {
    return this.#endWhere((conn) => {
      const s = this.#track(conn).session;
      return s !== undefined && sessionEndCovers(end, s) ? 'logout' : undefined;
    });
  }

  /** revoke-sessions: the subject's sessions (of any provider) created up to `atMs`. */
  subjectSessionsEnded(subject: string, atMs: number): number {
    return this.#endWhere((conn) => {
      const s = this.#track(conn).session;
      return s !== undefined && s.sub === subject && s.createdAt <= atMs ? 'logout' : undefined;
    });
  }

  close(): void {
    clearInterval(this.#timer);
    this.#ends.close();
  }

  #endWhere(why: Parameters<Runtime['live']['endWhere']>[0]): number {
    try {
      return this.#runtime.live.endWhere(why);
    } catch (err) {
      // A trigger must never take the process down; the ticker tries again.
      this.#log.error({ err: (err as Error).message }, 'live connection check failed');
      return 0;
    }
  }

  #track(conn: Conn): Track {
    let t = this.#tracks.get(conn);
    if (t !== undefined) return t;
    const identity = conn.ctx.identity;
    const rp = this.#rp;
    const session = identity?.method === 'session' ? rp?.sessionOf(identity) : undefined;
    const exp = identity?.expiresAt === undefined ? Number.POSITIVE_INFINITY : identity.expiresAt * 1000;
    const now = this.#now(); // the gateway's clock (openedAt is the wall clock)
    t = {
      session,
      deadline: Math.min(exp, session?.expiresAt ?? Number.POSITIVE_INFINITY),
      bytes: socketBytes(conn.ctx),
      active: now,
      touched: now,
      seen: session?.lastSeen ?? now,
      checked: now,
      checking: false,
    };
    this.#tracks.set(conn, t);
    // Opening the connection used the session; from now on its later uses are remembered (cookie store).
    if (session !== undefined && rp !== null) this.#touch(rp, session, session.lastSeen);
    return t;
  }

  #tick(): void {
    const state = this.#runtime.current;
    const now = this.#now();
    const rp = this.#rp;
    this.#endWhere((conn) => {
      const t = this.#track(conn);
      if (now >= t.deadline) return 'expired';
      if (t.session !== undefined && rp !== null) this.#idle(conn, t, rp, now);
      return judgedByClock(state, conn.ctx) ? judgeLive(state, conn.ctx, conn.kind, conn.openedAt, now) : undefined;
    });
  }

  /** Touches the session of a connection that carried bytes; ends one whose session has gone idle. */
  #idle(conn: Conn, t: Track, rp: RelyingParty, now: number): void {
    const session = t.session as OidcSession;
    const bytes = socketBytes(conn.ctx);
    if (bytes !== t.bytes) {
      t.bytes = bytes;
      t.active = now;
    }
    if (t.active > t.touched && now - t.touched >= rp.touchEveryMs) {
      t.touched = now;
      this.#touch(rp, session, now);
    }
    const idle = now - Math.max(t.active, t.seen) >= rp.idleMs;
    // Idle by what this connection saw, or due for the periodic look: ask the store whether the session still
    // exists and whether a request (or another instance) used it.
    if (t.checking || (!idle && now - t.checked < rp.touchEveryMs)) return;
    t.checking = true;
    t.checked = now;
    rp.sessionSeen(session).then(
      (seen) => {
        t.checking = false;
        if (seen !== undefined) t.seen = Math.max(t.seen, seen);
        const idleNow = this.#now() - Math.max(t.active, t.seen) >= rp.idleMs;
        // Gone while still in use here: ended elsewhere (an announcement this instance missed).
        if (seen === undefined) conn.end(idleNow ? 'expired' : 'logout');
        else if (idleNow) conn.end('expired');
      },
      (err: unknown) => {
        t.checking = false; // the store is down: not a reason to end it; asked again on a later tick
        this.#log.warn({ err: (err as Error).message }, 'live connection: session store unreachable for the idle check');
      },
    );
  }

  #touch(rp: RelyingParty, session: OidcSession, atMs: number): void {
    rp.touchSession(session, atMs).catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'live connection: session touch failed'));
  }
}
