// The relying party's state across reloads: parts kept by a checksum of their config (never a secret in
// clear), reused when a reload leaves the OIDC config alone, disposed once dropped, and a reload that
// changes the session secrets hands the kept store the new sealer.
import { describe, expect, it, vi } from 'vitest';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { RpState, standaloneServices, type RpServices } from '../../src/authn/oidc/index.ts';
import { providerPartsKey } from '../../src/authn/oidc/providers.ts';
import { sessionPartsKey } from '../../src/authn/oidc/session-store.ts';
import { newSessionId, type Session } from '../../src/authn/oidc/sessions.ts';
import { PartCache } from '../../src/authn/oidc/state.ts';

const S1 = 'first-session-secret-of-at-least-32-characters';
const S2 = 'second-session-secret-of-at-least-32-characters';

function config(o: { secrets?: string[]; timeout?: string; route?: string; ttl?: string } = {}) {
  const [secret, ...old] = o.secrets ?? [S1];
  const text = `listen: { address: 127.0.0.1:0, plaintext: true }
identity_providers:
  corp: { type: oidc, issuer: "http://127.0.0.1:1", client_id: gw, client_secret: the-client-secret, timeout: ${o.timeout ?? '5s'} }
session: { secret: "${secret}", old_secrets: ${JSON.stringify(old)}, ttl: ${o.ttl ?? '8h'} }
routes:
  - name: ${o.route ?? 'app'}
    match: { path: / }
    upstream: { url: "http://127.0.0.1:9" }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`;
  return parseConfigText(text, 'gateway.yaml', '/tmp', {});
}

async function compile(services: RpServices, o: Parameters<typeof config>[0] = {}) {
  const source = config(o);
  const rp = (await compileConfig(source, { services })).rp;
  if (!rp) throw new Error('no relying party');
  const session = source.config.session!;
  const corp = source.config.identity_providers.corp;
  if (corp?.type !== 'oidc') throw new Error('corp is not oidc');
  return { rp, sessionKey: sessionPartsKey(null, session), providerKey: providerPartsKey('corp', corp, '/tmp') };
}

function session(): Session {
  const now = Date.now();
  return { id: newSessionId(), provider: 'corp', sub: 'alice', sid: 'sid-1', claims: {}, createdAt: now, lastSeen: now, expiresAt: now + 3_600_000 };
}

describe('relying party state across reloads', () => {
  it('a reload that leaves the OIDC config alone reuses the store, refresher and IdP client', async () => {
    const services = standaloneServices();
    const first = await compile(services);
    const parts = services.state.sessions.get(first.sessionKey);
    const provider = services.state.providers.get(first.providerKey);
    expect(parts).toBeDefined();
    expect(provider).toBeDefined();
    const second = await compile(services, { route: 'renamed' }); // a reload that changes only a route
    expect(second.rp).not.toBe(first.rp);
    expect(second.sessionKey).toBe(first.sessionKey);
    expect(services.state.sessions.get(second.sessionKey)).toBe(parts);
    expect(services.state.providers.get(second.providerKey)).toBe(provider);
    expect(services.state.sessions.size).toBe(1);
    expect(services.state.providers.size).toBe(1);
    const disposed = vi.spyOn(parts!, 'dispose');
    services.state.commit(second.rp, 0);
    expect(disposed).not.toHaveBeenCalled();
  });

  it('keys are SHA-256 checksums: neither the session secret nor the client secret appears in them', async () => {
    const { sessionKey, providerKey } = await compile(standaloneServices());
    for (const key of [sessionKey, providerKey]) {
      expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(key).not.toContain(S1);
      expect(key).not.toContain('the-client-secret');
    }
  });

  it('a changed provider gets a new client; once the new config runs, the dropped one is disposed', async () => {
    const services = standaloneServices();
    const first = await compile(services);
    const old = services.state.providers.get(first.providerKey)!;
    const disposed = vi.spyOn(old, 'dispose');
    const second = await compile(services, { timeout: '6s' });
    expect(second.providerKey).not.toBe(first.providerKey);
    expect(services.state.providers.get(second.providerKey)).not.toBe(old);
    services.state.commit(second.rp, 0);
    expect(disposed).toHaveBeenCalledTimes(1);
    expect(services.state.providers.has(first.providerKey)).toBe(false);
    expect(services.state.providers.has(second.providerKey)).toBe(true);
    expect(services.state.sessions.has(second.sessionKey)).toBe(true); // sessions untouched
  });

  it('a dropped part is disposed only after the grace period, and revived if a reload wants it back', async () => {
    vi.useFakeTimers();
    try {
      const services = standaloneServices();
      const first = await compile(services);
      const old = services.state.sessions.get(first.sessionKey)!;
      const disposed = vi.spyOn(old, 'dispose');
      const second = await compile(services, { ttl: '4h' });
      services.state.commit(second.rp, 1000);
      vi.advanceTimersByTime(500);
      expect(disposed).not.toHaveBeenCalled();
      const back = await compile(services); // the old config again, within the grace period
      expect(services.state.sessions.get(back.sessionKey)).toBe(old);
      services.state.commit(back.rp, 1000);
      vi.advanceTimersByTime(5000);
      expect(disposed).not.toHaveBeenCalled();
      expect(services.state.sessions.has(second.sessionKey)).toBe(false); // the 4h one was dropped instead
    } finally {
      vi.useRealTimers();
    }
  });

  it('secret rotation keeps the store and its revocations; retiring the old secret ends its cookies at once', async () => {
    const services = standaloneServices();
    const first = await compile(services, { secrets: [S1] });
    const store = services.state.sessions.get(first.sessionKey)!.store;
    const live = await store.write(session());
    const loggedOut = session();
    const deadCookie = await store.write(loggedOut);
    await store.destroy(loggedOut); // logout: an in-memory revocation of a sealed cookie
    const rotated = await compile(services, { secrets: [S2, S1] });
    expect(services.state.sessions.get(rotated.sessionKey)?.store).toBe(store);
    expect((await store.read(live))?.sub).toBe('alice'); // S1 still opens
    expect(await store.read(deadCookie)).toBeUndefined(); // the logout survived the rotation
    await compile(services, { secrets: [S2] }); // S1 retired
    expect(await store.read(live)).toBeUndefined();
  });

  it('a config without oidc providers (rp null) releases every part when it runs; stop releases all', async () => {
    const services = standaloneServices();
    const first = await compile(services);
    const parts = services.state.sessions.get(first.sessionKey)!;
    const disposed = vi.spyOn(parts, 'dispose');
    services.state.commit(null, 0);
    expect(disposed).toHaveBeenCalledTimes(1);
    expect(services.state.sessions.size).toBe(0);
    expect(services.state.providers.size).toBe(0);
    const state = new RpState();
    const cache = new PartCache<{ dispose(): void }>();
    const part = { dispose: vi.fn() };
    cache.take('k', () => part);
    cache.disposeAll();
    expect(part.dispose).toHaveBeenCalledTimes(1);
    state.dispose();
  });
});
