// Custom identity header names (issue 17, item 4): with `identity_headers: { user: X-Remote-User, groups:
// Remote-Groups }` a client's `X-Remote-User_`, `_X-Remote-User` or `Remote-Groups_` reached the upstream, where a
// CGI-style backend (HTTP_X_REMOTE_USER_) or a trimming parser reads them as the real header. Every configured
// name is now stripped in the spellings the identity prefix is: any case, `_` for `-`, leading or trailing `_`.
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raw, receivedOnce, sawValue, valuesOf } from '../helpers/attack.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import type { Received } from '../helpers/upstream.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const SECRET = 'identity-attack-secret-0123456789abcdef0123';
let upstream: Upstream;
let gw: TestGateway;
let token: string;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
identity_providers:
  tokens: { type: jwt, issuer: https://ci.example, audiences: [gw], algorithms: [HS256], secret: ${SECRET} }
routes:
  - name: custom
    match: { path: /custom }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    authenticate: [tokens]
    authorize: { allow: [{ authenticated: true }] }
    identity_headers: { user: X-Remote-User, groups: Remote-Groups }
  - name: public
    match: { path: / }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
`);
  token = await new SignJWT({ groups: ['staff'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('https://ci.example')
    .setAudience('gw')
    .setSubject('alice')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET));
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

/** Raw names the upstream saw that fold (case, `_` as `-`, trimmed) to `name`. */
function spellingsOf(rec: Received, name: string): string[] {
  const want = name.toLowerCase();
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) {
    const n = rec.rawHeaders[i] as string;
    if (n.toLowerCase().replaceAll('_', '-').replace(/^-+|-+$/g, '') === want) out.push(n);
  }
  return out;
}

const SPOOFS = [
  'X-Remote-User_',
  '_X-Remote-User',
  '_X_Remote_User_',
  'x_remote_user',
  'X-REMOTE-USER',
  'X-Remote-User__',
  'Remote-Groups_',
  '_Remote-Groups',
  'remote_groups',
  'REMOTE_GROUPS_',
];

let seq = 0;

describe('custom identity header names are stripped in every spelling', () => {
  it.each(SPOOFS)('%s never reaches the upstream on a public route', async (name) => {
    const path = `/pub/${++seq}`;
    const res = await raw(gw, path, { headers: [`${name}: spoof-marker-${seq}`] });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(sawValue(rec, 'spoof-marker')).toBe(false);
    expect(spellingsOf(rec, 'x-remote-user')).toEqual([]);
    expect(spellingsOf(rec, 'remote-groups')).toEqual([]);
  });

  it.each(SPOOFS)('%s never reaches the upstream next to the verified value on the route that sets it', async (name) => {
    const path = `/custom/${++seq}`;
    const res = await raw(gw, path, { headers: [`Authorization: Bearer ${token}`, `${name}: spoof-marker-${seq}`] });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(sawValue(rec, 'spoof-marker')).toBe(false);
    // Exactly the gateway's own values, under the configured spelling only.
    expect(spellingsOf(rec, 'x-remote-user')).toEqual(['X-Remote-User']);
    expect(valuesOf(rec, 'x-remote-user')).toEqual(['alice']);
    expect(spellingsOf(rec, 'remote-groups')).toEqual(['Remote-Groups']);
    expect(valuesOf(rec, 'remote-groups')).toEqual(['staff']);
  });

  it('names that merely contain the custom name still pass', async () => {
    const path = `/pub/${++seq}`;
    const res = await raw(gw, path, { headers: ['X-Remote-User-Agent: kept-1', 'X_Remote_Users: kept-2', 'Remote-Groups-Hint: kept-3'] });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(valuesOf(rec, 'x-remote-user-agent')).toEqual(['kept-1']);
    expect(valuesOf(rec, 'x_remote_users')).toEqual(['kept-2']);
    expect(valuesOf(rec, 'remote-groups-hint')).toEqual(['kept-3']);
  });
});
