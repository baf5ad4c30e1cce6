import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { Identity } from '../../src/core/identity.ts';
import { createRouteAuthentication, type Authenticator } from '../../src/authn/index.ts';
import { GatewayError } from '../../src/core/errors.ts';

const id = (subject: string): Identity =>
  Object.freeze({
    subject, provider: subject, issuer: undefined, method: 'session', email: undefined, emailVerified: false, groups: [],
    claims: {}, spiffeId: undefined, authTime: undefined, amr: [], acr: undefined, expiresAt: undefined,
  });

function provider(name: string, answer: 'none' | 'async-none' | 'identity' | 'async-identity' | 'invalid', calls: string[]): Authenticator {
  return {
    name,
    type: 'oidc',
    challenge: `Test realm="${name}"`,
    consumes: [],
    authenticate() {
      calls.push(name);
      switch (answer) {
        case 'none':
          return undefined;
        case 'async-none':
          return Promise.resolve(undefined);
        case 'identity':
          return id(name);
        case 'async-identity':
          return Promise.resolve(id(name));
        case 'invalid':
          throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'bad', { headers: [['www-authenticate', 'Test error="invalid_token"']] });
      }
    },
  };
}

const req = { authorization: undefined, rawHeaders: [], socket: {} as Socket };

describe('createRouteAuthentication', () => {
  it('stays synchronous when providers answer synchronously', () => {
    const calls: string[] = [];
    const auth = createRouteAuthentication([provider('a', 'none', calls), provider('b', 'identity', calls)]);
    const r = auth(req);
    expect(r).not.toBeInstanceOf(Promise);
    expect((r as Identity).subject).toBe('b');
    expect(calls).toEqual(['a', 'b']);
  });

  it('passes on when a provider resolves "not mine" asynchronously (a session of another provider)', async () => {
    const calls: string[] = [];
    const auth = createRouteAuthentication([provider('a', 'async-none', calls), provider('b', 'async-identity', calls)]);
    expect((await auth(req)).subject).toBe('b');
    expect(calls).toEqual(['a', 'b']);
  });

  it('the first provider with credentials decides: invalid credentials never fall through', () => {
    const calls: string[] = [];
    const auth = createRouteAuthentication([provider('a', 'invalid', calls), provider('b', 'identity', calls)]);
    expect(() => auth(req)).toThrow(GatewayError);
    expect(calls).toEqual(['a']);
  });

  it('no provider finds credentials: 401 with every challenge', async () => {
    const calls: string[] = [];
    const auth = createRouteAuthentication([provider('a', 'none', calls), provider('b', 'async-none', calls)]);
    const err = await Promise.resolve()
      .then(() => auth(req))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('GW_ERR_UNAUTHENTICATED');
    expect((err as GatewayError).headers).toEqual([
      ['www-authenticate', 'Test realm="a"'],
      ['www-authenticate', 'Test realm="b"'],
    ]);
  });
});
