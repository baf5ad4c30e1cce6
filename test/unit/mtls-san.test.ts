// Subject-alternative-name parsing, SPIFFE ID validation and the mTLS authenticator's decisions.
import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMtlsAuthenticator, isValidSpiffeId, parseSubjectAltName } from '../../src/authn/mtls.ts';
import type { AuthRequest } from '../../src/authn/types.ts';
import { GatewayError } from '../../src/core/errors.ts';
import { createCA } from '../../tools/pki.ts';

describe('parseSubjectAltName', () => {
  it('returns nothing for an absent or empty list', () => {
    expect(parseSubjectAltName(undefined)).toEqual([]);
    expect(parseSubjectAltName('')).toEqual([]);
  });

  it('splits several entries of different types', () => {
    expect(parseSubjectAltName('DNS:a.example, DNS:b.example, URI:spiffe://example.org/ns/prod/sa/billing, email:ops@example.org')).toEqual([
      { type: 'DNS', value: 'a.example' },
      { type: 'DNS', value: 'b.example' },
      { type: 'URI', value: 'spiffe://example.org/ns/prod/sa/billing' },
      { type: 'email', value: 'ops@example.org' },
    ]);
  });

  it('keeps "IP Address" as the type and the colons of IPv6 addresses in the value', () => {
    expect(parseSubjectAltName('IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:0:0:5')).toEqual([
      { type: 'IP Address', value: '127.0.0.1' },
      { type: 'IP Address', value: '0:0:0:0:0:0:0:1' },
      { type: 'IP Address', value: '2001:DB8:0:0:0:0:0:5' },
    ]);
  });

  it('decodes quoted values: escaped commas, quotes and backslashes stay inside one value', () => {
    const text = String.raw`URI:"https://x.example/p?q=1\u002c2", DNS:"a\u002c DNS:b\"c", URI:"urn:x:\\path", DNS:last.example`;
    expect(parseSubjectAltName(text)).toEqual([
      { type: 'URI', value: 'https://x.example/p?q=1,2' },
      { type: 'DNS', value: 'a, DNS:b"c' },
      { type: 'URI', value: 'urn:x:\\path' },
      { type: 'DNS', value: 'last.example' },
    ]);
  });

  it('a quoted value cannot smuggle a second SPIFFE URI', () => {
    const names = parseSubjectAltName(String.raw`DNS:"ok.example\u002c URI:spiffe://example.org/admin"`);
    expect(names).toEqual([{ type: 'DNS', value: 'ok.example, URI:spiffe://example.org/admin' }]);
    expect(names.filter((n) => n.type === 'URI')).toHaveLength(0);
  });

  it('decodes an escaped NUL so that the authenticator can see it', () => {
    expect(parseSubjectAltName(String.raw`URI:"spiffe://example.org/a\u0000b"`)).toEqual([{ type: 'URI', value: 'spiffe://example.org/a\0b' }]);
  });

  it("parses Node's own rendering of a real certificate exactly", async () => {
    const ca = await createCA();
    const { cert } = await ca.issue({
      cn: 'x',
      dns: ['a.example', 'b.example'],
      ips: ['127.0.0.1', '::1'],
      uris: ['spiffe://example.org/a', 'https://x.example/p?q=1,2', 'urn:x:"quoted"'],
    });
    expect(parseSubjectAltName(new X509Certificate(cert).subjectAltName)).toEqual([
      { type: 'DNS', value: 'a.example' },
      { type: 'DNS', value: 'b.example' },
      { type: 'IP Address', value: '127.0.0.1' },
      { type: 'IP Address', value: '0:0:0:0:0:0:0:1' },
      { type: 'URI', value: 'spiffe://example.org/a' },
      { type: 'URI', value: 'https://x.example/p?q=1,2' },
      { type: 'URI', value: 'urn:x:"quoted"' },
    ]);
  });
});

describe('isValidSpiffeId', () => {
  it.each([
    'spiffe://example.org',
    'spiffe://example.org/ns/prod/sa/billing',
    'spiffe://my-domain_1.example.org/a.b/c-d/e_f',
  ])('accepts %s', (id) => expect(isValidSpiffeId(id)).toBe(true));

  it.each([
    'SPIFFE://example.org/a',
    'spiffe://Example.org/a',
    'spiffe://example.org/',
    'spiffe://example.org//a',
    'spiffe://example.org/a/./b',
    'spiffe://example.org/a/../b',
    'spiffe://example.org/..',
    'spiffe://example.org/%61',
    'spiffe://example.org/a?b=1',
    'spiffe://example.org/a#b',
    'spiffe://user@example.org/a',
    'spiffe://example.org:8443/a',
    'spiffe:///a',
    'https://example.org/a',
    `spiffe://example.org/${'a'.repeat(2048)}`,
  ])('refuses %s', (id) => expect(isValidSpiffeId(id)).toBe(false));
});

// --- the authenticator against stand-in TLS sockets --------------------------------------------------------

function peer(over: Partial<PeerCertificate> & { subject?: Record<string, unknown> }): PeerCertificate {
  return {
    subject: { CN: 'billing' },
    issuer: { CN: 'test CA' },
    subjectaltname: undefined,
    valid_to: 'Jan  1 00:00:00 2099 GMT',
    fingerprint256: 'AA:BB',
    serialNumber: '0A0B',
    ...over,
  } as unknown as PeerCertificate;
}

function tlsRequest(cert: PeerCertificate | Record<string, never>, authorized = true): AuthRequest & { calls: () => number } {
  let calls = 0;
  const socket = {
    authorized,
    getPeerCertificate: () => {
      calls++;
      return cert;
    },
  } as unknown as Socket;
  return { authorization: undefined, rawHeaders: [], socket, calls: () => calls };
}

function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error('expected a refusal');
}

const BILLING = 'spiffe://example.org/ns/prod/sa/billing';

describe('createMtlsAuthenticator', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  const mesh = createMtlsAuthenticator({ name: 'mesh', trustDomain: 'example.org', requireSpiffe: true });
  const legacy = createMtlsAuthenticator({ name: 'legacy', trustDomain: undefined, requireSpiffe: false });

  it('a plaintext socket or a TLS socket without a certificate is "not mine"', () => {
    expect(mesh.authenticate({ authorization: undefined, rawHeaders: [], socket: {} as Socket })).toBeUndefined();
    expect(mesh.authenticate(tlsRequest({}))).toBeUndefined();
    expect(mesh.consumes).toEqual([]);
    expect(mesh.challenge).toBe('Mutual realm="zt-gateway"');
  });

  it('builds the identity from a verified certificate with one SPIFFE ID', () => {
    const id = mesh.authenticate(tlsRequest(peer({ subjectaltname: `DNS:billing.svc, URI:${BILLING}` })));
    expect(id).toMatchObject({
      subject: BILLING,
      spiffeId: BILLING,
      provider: 'mesh',
      issuer: 'test CA',
      method: 'mtls',
      email: undefined,
      emailVerified: false,
      groups: [],
      amr: ['mtls'],
      claims: { fingerprint256: 'AA:BB', serial: '0A0B' },
      expiresAt: Date.parse('2099-01-01T00:00:00Z') / 1000,
    });
    expect(Object.isFrozen(id)).toBe(true);
  });

  it('asks the socket once per connection (the identity is cached)', () => {
    const req = tlsRequest(peer({ subjectaltname: `URI:${BILLING}` }));
    const first = mesh.authenticate(req);
    expect(mesh.authenticate(req)).toBe(first);
    expect(req.calls()).toBe(1);
  });

  it('refuses a certificate that expired while its connection stayed open', () => {
    const req = tlsRequest(peer({ subjectaltname: `URI:${BILLING}`, valid_to: 'Jan  1 00:00:00 2099 GMT' }));
    expect(mesh.authenticate(req)).toMatchObject({ subject: BILLING });
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.parse('2099-01-01T00:00:01Z'));
    const err = refusal(() => mesh.authenticate(req));
    expect(err.detail).toBe('client certificate has expired');
    expect(err.headers[0]?.[1]).toContain('error="invalid_client"');
    // …also when the first request on the connection comes after the expiry.
    expect(refusal(() => mesh.authenticate(tlsRequest(peer({ subjectaltname: `URI:${BILLING}`, valid_to: 'Jan  1 00:00:00 2099 GMT' })))).detail).toBe(
      'client certificate has expired',
    );
  });

  it('refuses a certificate the TLS layer did not verify', () => {
    const err = refusal(() => mesh.authenticate(tlsRequest(peer({ subjectaltname: `URI:${BILLING}` }), false)));
    expect(err.code).toBe('GW_ERR_UNAUTHENTICATED');
    expect(err.status).toBe(401);
    expect(err.headers).toEqual([
      ['www-authenticate', 'Mutual realm="zt-gateway", error="invalid_client", error_description="client certificate is not trusted"'],
    ]);
  });

  it.each([
    ['two SPIFFE IDs', `URI:${BILLING}, URI:spiffe://example.org/ns/prod/sa/admin`, /more than one SPIFFE ID/],
    ['two SPIFFE IDs, one upper-case', `URI:${BILLING}, URI:SPIFFE://example.org/x`, /more than one SPIFFE ID/],
    ['another trust domain', 'URI:spiffe://evil.org/ns/prod/sa/billing', /outside the trust domain/],
    ['a trust domain that only ends like ours', 'URI:spiffe://evilexample.org/a', /outside the trust domain/],
    ['a sub-domain of the trust domain', 'URI:spiffe://x.example.org/a', /outside the trust domain/],
    ['a malformed SPIFFE ID', 'URI:spiffe://example.org/a/../admin', /malformed/],
    ['no SPIFFE ID', 'DNS:billing.svc', /no SPIFFE ID/],
    ['a NUL in a SAN', String.raw`URI:"spiffe://example.org/a\u0000b"`, /NUL/],
    ['a NUL in a DNS name', String.raw`DNS:"a\u0000.example", URI:${BILLING}`, /NUL/],
  ])('refuses %s', (_what, san, detail) => {
    const err = refusal(() => mesh.authenticate(tlsRequest(peer({ subjectaltname: san }))));
    expect(err.code).toBe('GW_ERR_UNAUTHENTICATED');
    expect(err.detail).toMatch(detail);
    expect(err.headers[0]?.[1]).toContain('error="invalid_client"');
  });

  it('refuses a NUL inside the subject (single or multi-valued)', () => {
    expect(refusal(() => legacy.authenticate(tlsRequest(peer({ subject: { CN: 'batch\0.example.org' } })))).detail).toMatch(/NUL/);
    expect(refusal(() => legacy.authenticate(tlsRequest(peer({ subject: { CN: 'batch', OU: ['a', 'b\0'] } })))).detail).toMatch(/NUL/);
  });

  it('without trust_domain: the CN is the subject when there is no SPIFFE ID', () => {
    const id = legacy.authenticate(tlsRequest(peer({ subject: { CN: 'legacy-batch' }, subjectaltname: 'DNS:batch.example.org' })));
    expect(id).toMatchObject({ subject: 'legacy-batch', spiffeId: undefined, method: 'mtls', provider: 'legacy' });
  });

  it('without trust_domain: any well-formed SPIFFE ID wins over the CN', () => {
    const id = legacy.authenticate(tlsRequest(peer({ subjectaltname: 'URI:spiffe://other.org/job' })));
    expect(id).toMatchObject({ subject: 'spiffe://other.org/job', spiffeId: 'spiffe://other.org/job' });
  });

  it('refuses a certificate with neither a SPIFFE ID nor a single CN', () => {
    expect(refusal(() => legacy.authenticate(tlsRequest(peer({ subject: { O: 'corp' } })))).detail).toMatch(/neither/);
    expect(refusal(() => legacy.authenticate(tlsRequest(peer({ subject: { CN: ['a', 'b'] } })))).detail).toMatch(/neither/);
  });

  it('trust_domain with require_spiffe: false: CN fallback, but a SPIFFE ID must still be in the domain', () => {
    const relaxed = createMtlsAuthenticator({ name: 'relaxed', trustDomain: 'example.org', requireSpiffe: false });
    expect(relaxed.authenticate(tlsRequest(peer({ subject: { CN: 'legacy-batch' } })))).toMatchObject({ subject: 'legacy-batch' });
    expect(refusal(() => relaxed.authenticate(tlsRequest(peer({ subjectaltname: 'URI:spiffe://evil.org/a' })))).detail).toMatch(/trust domain/);
  });
});
