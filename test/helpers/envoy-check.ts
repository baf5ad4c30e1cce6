// A grpc-js client of envoy.service.auth.v3.Authorization built from the gateway's own vendored protos
// (proto/), sending CheckRequests shaped as Envoy's ext_authz HTTP filter sends them.
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { root } from './build.ts';

const definition = loadSync('envoy/service/auth/v3/external_auth.proto', {
  includeDirs: [`${root}proto`],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
});
const Authorization = grpc.makeGenericClientConstructor(definition['envoy.service.auth.v3.Authorization'] as grpc.ServiceDefinition, 'Authorization');

export interface HeaderOption {
  header: { key: string; value?: string };
  append?: { value?: boolean };
  append_action?: string;
}

export interface CheckResponse {
  status?: { code?: number; message?: string };
  http_response?: string;
  ok_response?: { headers?: HeaderOption[]; headers_to_remove?: string[]; response_headers_to_add?: HeaderOption[] };
  denied_response?: { status?: { code?: string }; headers?: HeaderOption[]; body?: string };
}

export interface CheckArgs {
  method?: string;
  host?: string;
  path: string;
  scheme?: string;
  headers?: Record<string, string>;
  /** encode_raw_headers: true — header_map with raw_value bytes instead of the headers map. */
  rawHeaders?: Array<[string, string]>;
  id?: string;
  source?: string;
}

/** The CheckRequest Envoy's HTTP filter sends (pseudo-headers included in the map, as Envoy does). */
export function envoyRequest(a: CheckArgs): object {
  const method = a.method ?? 'GET';
  const host = a.host ?? 'app.example.com';
  const http: Record<string, unknown> = { id: a.id ?? '', method, host, path: a.path, scheme: a.scheme ?? 'https', protocol: 'HTTP/1.1' };
  if (a.rawHeaders) http.header_map = { headers: a.rawHeaders.map(([key, v]) => ({ key, raw_value: Buffer.from(v, 'latin1') })) };
  else http.headers = { ':authority': host, ':method': method, ':path': a.path, ':scheme': a.scheme ?? 'https', ...(a.headers ?? {}) };
  return {
    attributes: {
      source: { address: { socket_address: { address: a.source ?? '203.0.113.7', port_value: 50123 } } },
      destination: { address: { socket_address: { address: '10.0.0.5', port_value: 443 } } },
      request: { time: { seconds: String(Math.floor(Date.now() / 1000)) }, http },
    },
  };
}

export interface CheckClient {
  check(a: CheckArgs | object): Promise<CheckResponse>;
  close(): void;
}

export function checkClient(address: string, creds: grpc.ChannelCredentials = grpc.credentials.createInsecure()): CheckClient {
  const client = new Authorization(address, creds);
  return {
    check(a) {
      const message = 'path' in a ? envoyRequest(a as CheckArgs) : a;
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          '/envoy.service.auth.v3.Authorization/Check',
          (m: object) => (Authorization.service.Check as grpc.MethodDefinition<object, CheckResponse>).requestSerialize(m),
          (b: Buffer) => (Authorization.service.Check as grpc.MethodDefinition<object, CheckResponse>).responseDeserialize(b),
          message,
          { deadline: Date.now() + 5000 },
          (err: grpc.ServiceError | null, res?: CheckResponse) => (err ? reject(err) : resolve(res as CheckResponse)),
        );
      });
    },
    close: () => client.close(),
  };
}

/** Envoy's order for an OK answer: `headers` applied (per append_action), then `headers_to_remove`. */
export function applyLikeEnvoy(request: Record<string, string>, ok: NonNullable<CheckResponse['ok_response']>): Record<string, string> {
  const out = new Map(Object.entries(request).map(([k, v]) => [k.toLowerCase(), v]));
  for (const h of ok.headers ?? []) {
    const key = h.header.key.toLowerCase();
    const overwrite = h.append_action === 'OVERWRITE_IF_EXISTS_OR_ADD' || h.append?.value === false;
    out.set(key, overwrite || !out.has(key) ? (h.header.value ?? '') : `${out.get(key)},${h.header.value ?? ''}`);
  }
  for (const name of ok.headers_to_remove ?? []) out.delete(name.toLowerCase());
  return Object.fromEntries(out);
}
