// The ext_authz gRPC parts that need no listener: its config (who could ask, TLS files relative to the config,
// located errors), and the CheckRequest/CheckResponse mapping (server/ext-authz-messages.ts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { checkRequestOf, checkResponseOf, grpcCodeFor } from '../../src/server/ext-authz-messages.ts';
import { createCA } from '../../tools/pki.ts';
import { tempDir } from '../helpers/gateway.ts';

const LISTEN = 'listen: { address: 127.0.0.1:0, plaintext: true }\nidentity_headers: { assertion: false }';

async function problems(text: string, dir = tempDir()): Promise<Array<[string, ReadonlyArray<string | number>]>> {
  try {
    await compileConfig(parseConfigText(text, 'gw.yaml', dir, {}));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p: ConfigProblem) => [p.code, p.keyPath]);
  }
  return [];
}

describe('ext_authz config', () => {
  it('refused when nobody could ask: no trusted_proxies and no client_ca', async () => {
    expect(await problems(`${LISTEN}\next_authz: { listen: 127.0.0.1:9191 }`)).toEqual([['CFG_CONFLICT', ['ext_authz']]]);
    expect(await problems(`${LISTEN}\ntrusted_proxies: [127.0.0.1/32]\next_authz: { listen: 127.0.0.1:9191 }`)).toEqual([]);
  });

  it('refused on the address of another listener', async () => {
    const text = 'listen: { address: 127.0.0.1:8443, plaintext: true }\ntrusted_proxies: [10.0.0.1]\next_authz: { listen: 127.0.0.1:8443 }';
    expect(await problems(text)).toEqual([['CFG_CONFLICT', ['ext_authz', 'listen']]]);
  });

  it('unknown keys and bad addresses are schema errors', async () => {
    expect(await problems(`${LISTEN}\ntrusted_proxies: [10.0.0.1]\next_authz: { listen: 127.0.0.1:9191, mode: http }`)).toEqual([['CFG_UNKNOWN_KEY', ['ext_authz', 'mode']]]);
    expect((await problems(`${LISTEN}\ntrusted_proxies: [10.0.0.1]\next_authz: { listen: "9191" }`))[0]?.[1]).toEqual(['ext_authz', 'listen']);
  });

  it('TLS files are read relative to the config file; a missing or unusable one is a located error', async () => {
    const dir = tempDir();
    const ca = await createCA('ext_authz config CA');
    const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'] });
    writeFileSync(join(dir, 'ext.crt'), leaf.cert);
    writeFileSync(join(dir, 'ext.key'), leaf.key);
    writeFileSync(join(dir, 'ca.crt'), ca.cert);
    const ok = await compileConfig(parseConfigText(`${LISTEN}\next_authz: { listen: 127.0.0.1:0, tls: { cert: ext.crt, key: ext.key, client_ca: ca.crt } }`, 'gw.yaml', dir, {}));
    expect(ok.extAuthz).toEqual({ listen: '127.0.0.1:0', tls: { cert: leaf.cert, key: leaf.key, ca: ca.cert } });
    expect(Object.isFrozen(ok.extAuthz)).toBe(true);
    expect(await problems(`${LISTEN}\ntrusted_proxies: [10.0.0.1]\next_authz: { listen: 127.0.0.1:0, tls: { cert: nope.crt, key: ext.key } }`, dir)).toEqual([['CFG_BAD_FILE', ['ext_authz', 'tls', 'cert']]]);
    expect(await problems(`${LISTEN}\ntrusted_proxies: [10.0.0.1]\next_authz: { listen: 127.0.0.1:0, tls: { cert: ca.crt, key: ext.key } }`, dir)).toEqual([['CFG_BAD_FILE', ['ext_authz', 'tls']]]);
  });
});

describe('CheckRequest → the checked request', () => {
  it('reads attributes.request.http and the source address; pseudo-headers stand in for empty fields only', () => {
    const r = checkRequestOf({
      attributes: {
        source: { address: { socket_address: { address: '198.51.100.4', port_value: 1 } } },
        request: { http: { id: 'r-1', method: '', host: 'app.example.com', path: '/a?b=1', scheme: 'https', headers: { ':method': 'POST', ':path': '/evil', authorization: 'Bearer x' } } },
      },
    });
    expect(r).toEqual({ method: 'POST', scheme: 'https', host: 'app.example.com', path: '/a?b=1', headers: ['authorization', 'Bearer x'], requestId: 'r-1', sourceIp: '198.51.100.4' });
  });

  it('header_map with raw bytes wins over the map; duplicates stay separate lines', () => {
    const r = checkRequestOf({ attributes: { request: { http: { headers: { a: 'map' }, header_map: { headers: [{ key: 'a', raw_value: Buffer.from('raw') }, { key: 'a', value: 'second' }] } } } } });
    expect(r.headers).toEqual(['a', 'raw', 'a', 'second']);
  });

  it('garbage in: empty fields, no throw (the decision refuses them)', () => {
    for (const m of [undefined, null, 'x', { attributes: 7 }, { attributes: { request: { http: { headers: 'x', header_map: { headers: [null] } } } } }]) {
      expect(checkRequestOf(m)).toMatchObject({ method: '', path: '', host: '', scheme: '' });
    }
  });
});

describe('the answer → CheckResponse', () => {
  it('gRPC codes follow the HTTP status', () => {
    expect([401, 302, 403, 404, 429, 408, 504, 503, 502, 500, 400, 431, 413].map(grpcCodeFor)).toEqual([16, 16, 7, 5, 8, 4, 4, 14, 14, 13, 3, 3, 3]);
  });

  it('allow: overwrite options, removals as given, Set-Cookie appended', () => {
    const res = checkResponseOf({
      kind: 'answer',
      id: 'r',
      remove: ['x_zt_user'],
      security: [],
      answer: { kind: 'allow', headers: ['X-ZT-User', 'alice'], remove: [], cookies: ['a=1', 'b=2'] },
    });
    expect(res).toEqual({
      status: { code: 0 },
      ok_response: {
        headers: [{ header: { key: 'x-zt-user', value: 'alice' }, append: { value: false }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        headers_to_remove: ['x_zt_user'],
        response_headers_to_add: ['a=1', 'b=2'].map((value) => ({ header: { key: 'set-cookie', value }, append: { value: true }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
      },
    });
  });
});
