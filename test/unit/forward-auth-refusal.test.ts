// How /.zt/verify answers a proxy that relays only 401/403 (nginx auth_request), and what /.zt/denied renders.
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, GatewayError, toProblem, type GatewayErrorCode } from '../../src/core/index.ts';
import { forAuthRequest } from '../../src/pipeline/verify.ts';
import { deniedError } from '../../src/pipeline/reserved.ts';

describe('forAuthRequest', () => {
  it('answers every 4xx but 401 as 403 with X-ZT-Error, keeping code, detail and headers', () => {
    for (const code of Object.keys(ERROR_CODES) as GatewayErrorCode[]) {
      const status = ERROR_CODES[code].status;
      const original = new GatewayError(code, 'why', { headers: [['retry-after', '3']] });
      const mapped = forAuthRequest(original) as GatewayError;
      if (status === 401 || status >= 500) {
        expect(mapped, code).toBe(original);
        continue;
      }
      expect(mapped.status, code).toBe(403);
      expect(mapped.code).toBe(code);
      expect(mapped.detail).toBe('why');
      expect(mapped.headers).toEqual([['retry-after', '3'], ['X-ZT-Error', code]]);
      expect((forAuthRequest(original, 'X-Auth-') as GatewayError).headers).toEqual([['retry-after', '3'], ['X-Auth-Error', code]]);
      const p = toProblem(mapped, 'id');
      expect(p.status).toBe(403);
      expect(JSON.parse(p.body)).toMatchObject({ code, status: 403 });
    }
  });

  it('leaves anything that is not a GatewayError alone (a bug stays a 500)', () => {
    const err = new Error('boom');
    expect(forAuthRequest(err)).toBe(err);
  });
});

describe('deniedError', () => {
  it('answers the closed set of 4xx codes with their own status', () => {
    expect(deniedError('?code=GW_ERR_BAD_PATH')).toMatchObject({ code: 'GW_ERR_BAD_PATH', status: 400 });
    expect(deniedError('?code=GW_ERR_NO_ROUTE')).toMatchObject({ code: 'GW_ERR_NO_ROUTE', status: 404 });
    expect(deniedError('?code=GW_ERR_RATE_LIMITED')).toMatchObject({ code: 'GW_ERR_RATE_LIMITED', status: 429 });
    expect(deniedError('?code=GW_ERR_SUSPENDED')).toMatchObject({ code: 'GW_ERR_SUSPENDED', status: 403 });
  });

  it('anything else is a plain 403: no 5xx, no 401, no unknown or repeated value', () => {
    for (const q of ['', '?', '?code=', '?code=GW_ERR_INTERNAL', '?code=GW_ERR_SHUTTING_DOWN', '?code=GW_ERR_UNAUTHENTICATED', '?code=gw_err_bad_path', '?code=%3Cscript%3E', '?code=__proto__', '?other=GW_ERR_BAD_PATH']) {
      expect(deniedError(q), q).toMatchObject({ code: 'GW_ERR_FORBIDDEN', status: 403 });
    }
    // The first value counts (URLSearchParams.get), and it must be in the set.
    expect(deniedError('?code=GW_ERR_INTERNAL&code=GW_ERR_BAD_PATH')).toMatchObject({ code: 'GW_ERR_FORBIDDEN' });
  });
});
