// The API keys the forward-auth style tests (nginx auth_request, ingress-nginx, Envoy ext_authz) call with:
// svc-ops in group ops, svc-plain in no group, svc-dev in group dev. `tag` keeps each file's keys distinct.
import { hashKey } from '../../src/authn/api-key.ts';

export interface ApiKeyFixture {
  readonly ops: string;
  readonly plain: string;
  readonly dev: string;
  /** The api-keys.yaml text holding the three keys' hashes. */
  readonly yaml: string;
}

export function apiKeyFixture(tag: string): ApiKeyFixture {
  const key = (name: string) => `ztk_${tag}_${name}_`.padEnd(37, '0123456789abcdefghijklmnop').slice(0, 37);
  const ops = key('ops');
  const plain = key('plain');
  const dev = key('dev');
  const yaml = `keys:
  - { id: ops, hash: ${hashKey(ops)}, subject: svc-ops, groups: [ops] }
  - { id: plain, hash: ${hashKey(plain)}, subject: svc-plain }
  - { id: dev, hash: ${hashKey(dev)}, subject: svc-dev, groups: [dev] }
`;
  return { ops, plain, dev, yaml };
}
