// tracing.propagate: a valid W3C traceparent (and its tracestate) reaches the upstream unchanged and its
// trace id is in the access log and the decision record; invalid ones are dropped (strict version-00 form).
// Off (the default), the gateway does not touch them: forwarded like any other header, nothing logged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawMessage, valuesOf } from '../helpers/attack.ts';
import { publicConfig, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { rawRequest } from '../helpers/raw.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const VALID = `00-${TRACE}-00f067aa0ba902b7-01`;

let upstream: Upstream;
let on: TestGateway;
let off: TestGateway;
let n = 0;

beforeAll(async () => {
  upstream = await startUpstream();
  on = await startGateway(publicConfig(upstream.url, 'tracing: { propagate: true }'));
  off = await startGateway(publicConfig(upstream.url));
});

afterAll(async () => {
  await on?.close();
  await off?.close();
  await upstream?.close();
});

/** Sends the header lines verbatim; returns what the upstream saw and the gateway's two records. */
async function send(gw: TestGateway, headers: string[]) {
  const path = `/t/${++n}`;
  const res = await rawRequest(gw.port, rawMessage(gw.port, path, { headers }), { timeoutMs: 3000 });
  expect(res.status).toBe(200);
  const seen = upstream.received.find((r) => r.url === path);
  expect(seen).toBeDefined();
  const id = valuesOf(seen!, 'x-request-id')[0];
  // Both records are written when the response closes, which can be just after the client has read it.
  const access = await waitFor(() => gw.logs.find((l) => l.msg === 'request' && l.req_id === id), { what: `the access record of ${id}` });
  const decision = await waitFor(() => gw.logs.find((l) => l.msg === 'decision' && l.request_id === id), { what: `the decision record of ${id}` });
  return { traceparent: valuesOf(seen!, 'traceparent'), tracestate: valuesOf(seen!, 'tracestate'), access, decision };
}

describe('tracing.propagate: true', () => {
  it('passes a valid traceparent and tracestate through and logs the trace id', async () => {
    const r = await send(on, [`traceparent: ${VALID}`, 'tracestate: congo=t61rcWkgMzE,rojo=00f067aa0ba902b7']);
    expect(r.traceparent).toEqual([VALID]);
    expect(r.tracestate).toEqual(['congo=t61rcWkgMzE,rojo=00f067aa0ba902b7']);
    expect(r.access.trace_id).toBe(TRACE);
    expect(r.decision.trace_id).toBe(TRACE);
  });

  it.each([
    ['upper-case hex', `00-${TRACE.toUpperCase()}-00f067aa0ba902b7-01`],
    ['version ff', `ff-${TRACE}-00f067aa0ba902b7-01`],
    ['a future version (only 00 is accepted)', `01-${TRACE}-00f067aa0ba902b7-01`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
    ['all-zero parent id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['an extra field', `${VALID}-extra`],
    ['a short trace id', `00-${TRACE.slice(1)}-00f067aa0ba902b7-01`],
    ['spaces', ` ${VALID} x`],
    ['log injection', `00-${TRACE}-00f067aa0ba902b7-01","trace_id":"forged`],
  ])('drops an invalid traceparent (%s) with its tracestate', async (_name, value) => {
    const r = await send(on, [`traceparent: ${value}`, 'tracestate: rojo=00f067aa0ba902b7']);
    expect(r.traceparent).toEqual([]);
    expect(r.tracestate).toEqual([]);
    expect(r.access.trace_id).toBeUndefined();
    expect(r.decision.trace_id).toBeUndefined();
  });

  it('drops two traceparent headers (ambiguous parent)', async () => {
    const r = await send(on, [`traceparent: ${VALID}`, `traceparent: 00-${'1'.repeat(32)}-00f067aa0ba902b7-01`]);
    expect(r.traceparent).toEqual([]);
    expect(r.access.trace_id).toBeUndefined();
  });

  it('keeps a valid traceparent but drops an oversized or non-printable tracestate', async () => {
    const big = await send(on, [`traceparent: ${VALID}`, `tracestate: a=${'x'.repeat(600)}`]);
    expect(big.traceparent).toEqual([VALID]);
    expect(big.tracestate).toEqual([]);
    const odd = await send(on, [`traceparent: ${VALID}`, 'tracestate: a=\xe9b']); // obs-text: Node's parser lets it in
    expect(odd.traceparent).toEqual([VALID]);
    expect(odd.tracestate).toEqual([]);
  });
});

describe('tracing off (default)', () => {
  it('forwards traceparent untouched, valid or not, and logs no trace id', async () => {
    const valid = await send(off, [`traceparent: ${VALID}`]);
    expect(valid.traceparent).toEqual([VALID]);
    expect(valid.access.trace_id).toBeUndefined();
    const junk = await send(off, ['traceparent: not-a-trace', 'tracestate: whatever']);
    expect(junk.traceparent).toEqual(['not-a-trace']);
    expect(junk.tracestate).toEqual(['whatever']);
    expect(junk.decision.trace_id).toBeUndefined();
  });
});
