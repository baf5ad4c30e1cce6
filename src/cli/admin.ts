// `zt-gateway admin ...` and `zt-gateway grants ...`: the admin API of a running gateway, from a shell.
// Exit codes: 0 done, 1 refused or unreachable, 2 usage.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import type { Output } from './validate.ts';

export const ADMIN_USAGE = `  zt-gateway admin suspend|unsuspend|revoke-sessions <subject> [--reason text]
  zt-gateway admin revoke-token <jti> | revoke-device <id> [--reason text]
  zt-gateway admin state
  zt-gateway grants list | approve <id> --approver <subject> --approver-groups g1,g2 | revoke <id>
        admin and grants options: --admin-url URL (env ZT_ADMIN_URL, default http://127.0.0.1:9090)
        --token T (env ZT_ADMIN_TOKEN) | --cert client.pem --key client.key (mTLS); --ca admin-ca.pem`;

type Call = { method: 'GET' | 'POST' | 'DELETE'; path: (id: string) => string; needsId: boolean };

const ADMIN: Record<string, Call> = {
  suspend: { method: 'POST', path: (s) => `/admin/v1/subjects/${s}/suspend`, needsId: true },
  unsuspend: { method: 'DELETE', path: (s) => `/admin/v1/subjects/${s}/suspend`, needsId: true },
  'revoke-sessions': { method: 'POST', path: (s) => `/admin/v1/subjects/${s}/revoke-sessions`, needsId: true },
  'revoke-token': { method: 'POST', path: (j) => `/admin/v1/tokens/${j}/revoke`, needsId: true },
  'revoke-device': { method: 'POST', path: (d) => `/admin/v1/devices/${d}/revoke`, needsId: true },
  state: { method: 'GET', path: () => '/admin/v1/state', needsId: false },
};

const GRANTS: Record<string, Call> = {
  list: { method: 'GET', path: () => '/admin/v1/grants', needsId: false },
  approve: { method: 'POST', path: (id) => `/admin/v1/grants/${id}/approve`, needsId: true },
  revoke: { method: 'POST', path: (id) => `/admin/v1/grants/${id}/revoke`, needsId: true },
};

const OPTIONS = {
  'admin-url': { type: 'string' },
  token: { type: 'string' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  reason: { type: 'string' },
  approver: { type: 'string' },
  'approver-groups': { type: 'string' },
} as const;

/** Returns the exit code; 2 (usage) for an unknown action or a missing id. */
export async function adminCommand(group: 'admin' | 'grants', args: string[], io: Output, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: OPTIONS });
  const [action, id, ...extra] = positionals;
  const call = action === undefined ? undefined : (group === 'admin' ? ADMIN : GRANTS)[action];
  if (!call || extra.length > 0 || (call.needsId ? id === undefined || id === '' : id !== undefined)) return -1;
  const body: Record<string, unknown> = {};
  if (values.reason !== undefined) body.reason = values.reason;
  if (group === 'grants' && action === 'approve') {
    if (!values.approver || !values['approver-groups']) {
      io.err('grants approve needs --approver <subject> and --approver-groups <g1,g2>');
      return -1;
    }
    body.approver = { subject: values.approver, groups: values['approver-groups'].split(',').map((g) => g.trim()).filter(Boolean) };
  }
  const base = (values['admin-url'] ?? env.ZT_ADMIN_URL ?? 'http://127.0.0.1:9090').replace(/\/+$/, '');
  const token = values.token ?? env.ZT_ADMIN_TOKEN;
  const read = (p: string | undefined) => (p === undefined ? undefined : readFileSync(p, 'utf8'));
  const connect = { ca: read(values.ca), cert: read(values.cert), key: read(values.key) };
  const dispatcher = new Agent({ connect: Object.fromEntries(Object.entries(connect).filter(([, v]) => v !== undefined)) });
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  const withBody = call.method !== 'GET' && Object.keys(body).length > 0;
  if (withBody) headers['content-type'] = 'application/json';
  try {
    const res = await request(`${base}${call.path(encodeURIComponent(id ?? ''))}`, {
      method: call.method,
      headers,
      dispatcher,
      ...(withBody ? { body: JSON.stringify(body) } : {}),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: print as received
    }
    if (res.statusCode >= 200 && res.statusCode < 300) {
      io.out(JSON.stringify(parsed, null, 2));
      return 0;
    }
    const p = parsed as { code?: string; detail?: string };
    io.err(`zt-gateway ${group} ${action}: ${res.statusCode} ${p.code ?? ''} ${p.detail ?? text}`.trim());
    return 1;
  } catch (err) {
    io.err(`zt-gateway ${group} ${action}: cannot reach ${base}: ${(err as Error).message}`);
    return 1;
  } finally {
    await dispatcher.close();
  }
}
