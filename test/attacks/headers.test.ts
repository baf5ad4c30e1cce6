// Header hygiene against a real gateway and upstream (DESIGN.md §4): spoofable, hop-by-hop and rewrite
// headers never reach the upstream, the gateway's own X-Forwarded-* and X-Request-Id replace the client's
// (believed only from trusted_proxies), legitimate headers pass, and upstream banners and hop-by-hop
// response headers never reach the client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { get, raw, receivedOnce, sawValue, valuesOf } from '../helpers/attack.ts';
import { publicConfig, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Received, type Upstream } from '../helpers/upstream.ts';

let upstream: Upstream;
let gw: TestGateway; // default config: no trusted_proxies
let trusted: TestGateway; // trusted_proxies: [127.0.0.1/32]
let fromOtherLoopback: Agent; // connects from 127.0.0.2: a peer outside trusted_proxies

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    if (req.url?.startsWith('/resp-split/')) {
      // The same declaration split over two Connection lines (RFC 9110 §5.3 allows it).
      res.writeHead(200, ['Connection', 'keep-alive', 'Connection', 'X-Upstream-Hop', 'X-Upstream-Hop', 'hop-secret', 'Content-Length', '2']);
      res.end('ok');
      return true;
    }
    if (!req.url?.startsWith('/resp/')) return false;
    // A legacy app that leaks its software and declares its own hop-by-hop header.
    res.setHeader('Server', 'Apache/2.2.3 (CentOS)');
    res.setHeader('X-Powered-By', 'PHP/5.2.17');
    res.setHeader('X-AspNet-Version', '2.0.50727');
    res.setHeader('Connection', 'keep-alive, X-Upstream-Hop');
    res.setHeader('X-Upstream-Hop', 'hop-secret');
    res.setHeader('Proxy-Authenticate', 'Basic realm="upstream"');
    res.setHeader('X-Request-Id', 'upstream-chosen-id');
    res.setHeader('X-App-Result', 'kept');
    res.setHeader('Content-Type', 'text/plain');
    res.end('ok');
    return true;
  });
  gw = await startGateway(publicConfig(upstream.url));
  trusted = await startGateway(publicConfig(upstream.url, 'trusted_proxies: [127.0.0.1/32]'));
  fromOtherLoopback = new Agent({ localAddress: '127.0.0.2' });
});
afterAll(async () => {
  await fromOtherLoopback?.close();
  await trusted?.close();
  await gw?.close();
  await upstream?.close();
});

/** Raw header names the upstream saw, lower-cased, duplicates kept. */
function names(rec: Received): string[] {
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) out.push((rec.rawHeaders[i] as string).toLowerCase());
  return out;
}

/** What the gateway itself sets on every forwarded request (src/proxy/forward.ts). */
function expectGatewayForwarding(rec: Received, gateway: TestGateway, xff = '127.0.0.1'): void {
  expect(valuesOf(rec, 'x-forwarded-for')).toEqual([xff]);
  expect(valuesOf(rec, 'forwarded')).toEqual([`for=${xff};proto=http;host="127.0.0.1:${gateway.port}"`]);
  expect(valuesOf(rec, 'x-forwarded-proto')).toEqual(['http']);
  expect(valuesOf(rec, 'x-forwarded-host')).toEqual([`127.0.0.1:${gateway.port}`]);
  expect(valuesOf(rec, 'x-request-id')).toHaveLength(1);
  expect(valuesOf(rec, 'x-request-id')[0]).toMatch(UUID);
}

let seq = 0;

describe('stripped on the way in (request still forwarded)', () => {
  // Every value carries a marker: it must not appear in ANY header the upstream saw, under any name.
  it.each([
    // identity prefix, with case and '_' variants
    'X-ZT-User',
    'x-zt-user',
    'X_ZT_User',
    'X-Zt-Groups',
    'x_zt_email',
    'X-ZT-Assertion',
    'X-ZT-Auth-Method',
    // Proxy-*
    'Proxy-Authorization',
    'Proxy-Foo',
    'Proxy_Authorization',
    // rewrites some backends honour
    'X-Original-URL',
    'X-Rewrite-URL',
    'X-HTTP-Method-Override',
    'X-HTTP-Method',
    'X-Method-Override',
    'X_Original_URL',
    // client-address and routing claims
    'X-Forwarded-For',
    'X-Forwarded-Host',
    'X-Forwarded-Proto',
    'X-Forwarded-Port',
    'X-Forwarded-Prefix',
    'X-Forwarded-Server',
    'X_Forwarded_For',
    'x_forwarded_host',
    'Forwarded',
    'X-Real-IP',
    'True-Client-IP',
    'X-Client-IP',
    'X-Cluster-Client-IP',
    'X_Real_IP',
    'X-Request-Id',
  ])('%s', async (name) => {
    const path = `/strip/${++seq}`;
    const marker = `spoofed-${seq}-marker`;
    const res = await get(`${gw.url}${path}`, { [name]: marker });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(sawValue(rec, marker), `${name} value reached the upstream`).toBe(false);
    // The literal name is gone unless it is one the gateway sets itself (then it is the gateway's value).
    const literal = names(rec).filter((n) => n === name.toLowerCase());
    if (['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id', 'forwarded'].includes(name.toLowerCase())) {
      expect(literal).toHaveLength(1);
    } else {
      expect(literal).toEqual([]);
    }
    expect(names(rec).some((n) => n.replaceAll('_', '-').startsWith('x-zt-'))).toBe(false);
    expectGatewayForwarding(rec, gw);
  });

  it('strips many spoofed headers at once and keeps the legitimate ones around them', async () => {
    const path = `/strip/${++seq}`;
    const res = await get(`${gw.url}${path}`, {
      'X-App-Before': 'a',
      'X-ZT-User': 'admin',
      'X-ZT-Groups': 'admins',
      'X-Forwarded-For': '10.0.0.1',
      'X-Original-URL': '/admin',
      'X-App-After': 'b',
    });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(valuesOf(rec, 'x-app-before')).toEqual(['a']);
    expect(valuesOf(rec, 'x-app-after')).toEqual(['b']);
    expect(valuesOf(rec, 'x-zt-user')).toEqual([]);
    expect(valuesOf(rec, 'x-zt-groups')).toEqual([]);
    expect(valuesOf(rec, 'x-original-url')).toEqual([]);
    expectGatewayForwarding(rec, gw);
  });

  it('replaces a client X-Request-Id with a generated one (also on the response)', async () => {
    const path = `/strip/${++seq}`;
    const res = await request(`${gw.url}${path}`, { headers: { 'x-request-id': 'client-chosen-id' } });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    const rec = receivedOnce(upstream, path);
    const [id] = valuesOf(rec, 'x-request-id');
    expect(id).toMatch(UUID);
    expect(res.headers['x-request-id']).toBe(id);
  });
});

describe('`_` spellings of framing and identity headers are dropped (sent raw)', () => {
  // A CGI/WSGI-style backend maps `Content_Length` and `Content-Length` to the same variable: the upstream
  // must only ever see the spelling the gateway checked or set.
  it.each<[string, string]>([
    ['Content_Length', '5'],
    ['content_length', '0'],
    ['Content-Length_', '7'],
    ['_Content-Length', '7'],
    ['Transfer_Encoding', 'chunked'],
    ['Host_', 'evil-host-marker.example'],
    ['_Host', 'evil-host-marker.example'],
    ['Authorization_', 'Bearer spoof-marker'],
    ['Cookie_', 'session=spoof-marker'],
    ['X_Forwarded_Proto', 'https-spoof-marker'],
    ['X_Forwarded_Host', 'spoof-marker.example'],
    ['Forwarded_', 'for=spoof-marker'],
    ['X_Request_Id', 'spoof-marker-id'],
    ['X_Real_IP', 'spoof-marker-ip'],
    ['Proxy_Connection', 'spoof-marker'],
    ['X_ZT_User_', 'spoof-marker'],
  ])('%s: %s', async (name, value) => {
    const path = `/underscore/${++seq}`;
    const res = await raw(gw, path, { headers: [`${name}: ${value}`] });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(names(rec), `${name} reached the upstream`).not.toContain(name.toLowerCase());
    expect(names(rec).some((n) => n.includes('_')), 'no `_` name reached the upstream').toBe(false);
    expect(sawValue(rec, 'spoof-marker')).toBe(false);
    expect(rec.bodyBytes).toBe(0);
    expectGatewayForwarding(rec, gw);
  });

  it('a body framed by Content-Length arrives whole next to a Content_Length that lies', async () => {
    const path = `/underscore/${++seq}`;
    const res = await raw(gw, path, { method: 'POST', headers: ['Content_Length: 2', 'Content-Length: 5'], body: 'hello' });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(valuesOf(rec, 'content-length')).toEqual(['5']);
    expect(names(rec)).not.toContain('content_length');
    expect(rec.bodyBytes).toBe(5);
  });

  it('other `_` names (not framing or identity) still pass', async () => {
    const path = `/underscore/${++seq}`;
    const res = await raw(gw, path, { headers: ['X_App_Thing: kept-1', 'Accept_Language_Hint: kept-2'] });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(valuesOf(rec, 'x_app_thing')).toEqual(['kept-1']);
    expect(valuesOf(rec, 'accept_language_hint')).toEqual(['kept-2']);
  });
});

describe('hop-by-hop headers are stripped (sent raw: undici refuses to send most of them)', () => {
  it.each<[string, string[], string[]]>([
    ['Connection-listed custom header', ['Connection: close, X-Secret-Hop', 'X-Secret-Hop: hop-marker'], ['x-secret-hop']],
    ['Connection-listed, other case and _', ['Connection: close, x_SECRET_hop', 'X-Secret-Hop: hop-marker'], ['x-secret-hop']],
    ['Connection-listed on a second Connection line', ['Connection: close', 'Connection: X-Secret-Hop', 'X-Secret-Hop: hop-marker'], ['x-secret-hop']],
    ['Connection-listed, several tokens', ['Connection: X-A-Hop, close ,X-B-Hop', 'X-A-Hop: hop-marker', 'X-B-Hop: hop-marker'], ['x-a-hop', 'x-b-hop']],
    ['Keep-Alive', ['Connection: close', 'Keep-Alive: timeout=99, hop-marker'], ['keep-alive']],
    ['TE', ['Connection: close', 'TE: trailers, hop-marker'], ['te']],
    ['Trailer', ['Connection: close', 'Trailer: X-Hop-Marker'], ['trailer']],
    ['Proxy-Connection', ['Connection: close', 'Proxy-Connection: hop-marker'], ['proxy-connection']],
    // (An h2c upgrade offer is no longer served as a plain request: refused, test/attacks/upgrade.test.ts.)
  ])('%s', async (_label, headers, gone) => {
    const path = `/hop/${++seq}`;
    const res = await raw(gw, path, { headers, close: false });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    for (const n of gone) expect(names(rec), n).not.toContain(n);
    expect(sawValue(rec, 'hop-marker') || sawValue(rec, 'X-Hop-Marker')).toBe(false);
    // Whatever Connection the upstream saw is the forwarder's own, never the client's tokens.
    const connection = valuesOf(rec, 'connection');
    expect(connection.length).toBeLessThanOrEqual(1);
    expect(connection.join()).not.toMatch(/close|hop|upgrade|http2/i);
    expectGatewayForwarding(rec, gw);
  });
});

describe('legitimate headers still arrive', () => {
  it('Cookie, Accept, User-Agent, Authorization, custom and prefix-look-alike headers pass unchanged', async () => {
    const path = `/legit/${++seq}`;
    const headers = {
      Cookie: 'session=abc; theme=dark',
      Accept: 'application/json',
      'User-Agent': 'legacy-client/1.0',
      Authorization: 'Basic dXNlcjpwYXNz',
      'X-App-Thing': 'thing-1',
      'X-ZTuser': 'not-under-the-prefix',
      Proxyable: 'yes',
      'X-Forwarding-Mode': 'direct',
      'X-Requested-With': 'XMLHttpRequest',
    };
    const res = await get(`${gw.url}${path}`, headers);
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    for (const [name, value] of Object.entries(headers)) expect(valuesOf(rec, name), name).toEqual([value]);
  });

  it('repeated custom headers arrive in order', async () => {
    const path = `/legit/${++seq}`;
    const res = await raw(gw, path, { headers: ['X-App-Thing: one', 'Accept: text/html', 'X-App-Thing: two'] });
    expect(res.status).toBe(200);
    expect(valuesOf(receivedOnce(upstream, path), 'x-app-thing')).toEqual(['one', 'two']);
  });
});

describe('X-Forwarded-For and X-Request-Id are believed only from trusted_proxies', () => {
  it('trusted peer: the X-Forwarded-For chain is kept and the socket address appended', async () => {
    const path = `/trusted/${++seq}`;
    const res = await get(`${trusted.url}${path}`, { 'X-Forwarded-For': '1.2.3.4' });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(valuesOf(rec, 'x-forwarded-for')).toEqual(['1.2.3.4, 127.0.0.1']);
  });

  it('trusted peer: a longer chain and repeated X-Forwarded-For lines are joined in order', async () => {
    const path = `/trusted/${++seq}`;
    const res = await raw(trusted, path, { headers: ['X-Forwarded-For: 1.2.3.4, 10.0.0.1', 'X-Forwarded-For: 10.0.0.2'] });
    expect(res.status).toBe(200);
    expect(valuesOf(receivedOnce(upstream, path), 'x-forwarded-for')).toEqual(['1.2.3.4, 10.0.0.1, 10.0.0.2, 127.0.0.1']);
  });

  it('trusted peer: a valid X-Request-Id is kept, upstream and on the response', async () => {
    const path = `/trusted/${++seq}`;
    const res = await request(`${trusted.url}${path}`, { headers: { 'x-request-id': 'edge-req.42:a_b-c' } });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(valuesOf(receivedOnce(upstream, path), 'x-request-id')).toEqual(['edge-req.42:a_b-c']);
    expect(res.headers['x-request-id']).toBe('edge-req.42:a_b-c');
  });

  it.each([
    ['with characters outside the allowed set', 'id/with/slashes'],
    ['with a space', 'two words'],
    ['longer than 128 characters', 'a'.repeat(129)],
  ])('trusted peer: an X-Request-Id %s is replaced', async (_label, id) => {
    const path = `/trusted/${++seq}`;
    const res = await get(`${trusted.url}${path}`, { 'X-Request-Id': id });
    expect(res.status).toBe(200);
    const [got, ...more] = valuesOf(receivedOnce(upstream, path), 'x-request-id');
    expect(more).toEqual([]);
    expect(got).toMatch(UUID);
  });

  it('trusted peer: X_Forwarded_For (underscore) is not believed', async () => {
    const path = `/trusted/${++seq}`;
    const res = await get(`${trusted.url}${path}`, { X_Forwarded_For: '6.6.6.6' });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(valuesOf(rec, 'x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(sawValue(rec, '6.6.6.6')).toBe(false);
  });

  it('untrusted peer (default config): X-Forwarded-For and X-Request-Id are replaced', async () => {
    const path = `/untrusted/${++seq}`;
    const res = await get(`${gw.url}${path}`, { 'X-Forwarded-For': '1.2.3.4', 'X-Request-Id': 'edge-req-1' });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(valuesOf(rec, 'x-forwarded-for')).toEqual(['127.0.0.1']);
    const [id] = valuesOf(rec, 'x-request-id');
    expect(id).toMatch(UUID);
    expect(res.headers['x-request-id']).toBe(id);
    expect(sawValue(rec, '1.2.3.4')).toBe(false);
    expect(sawValue(rec, 'edge-req-1')).toBe(false);
  });

  it('untrusted peer of a gateway with trusted_proxies (127.0.0.2 is outside 127.0.0.1/32): replaced', async () => {
    const path = `/untrusted/${++seq}`;
    const res = await request(`${trusted.url}${path}`, {
      dispatcher: fromOtherLoopback,
      headers: { 'x-forwarded-for': '1.2.3.4', 'x-request-id': 'edge-req-2' },
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(valuesOf(rec, 'x-forwarded-for')).toEqual(['127.0.0.2']);
    const [id] = valuesOf(rec, 'x-request-id');
    expect(id).toMatch(UUID);
    expect(res.headers['x-request-id']).toBe(id);
  });
});

describe('Forwarded (RFC 7239), X-Forwarded-Proto and -Host: rebuilt, believed only from trusted_proxies', () => {
  const spoof = {
    Forwarded: 'for=6.6.6.6;proto=https;host=admin.internal',
    'X-Forwarded-Proto': 'https',
    'X-Forwarded-Host': 'admin.internal',
  };

  it('untrusted peer: spoofed Forwarded / X-Forwarded-Proto / -Host never reach the upstream', async () => {
    const path = `/fwd/${++seq}`;
    const res = await get(`${gw.url}${path}`, spoof);
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(sawValue(rec, '6.6.6.6')).toBe(false);
    expect(sawValue(rec, 'admin.internal')).toBe(false);
    expect(sawValue(rec, 'https')).toBe(false);
    expectGatewayForwarding(rec, gw);
  });

  it('untrusted peer of a gateway with trusted_proxies (127.0.0.2): the same spoof is replaced', async () => {
    const path = `/fwd/${++seq}`;
    const res = await request(`${trusted.url}${path}`, { dispatcher: fromOtherLoopback, headers: spoof });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(sawValue(rec, '6.6.6.6')).toBe(false);
    expect(sawValue(rec, 'admin.internal')).toBe(false);
    expectGatewayForwarding(rec, trusted, '127.0.0.2');
  });

  it('trusted peer: the Forwarded chain is kept and the gateway appends its own element; proto/host believed', async () => {
    const path = `/fwd/${++seq}`;
    const res = await get(`${trusted.url}${path}`, {
      Forwarded: 'for=192.0.2.60;proto=https;host=app.example.com, for="[2001:db8::1]:4711"',
      'X-Forwarded-Proto': 'HTTPS',
      'X-Forwarded-Host': 'App.Example.com:8443',
    });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(valuesOf(rec, 'forwarded')).toEqual([
      `for=192.0.2.60;proto=https;host=app.example.com, for="[2001:db8::1]:4711", for=127.0.0.1;proto=http;host="127.0.0.1:${trusted.port}"`,
    ]);
    expect(valuesOf(rec, 'x-forwarded-proto')).toEqual(['https']);
    expect(valuesOf(rec, 'x-forwarded-host')).toEqual(['app.example.com:8443']);
  });

  it('trusted peer: two Forwarded lines are one chain, in order', async () => {
    const path = `/fwd/${++seq}`;
    const res = await raw(trusted, path, { headers: ['Forwarded: for=192.0.2.1', 'Forwarded: for=192.0.2.2;proto=http'] });
    expect(res.status).toBe(200);
    expect(valuesOf(receivedOnce(upstream, path), 'forwarded')).toEqual([
      `for=192.0.2.1, for=192.0.2.2;proto=http, for=127.0.0.1;proto=http;host="127.0.0.1:${trusted.port}"`,
    ]);
  });

  it.each<[string, string[]]>([
    ['Forwarded that is not RFC 7239', ['Forwarded: 6.6.6.6 evil-marker']],
    ['Forwarded with an unterminated quote', ['Forwarded: for="6.6.6.6;host=evil-marker']],
    ['Forwarded pair without a value', ['Forwarded: for=;host=evil-marker']],
    ['X-Forwarded-Proto other than http/https', ['X-Forwarded-Proto: javascript-evil-marker']],
    ['X-Forwarded-Proto listing two', ['X-Forwarded-Proto: https, http']],
    ['X-Forwarded-Proto on two lines', ['X-Forwarded-Proto: https', 'X-Forwarded-Proto: https']],
    ['X-Forwarded-Host with userinfo', ['X-Forwarded-Host: evil-marker@app.example.com']],
    ['X-Forwarded-Host with a path', ['X-Forwarded-Host: app.example.com/evil-marker']],
    ['X-Forwarded-Host with two hosts', ['X-Forwarded-Host: a.example, evil-marker.example']],
    ['X-Forwarded-Host with a bad port', ['X-Forwarded-Host: evil-marker.example:99999']],
  ])('trusted peer: invalid %s is replaced by the gateway’s own value', async (_label, headers) => {
    const path = `/fwd/${++seq}`;
    const res = await raw(trusted, path, { headers });
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, path);
    expect(sawValue(rec, 'evil-marker')).toBe(false);
    expect(sawValue(rec, 'https')).toBe(false);
    expectGatewayForwarding(rec, trusted);
  });
});

describe('Forwarded from an IPv6 peer', () => {
  it('quotes the address: for="[::1]"', async () => {
    const v6 = await startGateway(publicConfig(upstream.url).replace('127.0.0.1:0', '"[::1]:0"'));
    try {
      const path = `/fwd6/${++seq}`;
      const res = await request(`http://[::1]:${v6.port}${path}`);
      await res.body.text();
      expect(res.statusCode).toBe(200);
      const rec = receivedOnce(upstream, path);
      expect(valuesOf(rec, 'forwarded')).toEqual([`for="[::1]";proto=http;host="[::1]:${v6.port}"`]);
      expect(valuesOf(rec, 'x-forwarded-for')).toEqual(['::1']);
    } finally {
      await v6.close();
    }
  });
});

describe('upstream response hygiene', () => {
  it('removes Server and X-Powered-By from the default upstream answer', async () => {
    const res = await request(`${gw.url}/resp-default/${++seq}`);
    await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(res.headers.server).toBeUndefined();
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['content-type']).toBe('application/json');
  });

  it('removes banners, Proxy-Authenticate, Connection-listed headers and the upstream request id', async () => {
    const path = `/resp/${++seq}`;
    const res = await request(`${gw.url}${path}`);
    expect(await res.body.text()).toBe('ok');
    expect(res.statusCode).toBe(200);
    for (const name of ['server', 'x-powered-by', 'x-aspnet-version', 'x-upstream-hop', 'proxy-authenticate']) {
      expect(res.headers[name], name).toBeUndefined();
    }
    expect(String(res.headers.connection ?? '')).not.toMatch(/x-upstream-hop/i);
    expect(res.headers['x-app-result']).toBe('kept');
    const [id] = valuesOf(receivedOnce(upstream, path), 'x-request-id');
    expect(res.headers['x-request-id']).toBe(id);
  });

  // Two Connection lines arrive from undici as an array: the headers listed on either are hop-by-hop.
  it('removes a header listed on a second Connection line', async () => {
    const res = await request(`${gw.url}/resp-split/${++seq}`);
    expect(await res.body.text()).toBe('ok');
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-upstream-hop']).toBeUndefined();
  });
});
