// `zt-gateway csp suggest --route <name> [--admin-url URL --token T | --log <file>] [--min-clients N]`: reads
// what browsers reported against a route's CSP (from the admin API of a running gateway, or from the
// gateway's log lines) and prints the smallest policy that would have allowed it, as YAML for the route.
// Exit codes: 0 printed, 1 unreachable / unreadable / unknown route, 2 usage.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { compileSecurityHeaders } from '../response/index.ts';
import { loadConfigFile, type SecurityHeadersConfig } from '../config/index.ts';
import { suggest, suggestionYaml, type ObservedKey, type SuggestInput } from './csp-suggest.ts';
import type { Output } from './validate.ts';

export const CSP_USAGE = `  zt-gateway csp suggest --route <name> [--admin-url URL --token T | --log <file> [--config <file>]] [--min-clients N]
                                       print the smallest CSP that would have allowed what browsers reported
                                       (admin API, env ZT_ADMIN_URL / ZT_ADMIN_TOKEN; or the gateway's log lines)`;

const OPTIONS = {
  route: { type: 'string' },
  'admin-url': { type: 'string' },
  token: { type: 'string' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  log: { type: 'string' },
  config: { type: 'string' },
  'min-clients': { type: 'string' },
} as const;

/** Returns the exit code; -1 for a usage error. */
export async function cspCommand(args: string[], io: Output, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    io.err((err as Error).message);
    return -1;
  }
  const { positionals, values } = parsed;
  if (positionals.length !== 1 || positionals[0] !== 'suggest' || !values.route) return -1;
  const minClients = values['min-clients'] === undefined ? 1 : Number(values['min-clients']);
  if (!Number.isInteger(minClients) || minClients < 1) {
    io.err('--min-clients is a whole number, at least 1');
    return -1;
  }
  let input: SuggestInput;
  try {
    input = values.log !== undefined ? fromLog(values.route, values.log, values.config, env) : await fromAdmin(values.route, values, env);
  } catch (err) {
    io.err(`zt-gateway csp suggest: ${(err as Error).message}`);
    return 1;
  }
  const s = suggest(input, minClients);
  io.out(suggestionYaml(input, s, minClients).trimEnd());
  return 0;
}

interface AdminRoute {
  route: string;
  report_only: boolean | null;
  learn: boolean;
  policy: Record<string, string[]> | null;
  violations: ObservedKey[];
  learned: { 'script-src'?: string[]; 'style-src'?: string[] };
}

async function fromAdmin(route: string, values: Partial<Record<keyof typeof OPTIONS, string>>, env: NodeJS.ProcessEnv): Promise<SuggestInput> {
  const base = (values['admin-url'] ?? env.ZT_ADMIN_URL ?? 'http://127.0.0.1:9090').replace(/\/+$/, '');
  const token = values.token ?? env.ZT_ADMIN_TOKEN;
  const read = (p: string | undefined) => (p === undefined ? undefined : readFileSync(p, 'utf8'));
  const connect = Object.fromEntries(Object.entries({ ca: read(values.ca), cert: read(values.cert), key: read(values.key) }).filter(([, v]) => v !== undefined));
  const dispatcher = new Agent({ connect });
  try {
    const res = await request(`${base}/admin/v1/csp-violations?route=${encodeURIComponent(route)}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      dispatcher,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) {
      let detail = text;
      try {
        const p = JSON.parse(text) as { code?: string; detail?: string };
        detail = `${p.code ?? ''} ${p.detail ?? ''}`.trim();
      } catch {
        // not a problem body
      }
      throw new Error(`${base}: ${res.statusCode} ${detail}`);
    }
    const body = JSON.parse(text) as { routes: AdminRoute[] };
    const r = body.routes.find((x) => x.route === route);
    if (r === undefined) throw new Error(`no data for route "${route}"`);
    if (r.policy === null) throw new Error(`route "${route}" sends no Content-Security-Policy (csp: false)`);
    return { route, policy: r.policy, violations: r.violations, learned: r.learned, learn: r.learn, reportOnly: r.report_only };
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('UND_ERR') || (err as { code?: string }).code === 'ECONNREFUSED') throw new Error(`cannot reach ${base}: ${(err as Error).message}`);
    throw err;
  } finally {
    await dispatcher.close();
  }
}

/**
 * The gateway logs each key at most once a minute with its running totals (`csp violation`), and each
 * learned hash once (`csp inline hash`): the last totals of each key are its figures. The policy is the
 * route's in --config, else the default one.
 */
function fromLog(route: string, file: string, configFile: string | undefined, env: NodeJS.ProcessEnv): SuggestInput {
  const keys = new Map<string, ObservedKey>();
  const learned = { 'script-src': new Set<string>(), 'style-src': new Set<string>() };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('"csp')) continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue; // not a pino line
    }
    const v = rec.csp as Partial<ObservedKey & { route: string }> | undefined;
    if (rec.msg === 'csp violation' && v?.route === route && typeof v.directive === 'string' && typeof v.blocked === 'string') {
      const id = `${v.directive} ${v.blocked}`;
      const before = keys.get(id);
      keys.set(id, {
        directive: v.directive,
        blocked: v.blocked,
        count: Math.max(before?.count ?? 0, Number(v.count) || 0),
        clients: Math.max(before?.clients ?? 0, Number(v.clients) || 0),
      });
    }
    const l = rec.csp_learned as { route?: string; directive?: string; hash?: string } | undefined;
    if (rec.msg === 'csp inline hash' && l?.route === route && (l.directive === 'script-src' || l.directive === 'style-src') && typeof l.hash === 'string') {
      learned[l.directive].add(l.hash);
    }
  }
  let global: SecurityHeadersConfig = {};
  let own: SecurityHeadersConfig | undefined;
  if (configFile !== undefined) {
    const { config } = loadConfigFile(configFile, env);
    const r = config.routes.find((x) => x.name === route);
    if (r === undefined) throw new Error(`${configFile} has no route "${route}"`);
    global = config.security_headers;
    own = r.security_headers;
  }
  const csp = compileSecurityHeaders(global, own).csp;
  if (!csp) throw new Error(`route "${route}" sends no Content-Security-Policy (csp: false)`);
  return {
    route,
    policy: csp.directives,
    violations: [...keys.values()],
    learned: { 'script-src': [...learned['script-src']], 'style-src': [...learned['style-src']] },
    learn: csp.learn || learned['script-src'].size + learned['style-src'].size > 0,
    reportOnly: csp.reportOnly,
  };
}
