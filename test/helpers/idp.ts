// A real identity provider for tests: an HTTP server on 127.0.0.1 (port 0, kept across stop/start) that
// serves an OIDC discovery document and a JWKS, with keys made by jose that can be added/removed at run
// time, fetch counters, failure modes (HTTP error, garbage, hang) and an outage (stop/start).
import { createHmac, randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export type IdpAlg = 'ES256' | 'RS256' | 'EdDSA';

export interface IdpKey {
  kid: string;
  alg: IdpAlg;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** The public JWK as published (kid, alg, use: sig). */
  jwk: JWK;
}

/** How the server answers: normally, with an HTTP error status, with invalid JSON, or never. */
export type IdpMode = 'ok' | 'garbage' | 'hang' | number;

export interface SignOptions {
  /** Signing key (default: the first published key). */
  key?: IdpKey;
  /** kid header override; null leaves kid out. */
  kid?: string | null;
  /** Extra protected-header members (e.g. jku, jwk, typ). */
  header?: Record<string, unknown>;
  /** iss (default: the IdP's issuer); null leaves it out. */
  iss?: string | null;
  /** aud (default: 'gw'); null leaves it out. */
  aud?: string | string[] | null;
  /** sub (default: 'alice'); null leaves it out. */
  sub?: string | null;
  /** exp in seconds from now (default 300); null leaves it out. */
  expIn?: number | null;
  /** nbf in seconds from now; absent by default. */
  nbfIn?: number;
  /** iat in seconds from now (default 0); null leaves it out. */
  iatIn?: number | null;
}

export interface TestIdp {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly discoveryUri: string;
  readonly port: number;
  /** Published keys, in JWKS order. */
  readonly keys: IdpKey[];
  /** Requests answered (or attempted while mode != ok) per document since the last resetCounts(). */
  readonly fetches: { jwks: number; discovery: number };
  mode: IdpMode;
  /** Generates a key pair (not published). */
  generateKey(alg: IdpAlg, kid?: string): Promise<IdpKey>;
  /** Generates and publishes a key. */
  addKey(alg: IdpAlg, kid?: string): Promise<IdpKey>;
  publish(key: IdpKey): void;
  unpublish(kid: string): void;
  key(alg: IdpAlg): IdpKey;
  sign(claims?: JWTPayload, opts?: SignOptions): Promise<string>;
  resetCounts(): void;
  readonly running: boolean;
  /** Simulates an outage: closes the listener and every open connection; the port stays reserved for start(). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export const b64url = (v: string | Buffer | object): string =>
  Buffer.from(typeof v === 'string' || Buffer.isBuffer(v) ? v : JSON.stringify(v)).toString('base64url');

/** A JWT assembled by hand (for headers/algorithms that jose refuses to produce). */
export function craftJwt(header: object, payload: object, signature: string | Buffer = ''): string {
  return `${b64url(header)}.${b64url(payload)}.${typeof signature === 'string' ? signature : signature.toString('base64url')}`;
}

/** The classic algorithm-confusion token: HS256 with the issuer's public key (SPKI PEM bytes) as the secret. */
export async function hs256WithPublicKey(key: IdpKey, payload: object): Promise<string> {
  const header = { alg: 'HS256', typ: 'JWT', kid: key.kid };
  const pem = await exportSPKI(key.publicKey);
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
}

const WEBCRYPTO_SIGN: Record<IdpAlg, AlgorithmIdentifier | EcdsaParams> = {
  ES256: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
  RS256: { name: 'RSASSA-PKCS1-v1_5' },
  EdDSA: { name: 'Ed25519' },
};

/** Signs any header/payload with WebCrypto directly (jose refuses e.g. unknown `crit` extensions). */
export async function signRaw(key: IdpKey, header: object, payload: object): Promise<string> {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const sig = await crypto.subtle.sign(WEBCRYPTO_SIGN[key.alg], key.privateKey, new TextEncoder().encode(input));
  return `${input}.${Buffer.from(sig).toString('base64url')}`;
}

export async function newKey(alg: IdpAlg, kid: string = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`): Promise<IdpKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'RS256' ? { modulusLength: 2048 } : {});
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, jwk };
}

export async function startIdp(opts: { algs?: IdpAlg[]; audience?: string } = {}): Promise<TestIdp> {
  const keys: IdpKey[] = [];
  for (const alg of opts.algs ?? ['ES256']) keys.push(await newKey(alg));
  const fetches = { jwks: 0, discovery: 0 };
  const sockets = new Set<Socket>();
  let port = 0;
  let running = false;
  let server: Server;
  const defaultAud = opts.audience ?? 'gw';

  const self: TestIdp = {
    get issuer() {
      return `http://127.0.0.1:${port}`;
    },
    get jwksUri() {
      return `http://127.0.0.1:${port}/jwks.json`;
    },
    get discoveryUri() {
      return `http://127.0.0.1:${port}/.well-known/openid-configuration`;
    },
    get port() {
      return port;
    },
    get running() {
      return running;
    },
    keys,
    fetches,
    mode: 'ok',
    generateKey: newKey,
    async addKey(alg, kid) {
      const k = await newKey(alg, kid);
      keys.push(k);
      return k;
    },
    publish(key) {
      keys.push(key);
    },
    unpublish(kid) {
      const i = keys.findIndex((k) => k.kid === kid);
      if (i >= 0) keys.splice(i, 1);
    },
    key(alg) {
      const k = keys.find((x) => x.alg === alg);
      if (!k) throw new Error(`no published ${alg} key`);
      return k;
    },
    async sign(claims = {}, o = {}) {
      const key = o.key ?? keys[0];
      if (!key) throw new Error('no key to sign with');
      const now = Math.floor(Date.now() / 1000);
      const payload: JWTPayload = { ...claims };
      if (o.iss !== null) payload.iss = o.iss ?? self.issuer;
      if (o.aud !== null) payload.aud = o.aud ?? defaultAud;
      if (o.sub !== null) payload.sub = o.sub ?? 'alice';
      if (o.iatIn !== null) payload.iat = now + (o.iatIn ?? 0);
      if (o.expIn !== null) payload.exp = now + (o.expIn ?? 300);
      if (o.nbfIn !== undefined) payload.nbf = now + o.nbfIn;
      payload.jti ??= randomUUID(); // every token distinct, so the verified-token cache never hides a test
      const header: Record<string, unknown> = { alg: key.alg, typ: 'JWT', ...o.header };
      if (o.kid !== null) header.kid = o.kid ?? key.kid;
      return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
    },
    resetCounts() {
      fetches.jwks = 0;
      fetches.discovery = 0;
    },
    stop() {
      if (!running) return Promise.resolve();
      running = false;
      return new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
        sockets.clear();
      });
    },
    async start() {
      if (running) return;
      server = http.createServer(handle);
      server.keepAliveTimeout = 500;
      server.on('connection', (s: Socket) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      port = (server.address() as AddressInfo).port;
      running = true;
    },
    close() {
      return self.stop();
    },
  };

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    let body: unknown;
    if (path === '/.well-known/openid-configuration') {
      fetches.discovery++;
      body = { issuer: self.issuer, jwks_uri: self.jwksUri, id_token_signing_alg_values_supported: ['ES256', 'RS256', 'EdDSA'] };
    } else if (path === '/jwks.json') {
      fetches.jwks++;
      body = { keys: keys.map((k) => k.jwk) };
    } else {
      res.writeHead(404).end();
      return;
    }
    const mode = self.mode;
    if (mode === 'hang') return; // never answers; stop() destroys the socket
    if (typeof mode === 'number') {
      res.writeHead(mode, { 'content-type': 'text/plain' }).end('unavailable');
      return;
    }
    const text = mode === 'garbage' ? '{"keys": [ not json' : JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  await self.start();
  return self;
}

/** A loopback port that nothing listens on (bound once, then released). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** An HS256 access token for a `secret` jwt provider (audience gw, valid 5 minutes). */
export function signHs256(secret: string, issuer: string, subject: string, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(issuer)
    .setAudience('gw')
    .setSubject(subject)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(secret));
}
