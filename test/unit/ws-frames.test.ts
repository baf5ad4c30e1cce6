// The frame-header scanner of the WebSocket relay (src/proxy/ws-frames.ts): it finds frame boundaries in
// the upstream → client byte stream whatever the chunking (one byte at a time, frames glued together, a
// header split across chunks), with 7-bit, 16-bit and 64-bit lengths, masked or not; and the close frame it
// sends. Plus the route key `websocket: true | false | { max_lifetime }`.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { closeFrame, FrameScanner } from '../../src/proxy/ws-frames.ts';
import { tempDir } from '../helpers/gateway.ts';
import { frame } from '../helpers/ws-upstream.ts';

function masked(payload: Buffer): Buffer {
  const head = Buffer.from([0x82, 0x80 | payload.length, 1, 2, 3, 4]);
  return Buffer.concat([head, payload.map((b, i) => b ^ [1, 2, 3, 4][i % 4]!)]);
}

/** Every frame boundary offset of `stream`, fed in chunks of `size` bytes. */
function boundaries(stream: Buffer, size: number): number[] {
  const s = new FrameScanner();
  const found: number[] = [];
  for (let at = 0; at < stream.length; at += size) {
    const chunk = stream.subarray(at, Math.min(at + size, stream.length));
    let offset = 0;
    // Walk every boundary in the chunk: at a boundary, step over one byte (the next header's first) and look again.
    for (;;) {
      const rest = chunk.subarray(offset);
      if (rest.length === 0) break;
      const b = s.boundaryIn(rest);
      if (b < 0) break;
      const abs = at + offset + b;
      if (found.at(-1) !== abs) found.push(abs);
      if (b === rest.length) break;
      s.pass(rest.subarray(b, b + 1));
      offset += b + 1;
    }
  }
  return found;
}

describe('FrameScanner', () => {
  const frames = [frame(0x1, Buffer.from('hi')), frame(0x2, Buffer.alloc(0)), frame(0x2, Buffer.alloc(300, 9)), frame(0x2, Buffer.alloc(70_000, 5)), masked(Buffer.from('mask')), frame(0x9, Buffer.from('p'))];
  const stream = Buffer.concat(frames);
  const expected: number[] = [];
  let sum = 0;
  for (const f of frames) {
    expected.push(sum);
    sum += f.length;
  }
  expected.push(sum);

  for (const size of [1, 2, 3, 7, 100, 4096, stream.length]) {
    it(`finds every boundary with chunks of ${size} bytes`, () => {
      expect(boundaries(stream, size)).toEqual(expected);
    });
  }

  it('is at a boundary only between frames', () => {
    const s = new FrameScanner();
    expect(s.atBoundary).toBe(true);
    const f = frame(0x2, Buffer.alloc(200));
    s.pass(f.subarray(0, 1));
    expect(s.atBoundary).toBe(false); // inside the header
    s.pass(f.subarray(1, 10));
    expect(s.atBoundary).toBe(false); // inside the payload
    s.pass(f.subarray(10));
    expect(s.atBoundary).toBe(true);
  });

  it('reports -1 when a chunk holds no boundary, and the offset after the frame that completes in it', () => {
    const s = new FrameScanner();
    const f = frame(0x2, Buffer.alloc(1000));
    s.pass(f.subarray(0, 10));
    expect(s.boundaryIn(f.subarray(10, 500))).toBe(-1);
    expect(s.boundaryIn(Buffer.concat([f.subarray(500), frame(0x1, Buffer.from('x'))]))).toBe(f.length - 500);
  });
});

describe('closeFrame', () => {
  it('is a final close frame with the code and the reason', () => {
    const f = closeFrame(1008, 'session ended');
    expect(f[0]).toBe(0x88);
    expect(f[1]).toBe(2 + 13);
    expect(f.readUInt16BE(2)).toBe(1008);
    expect(f.subarray(4).toString()).toBe('session ended');
  });

  it('caps the reason at 123 bytes (a control frame carries at most 125)', () => {
    expect(closeFrame(1001, 'x'.repeat(200)).length).toBe(4 + 123);
  });
});

describe('route key websocket', () => {
  const yaml = (ws: string) => `listen: { address: 127.0.0.1:0, plaintext: true }
identity_headers: { assertion: false }
routes:
  - name: app
    upstream: { url: http://127.0.0.1:9 }
    public: true
${ws ? `    websocket: ${ws}\n` : ''}`;
  const route = async (ws: string) => (await compileConfig(parseConfigText(yaml(ws), 'gw.yaml', tempDir(), {}))).routes[0];

  it('true (the default), false, or an object that enables it with a lifetime', async () => {
    expect(await route('')).toMatchObject({ websocket: true, websocketLifetime: null });
    expect(await route('true')).toMatchObject({ websocket: true, websocketLifetime: null });
    expect(await route('false')).toMatchObject({ websocket: false, websocketLifetime: null });
    expect(await route('{}')).toMatchObject({ websocket: true, websocketLifetime: null });
    expect(await route('{ max_lifetime: 8h }')).toMatchObject({ websocket: true, websocketLifetime: 8 * 3_600_000 });
  });

  it('refuses a bad duration and unknown keys, naming the key path', async () => {
    for (const bad of ['{ max_lifetime: forever }', '{ lifetime: 8h }', 'yes-please']) {
      const err = await route(bad).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, bad).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems[0]?.keyPath.slice(0, 3)).toEqual(['routes', 0, 'websocket']);
    }
  });
});
