// /.zt/csp-report/<token>: where the policies the gateway sends report their violations. The route comes
// from the token the gateway put in that route's policy (compiled.cspRoutes), never from the report's
// document-uri. At most 64 KB, a per-address budget, aggregated in runtime's CspStore; never forwarded.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError, headerOf, readRequestBody } from '../core/index.ts';
import { CSP_REPORT_PREFIX, CSP_TOKEN, CspReportError, parseCspReport, type CspReportFormat } from '../response/index.ts';
import type { RuntimeState } from './state.ts';
import type { PipelineContext } from './route.ts';

export const CSP_REPORT_MAX_BYTES = 64 * 1024;

export function isCspReportPath(path: string): boolean {
  return path.startsWith(CSP_REPORT_PREFIX);
}

const FORMATS: Readonly<Record<string, CspReportFormat>> = {
  'application/csp-report': 'csp-report',
  'application/json': 'csp-report',
  'application/reports+json': 'reports+json',
};

export async function serveCspReport(state: RuntimeState, ctx: PipelineContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const token = ctx.target.path.slice(CSP_REPORT_PREFIX.length);
  const route = CSP_TOKEN.test(token) ? state.compiled.cspRoutes.get(token) : undefined;
  if (route === undefined || ctx.method !== 'POST') throw new GatewayError('GW_ERR_NO_ROUTE');
  if (!state.csp.allowReport(ctx.clientIp)) {
    throw new GatewayError('GW_ERR_RATE_LIMITED', 'too many CSP reports from this address', { headers: [['retry-after', '60'], ['connection', 'close']] });
  }
  const type = (headerOf(ctx, 'content-type') ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
  const format = FORMATS[type];
  if (format === undefined) throw new GatewayError('GW_ERR_UNSUPPORTED_MEDIA_TYPE', 'send application/csp-report or application/reports+json');
  const tooLarge = () => new GatewayError('GW_ERR_BODY_TOO_LARGE', `a CSP report may be at most ${CSP_REPORT_MAX_BYTES} bytes`, { headers: [['connection', 'close']] });
  const body = await readRequestBody(req, CSP_REPORT_MAX_BYTES, tooLarge);
  let violations;
  try {
    violations = parseCspReport(format, body.toString('utf8'));
  } catch (err) {
    if (err instanceof CspReportError) throw new GatewayError('GW_ERR_BAD_REQUEST', `not a CSP report: ${err.message}`);
    throw err;
  }
  for (const v of violations) state.csp.add(route.name, v, ctx.clientIp);
  res.writeHead(204, [...state.compiled.security.flat, 'cache-control', 'no-store', 'x-request-id', ctx.id]);
  res.end();
}
