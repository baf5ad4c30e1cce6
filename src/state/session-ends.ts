// Session ends (logout, back-channel logout) announced to every instance, so that the live connections those
// sessions admitted end wherever they are relayed. With state.redis: published on a pub/sub channel, each
// instance (this one included) hears it; this instance also applies its own announcement at once, so a local
// logout does not wait for Redis. Without Redis: this instance only. An announcement is a hint to end
// connections, never a credential: the session itself was already ended in the session store.
import type { Redis } from 'ioredis';
import type { Logger } from '../audit/index.ts';

export const SESSION_ENDS_CHANNEL = 'ztgw:sess:ended:v1';

/** One session (id), an IdP session (sid), or a subject's sessions created up to `before`. */
export interface SessionEndNotice {
  readonly provider: string;
  readonly id?: string | undefined;
  readonly sid?: string | undefined;
  readonly sub?: string | undefined;
  readonly before?: number | undefined;
  /** login.host: every session of one auth-host login (fleet logout). */
  readonly login?: string | undefined;
}

export interface SessionEnds {
  announce(end: SessionEndNotice): void;
  onEnd(listener: (end: SessionEndNotice) => void): void;
  close(): void;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 && v.length <= 1024 ? v : undefined);

/** A message from the channel, or undefined when it is not one of ours. */
function parseNotice(text: string): SessionEndNotice | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  const provider = str(o.provider);
  const notice = { provider, id: str(o.id), sid: str(o.sid), sub: str(o.sub), before: typeof o.before === 'number' ? o.before : undefined, login: str(o.login) };
  if (provider === undefined || (notice.id ?? notice.sid ?? notice.sub ?? notice.login) === undefined) return undefined;
  return notice as SessionEndNotice;
}

export function createSessionEnds(redis: Redis | null, log: Logger): SessionEnds {
  const listeners: Array<(end: SessionEndNotice) => void> = [];
  const deliver = (end: SessionEndNotice) => {
    for (const l of listeners) l(end);
  };
  let subscriber: Redis | null = null;
  if (redis) {
    subscriber = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: false });
    subscriber.on('error', () => undefined); // the access state's poll reports a Redis outage once
    subscriber.on('ready', () => void subscriber?.subscribe(SESSION_ENDS_CHANNEL).catch(() => undefined));
    subscriber.on('message', (_channel: string, text: string) => {
      const end = parseNotice(text);
      if (end !== undefined) deliver(end);
    });
  }
  return {
    announce(end) {
      deliver(end);
      redis?.publish(SESSION_ENDS_CHANNEL, JSON.stringify(end)).catch((err: unknown) => {
        log.warn({ err: (err as Error).message }, 'session end not announced to the other instances (their live connections end at idle or ttl)');
      });
    },
    onEnd: (l) => void listeners.push(l),
    close() {
      subscriber?.disconnect();
    },
  };
}
