// SIGTERM to a real gateway process holding WebSockets whose upstream keeps its side open (one of them
// stalled mid-frame) and an upgrade whose upstream never answers the handshake: after drain_timeout the
// open sockets get their close (1001 at a frame boundary, else cut) and the process exits within
// drain_timeout + 1 s.
import { spawn, type ChildProcess } from 'node:child_process';
import net, { type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { tempDir } from '../helpers/gateway.ts';
import { bin, ensureBuilt, root } from '../helpers/build.ts';
import { frame, startRawWsUpstream, text, type RawWsUpstream } from '../helpers/ws-upstream.ts';
import { freePort, sleep, waitFor } from '../helpers/wait.ts';

let up: RawWsUpstream;
/** Accepts connections and never answers (an upstream stuck before its 101). */
let mute: net.Server;
const muteSockets = new Set<Socket>();
let child: ChildProcess | undefined;

beforeAll(async () => {
  ensureBuilt();
  up = await startRawWsUpstream();
  mute = net.createServer((s) => {
    muteSockets.add(s);
    s.on('error', () => undefined).resume();
  });
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  child?.kill('SIGKILL');
  for (const s of muteSockets) s.destroy();
  await new Promise<void>((r) => mute.close(() => r()));
  await up?.close();
});

function open(url: string): Promise<WebSocket & { closed: Promise<[number, string]> }> {
  const ws = new WebSocket(url) as WebSocket & { closed: Promise<[number, string]> };
  ws.closed = new Promise((r) => ws.once('close', (code: number, reason: Buffer) => r([code, reason.toString()])));
  ws.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', () => reject(new Error('no 101')));
  });
}

describe('SIGTERM with open WebSockets', () => {
  it('exits within drain_timeout + 1 s whatever the upstreams do', async () => {
    const port = await freePort();
    const mutePort = (mute.address() as net.AddressInfo).port;
    const file = join(tempDir(), 'gateway.yaml');
    writeFileSync(
      file,
      `listen: { address: 127.0.0.1:${port}, plaintext: true }
shutdown: { drain_timeout: 500ms }
reload: { watch: false }
routes:
  - name: mute
    match: { path: /mute }
    upstream: { url: "http://127.0.0.1:${mutePort}", timeout: 30s }
    public: true
  - name: ws
    match: { path: /ws }
    upstream: { url: "${up.url}" }
    public: true
`,
    );
    // The upstream never ends its side, whatever it receives.
    const upstreamSockets: Socket[] = [];
    up.onSocket = (s) => void upstreamSockets.push(s);
    child = spawn(process.execPath, [bin, 'start', '--config', file], { cwd: root, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr?.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const exited = new Promise<number | null>((r) => child?.once('exit', (code) => r(code)));
    await waitFor(() => out.includes('zt-gateway started'), { timeoutMs: 15_000, what: 'the gateway to start' });

    const idle = await open(`ws://127.0.0.1:${port}/ws/idle`);
    const stalled = await open(`ws://127.0.0.1:${port}/ws/stalled`);
    await waitFor(() => upstreamSockets.length === 2, { what: 'two upgraded upstream sockets' });
    (upstreamSockets[0] as Socket).write(text('hello'));
    const f = frame(0x2, Buffer.alloc(10_000));
    (upstreamSockets[1] as Socket).write(f.subarray(0, 100)); // then never the rest
    // And an upgrade the upstream never answers.
    const pending = net.connect(port, '127.0.0.1');
    pending.on('error', () => undefined);
    pending.write(`GET /mute/x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await waitFor(() => muteSockets.size === 1, { what: 'the handshake to reach the mute upstream' });
    await sleep(50);

    const started = Date.now();
    child.kill('SIGTERM');
    const timeout = sleep(5000).then(() => 'timeout' as const);
    const code = await Promise.race([exited, timeout]);
    const took = Date.now() - started;
    expect(code, out).toBe(0);
    expect(took).toBeLessThan(1500);
    expect(took).toBeGreaterThanOrEqual(450);
    expect(await idle.closed).toEqual([1001, 'gateway shutting down']);
    expect((await stalled.closed)[0]).toBe(1006); // no frame boundary: cut
    pending.destroy();
  });
});
