// Shared pieces of the hostile suites (test/attacks): verbatim requests, strict problem-JSON checks, and
// proof that a refused request never reached the upstream and that the gateway keeps serving afterwards.
import net from 'node:net';
import { expect } from 'vitest';
import { request } from 'undici';
import type { TestGateway } from './gateway.ts';
import { rawRequest, type RawResponse } from './raw.ts';
import type { Received, Upstream } from './upstream.ts';
import { waitFor } from './wait.ts';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  request_id: string;
}

/** What every check below reads: a status, lower-cased headers and the body text. */
export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Counts upstream requests when their head arrives (Upstream.received fills only once a body has ended). */
export interface ArrivalCounter {
  readonly count: number;
}

const counters = new WeakMap<Upstream, { count: number }>();

export function arrivals(up: Upstream): ArrivalCounter {
  let c = counters.get(up);
  if (c === undefined) {
    const counter = { count: 0 };
    up.server.on('request', () => counter.count++);
    counters.set(up, counter);
    c = counter;
  }
  return c;
}

export interface RawOptions {
  method?: string;
  /** Host header value; null sends none. Default: the gateway's own authority. */
  host?: string | null;
  /** Extra header lines, sent verbatim and in order (without CRLF). */
  headers?: string[];
  body?: string;
  /** Adds `Connection: close` (default true) so the answer ends with the connection. */
  close?: boolean;
  httpVersion?: string;
}

/** Builds one HTTP/1.1 request byte for byte (latin1), so nothing is normalized on the way out. */
export function rawMessage(port: number, target: string, o: RawOptions = {}): Buffer {
  let text = `${o.method ?? 'GET'} ${target} ${o.httpVersion ?? 'HTTP/1.1'}\r\n`;
  const host = o.host === undefined ? `127.0.0.1:${port}` : o.host;
  if (host !== null) text += `Host: ${host}\r\n`;
  for (const line of o.headers ?? []) text += `${line}\r\n`;
  if (o.close ?? true) text += 'Connection: close\r\n';
  text += `\r\n${o.body ?? ''}`;
  return Buffer.from(text, 'latin1');
}

export function raw(gw: TestGateway, target: string, o: RawOptions = {}): Promise<RawResponse> {
  return rawRequest(gw.port, rawMessage(gw.port, target, o), { timeoutMs: 3000 });
}

/** Writes `data` and reads until the server closes the connection (bounded): for pipelined exchanges. */
export function rawExchange(port: number, data: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.once('connect', () => socket.write(data));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e) => {
      if (chunks.length === 0) reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

/** Well-formed requests through undici, read fully into an Answer. */
export async function get(url: string, headers: Record<string, string | string[]> = {}): Promise<Answer> {
  const res = await request(url, { headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** Status, content type and problem body must all agree on `code`; returns the parsed problem. */
export function expectProblem(answer: Answer, status: number, code: string | readonly string[]): Problem {
  expect(answer.status, answer.body).toBe(status);
  expect(answer.headers['content-type']).toBe('application/problem+json');
  const problem = JSON.parse(answer.body) as Problem;
  const codes = typeof code === 'string' ? [code] : code;
  expect(codes).toContain(problem.code);
  expect(problem.status).toBe(status);
  expect(problem.type).toBe(`urn:zt-gateway:error:${problem.code}`);
  expect(problem.request_id).toMatch(/^[0-9a-f-]{36}$/);
  return problem;
}

/**
 * Runs `send` and asserts the refusal (status + code) and that the upstream saw nothing: neither a request
 * head nor a completed request. The check waits for the gateway to be done with the request, not for a fixed
 * time: for a request the handler took, its decision record (written when the response closes, carrying the
 * answer's request id); for one the HTTP parser refused, the `client error` record with the answer's code (the
 * handler never saw it, so nothing can be forwarded). A refusal that still forwards fails here.
 * `recorded: false` is only for CONNECT, which the listener answers on the socket without any record: the
 * request handler never sees it, and the answer ends with the connection (raw() resolves on its close).
 */
export async function expectRefused(
  gw: TestGateway,
  up: Upstream,
  send: () => Promise<Answer>,
  status: number,
  code: string | readonly string[],
  opts: { recorded?: boolean } = {},
): Promise<Problem> {
  const counter = arrivals(up);
  const heads = counter.count;
  const done = up.received.length;
  const logged = gw.logs.length;
  const answer = await send();
  const problem = expectProblem(answer, status, code);
  if (opts.recorded ?? true) await requestFinished(gw, problem.request_id, problem.code, logged);
  expect(counter.count).toBe(heads);
  expect(up.received.length).toBe(done);
  return problem;
}

/**
 * Waits (bounded) until the gateway has finished request `requestId`: its decision record, or a `client error`
 * record with `code` logged after index `since` of `gw.logs` (parser refusals have no request record).
 */
export async function requestFinished(gw: TestGateway, requestId: string, code: string, since = 0): Promise<Record<string, unknown>> {
  return waitFor(
    () =>
      gw.logs.find((l) => l.msg === 'decision' && l.request_id === requestId) ??
      gw.logs.slice(since).find((l) => l.msg === 'client error' && l.code === code),
    { timeoutMs: 3000, what: `the gateway's record of request ${requestId} (${code})` },
  );
}

let probe = 0;

/** A normal request right after an attack must still be answered 200 and forwarded. */
export async function expectStillServing(gw: TestGateway, up: Upstream): Promise<void> {
  const path = `/still-serving/${++probe}`;
  const answer = await get(`${gw.url}${path}`);
  expect(answer.status).toBe(200);
  expect(up.received.at(-1)?.url).toBe(path);
}

/** The single upstream record for exactly this target (fails on none or several). */
export function receivedOnce(up: Upstream, target: string): Received {
  const matches = up.received.filter((r) => r.url === target);
  expect(matches, `upstream records for ${target}`).toHaveLength(1);
  return matches[0] as Received;
}

/** Every value the upstream saw for a header, matching names case-insensitively with '_' as '-'. */
export function valuesOf(rec: Received, name: string): string[] {
  const wanted = name.toLowerCase().replaceAll('_', '-');
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) {
    if ((rec.rawHeaders[i] as string).toLowerCase().replaceAll('_', '-') === wanted) out.push(rec.rawHeaders[i + 1] as string);
  }
  return out;
}

/** Whether any raw header value the upstream saw contains `marker`. */
export function sawValue(rec: Received, marker: string): boolean {
  for (let i = 1; i < rec.rawHeaders.length; i += 2) if ((rec.rawHeaders[i] as string).includes(marker)) return true;
  return false;
}

/** Splits a pipelined exchange into its responses (Content-Length or chunked bodies), in order. */
export function splitResponses(text: string): Array<{ status: number; head: string; body: string }> {
  const out: Array<{ status: number; head: string; body: string }> = [];
  let rest = text;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`incomplete response head: ${JSON.stringify(rest.slice(0, 80))}`);
    const head = rest.slice(0, end);
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(head);
    if (status === null) throw new Error(`not a status line: ${JSON.stringify(head.slice(0, 80))}`);
    rest = rest.slice(end + 4);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    let body = '';
    if (length !== null) {
      body = rest.slice(0, Number(length[1]));
      rest = rest.slice(Number(length[1]));
    } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      for (;;) {
        const lineEnd = rest.indexOf('\r\n');
        const size = Number.parseInt(rest.slice(0, lineEnd), 16);
        if (lineEnd < 0 || Number.isNaN(size)) throw new Error('malformed chunked body');
        body += rest.slice(lineEnd + 2, lineEnd + 2 + size);
        rest = rest.slice(lineEnd + 2 + size + 2);
        if (size === 0) break;
      }
    } else {
      body = rest;
      rest = '';
    }
    out.push({ status: Number(status[1]), head, body });
  }
  return out;
}
