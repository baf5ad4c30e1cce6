// Every upgraded WebSocket is a live connection: registered in runtime.live from the upstream's 101 until it
// ends, and endable by a trigger through the registry.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startRawWsUpstream, text, type RawWsUpstream } from '../helpers/ws-upstream.ts';
import { waitFor } from '../helpers/wait.ts';

let up: RawWsUpstream;
let gw: TestGateway;
const clients: WebSocket[] = [];

beforeAll(async () => {
  up = await startRawWsUpstream();
  gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
admin: { listen: 127.0.0.1:0 }
shutdown: { drain_timeout: 1s }
routes:
  - name: ws
    match: { path: /ws }
    upstream: { url: ${up.url} }
    public: true
`);
});

afterEach(() => {
  for (const c of clients.splice(0)) c.terminate();
  up.onSocket = () => undefined;
});

afterAll(async () => {
  await gw?.close();
  await up?.close();
});

type Client = WebSocket & { received: Buffer[] };

/** A client that keeps every message it receives (from the first, which may arrive with the handshake). */
async function open(path = '/ws/x'): Promise<Client> {
  const ws = Object.assign(new WebSocket(`ws://127.0.0.1:${gw.port}${path}`), { received: [] as Buffer[] });
  ws.on('message', (d: Buffer) => ws.received.push(d));
  clients.push(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

const live = () => gw.gateway.runtime.live;

describe('registration', () => {
  it('registers an upgraded WebSocket with its context until it ends', async () => {
    up.onSocket = (s) => s.write(text('hello'));
    const ws = await open();
    await waitFor(() => ws.received.length === 1, { what: 'the first message' });
    await waitFor(() => live().size === 1, { what: 'one live connection' });
    const [conn] = [...live()];
    expect(conn?.kind).toBe('websocket');
    expect(conn?.ctx.route?.name).toBe('ws');
    const closed = new Promise<[number, string]>((r) => ws.once('close', (code, reason) => r([code, reason.toString()])));
    conn?.end('logout');
    expect(await closed).toEqual([1008, 'session ended']);
    await waitFor(() => live().size === 0, { what: 'no live connection' });
  });
});
