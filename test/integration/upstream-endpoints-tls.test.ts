// HTTPS endpoints: each is reached with its own TLS server name and Host (the host of its own URL), for plain
// requests and WebSocket upgrades alike; a certificate for another endpoint's name is not accepted.
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type tls from 'node:tls';
import WebSocket, { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { createCA, type Issued } from '../../tools/pki.ts';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';

const seen: Array<{ backend: string; servername: string | false | undefined; host: string | undefined; upgrade: boolean }> = [];
const servers: https.Server[] = [];
let gw: TestGateway;
let ports: [number, number];

async function backend(name: string, cert: Issued): Promise<number> {
  const server = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    seen.push({ backend: name, servername: (req.socket as tls.TLSSocket).servername, host: req.headers.host, upgrade: false });
    req.resume();
    req.on('end', () => res.writeHead(200, { 'x-upstream': name }).end(name));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    seen.push({ backend: name, servername: (req.socket as tls.TLSSocket).servername, host: req.headers.host, upgrade: true });
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(`${name}:${m}`)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  const ca = await createCA('endpoints test CA');
  const byName = await backend('byname', await ca.issue({ cn: 'localhost', dns: ['localhost'] }));
  const byIp = await backend('byip', await ca.issue({ cn: '127.0.0.1', ips: ['127.0.0.1'] }));
  // A certificate for localhost only, reached by IP: refused (the IP endpoint's name is its IP).
  const wrong = await backend('wrong', await ca.issue({ cn: 'localhost', dns: ['localhost'] }));
  const dir = tempDir('ztgw-ep-tls-');
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
  gw = await startGateway(
    `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
routes:
  - name: fleet
    match: { path: /fleet }
    upstream: { endpoints: ["https://localhost:${byName}", "https://127.0.0.1:${byIp}"], tls: { ca: ca.crt }, timeout: 2s, connect_timeout: 1s }
    public: true
  - name: wrong
    match: { path: /wrong }
    upstream: { endpoints: ["https://127.0.0.1:${wrong}"], tls: { ca: ca.crt }, timeout: 2s, connect_timeout: 1s }
    public: true
`,
    { dir },
  );
  ports = [byName, byIp];
});

afterAll(async () => {
  await gw?.close();
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

describe('HTTPS endpoints', () => {
  it('each endpoint gets its own SNI and Host, on requests and WebSocket upgrades', async () => {
    const [byName, byIp] = ports;
    for (let i = 0; i < 2; i++) {
      const r = await request(`${gw.url}/fleet/x`);
      expect(r.statusCode).toBe(200);
      await r.body.text();
    }
    for (let i = 0; i < 2; i++) {
      const ws = new WebSocket(`${gw.url.replace('http:', 'ws:')}/fleet/socket`);
      const reply = await new Promise<string>((resolve, reject) => {
        ws.once('open', () => ws.send('hi'));
        ws.once('message', (m) => resolve(m.toString()));
        ws.once('error', reject);
      });
      expect(['byname:hi', 'byip:hi']).toContain(reply);
      ws.close();
    }
    const plain = seen.filter((s) => !s.upgrade);
    expect(plain).toEqual([
      { backend: 'byname', servername: 'localhost', host: `localhost:${byName}`, upgrade: false },
      { backend: 'byip', servername: false, host: `127.0.0.1:${byIp}`, upgrade: false },
    ]);
    const upgrades = seen.filter((s) => s.upgrade);
    expect(upgrades).toEqual([
      { backend: 'byname', servername: 'localhost', host: `localhost:${byName}`, upgrade: true },
      { backend: 'byip', servername: false, host: `127.0.0.1:${byIp}`, upgrade: true },
    ]);
  });

  it('a certificate that does not name the endpoint is refused (502), never accepted for another name', async () => {
    const r = await request(`${gw.url}/wrong/x`);
    expect(r.statusCode).toBe(502);
    expect(((await r.body.json()) as { code: string }).code).toBe('GW_ERR_UPSTREAM_UNAVAILABLE');
    expect(seen.some((s) => s.backend === 'wrong')).toBe(false);
  });
});
