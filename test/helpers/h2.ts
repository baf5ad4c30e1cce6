// node:http2 client helpers for the HTTP/2 tests: one request on a session, with the answer's headers,
// body, and the stream's RST code when it was reset.
import http2, { type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';

export interface H2Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function h2Connect(url: string, opts: http2.SecureClientSessionOptions = {}): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, opts);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

/** Runs `use` on a connected session and always destroys it (a failed assertion leaves no session open). */
export async function withH2Session<T>(url: string, opts: http2.SecureClientSessionOptions, use: (session: ClientHttp2Session) => Promise<T>): Promise<T> {
  const session = await h2Connect(url, opts);
  try {
    return await use(session);
  } finally {
    session.destroy();
  }
}

export function h2Request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let status = 0;
    let answer: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      answer = h as Record<string, string | string[] | undefined>;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status, headers: answer, body: Buffer.concat(chunks).toString('utf8') }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

/** Resolves with the RST_STREAM code the server reset the stream with (or the status, if it answered). */
export function h2Outcome(session: ClientHttp2Session, headers: OutgoingHttpHeaders): Promise<{ status?: number; rstCode?: number }> {
  return new Promise((resolve) => {
    const stream = session.request(headers);
    stream.on('response', (h) => {
      stream.resume();
      stream.on('end', () => resolve({ status: Number(h[':status']) }));
    });
    stream.on('error', () => undefined);
    stream.on('close', () => resolve({ rstCode: stream.rstCode }));
  });
}
