// `zt-gateway audit-config` checks every endpoint of `upstream.endpoints` as it checks `upstream.url`: a
// plain-HTTP endpoint off loopback is a high finding located at its own index.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/gateway.ts';
import { ensureBuilt } from '../helpers/build.ts';
import { cli } from '../helpers/cli.ts';

beforeAll(() => ensureBuilt(), 180_000);

interface Finding {
  id: string;
  severity: string;
  path: string;
  route?: string;
}

describe('audit-config with several endpoints', () => {
  it('reports each endpoint at its own path', async () => {
    const dir = tempDir('ztgw-audit-ep-');
    const file = join(dir, 'endpoints.yaml');
    writeFileSync(
      file,
      `listen: { address: 127.0.0.1:8000, plaintext: true }
routes:
  - name: fleet
    match: { methods: [GET] }
    upstream: { endpoints: ["http://127.0.0.1:1", "http://10.0.0.7:8080", "http://10.0.0.8:8080"] }
    public: true
`,
    );
    const r = await cli(['audit-config', '--json', '--config', file]);
    expect(r.code).toBe(0);
    const findings = (JSON.parse(r.stdout) as { findings: Finding[] }).findings.filter((f) => f.id.startsWith('upstream-'));
    expect(findings.map((f) => [f.id, f.severity, f.path, f.route]).sort((a, b) => String(a[2]).localeCompare(String(b[2])))).toEqual([
      ['upstream-plaintext-loopback', 'info', 'routes[0].upstream.endpoints[0]', 'fleet'],
      ['upstream-plaintext', 'high', 'routes[0].upstream.endpoints[1]', 'fleet'],
      ['upstream-plaintext', 'high', 'routes[0].upstream.endpoints[2]', 'fleet'],
    ]);
    rmSync(dir, { recursive: true, force: true });
  });
});
