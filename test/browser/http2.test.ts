// Chromium against the h2-enabled TLS listener: pages load over HTTP/2 (ALPN h2), and a WebSocket still
// works: SETTINGS_ENABLE_CONNECT_PROTOCOL is never advertised, so Chromium opens it over HTTP/1.1.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { Browser } from 'playwright-core';
import { createCA, type Issued } from '../../tools/pki.ts';
import { describeWithChromium, launchChromium } from '../helpers/browser.ts';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';

let leaf: Issued;
let upstream: http.Server;
let wss: WebSocketServer;
let gw: TestGateway;
let browser: Browser;
const upgrades: string[] = [];

describeWithChromium('Chromium and the h2 listener', () => {
  beforeAll(async () => {
    const ca = await createCA('h2 browser CA');
    leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'] });
    upstream = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>h2</title><p id="path">${req.url}</p>`);
    });
    wss = new WebSocketServer({ noServer: true });
    upstream.on('upgrade', (req, socket, head) => {
      upgrades.push(`HTTP/${req.httpVersion} ${req.url}`);
      wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(`echo:${String(m)}`)));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const port = (upstream.address() as AddressInfo).port;
    gw = await startGateway(`listen:
  address: 127.0.0.1:0
  tls: { cert: gw.crt, key: gw.key }
shutdown: { drain_timeout: 1s }
routes:
  - name: app
    match: { path: / }
    upstream: { url: http://127.0.0.1:${port}, timeout: 2s, connect_timeout: 1s }
    public: true
    websocket: true
`, { dir: tempDir('ztgw-h2b-'), files: { 'gw.crt': leaf.cert, 'gw.key': leaf.key } });
    browser = await launchChromium([leaf.cert]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.close();
    wss?.close();
    upstream?.closeAllConnections();
    await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
  });

  it('loads the page over h2 and keeps its WebSocket on HTTP/1.1', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`https://localhost:${gw.port}/hello`);
      expect(await page.locator('#path').innerText()).toBe('/hello');
      const protocol = await page.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol);
      expect(protocol).toBe('h2');
      const echoed = await page.evaluate(
        (url) =>
          new Promise<string>((resolve, reject) => {
            const ws = new WebSocket(url);
            ws.onopen = () => ws.send('hi');
            ws.onmessage = (e) => resolve(String(e.data));
            ws.onerror = () => reject(new Error('websocket failed'));
          }),
        `wss://localhost:${gw.port}/chat`,
      );
      expect(echoed).toBe('echo:hi');
      expect(upgrades).toEqual(['HTTP/1.1 /chat']);
    } finally {
      await page.close();
    }
  });
});
