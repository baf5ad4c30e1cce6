// `ext_authz:` — Envoy's external authorization over gRPC (envoy.service.auth.v3.Authorization/Check) on a
// listener of its own. Envoy, Istio and the Gateway API implementations ask it about the requests they hold.
import { z } from 'zod';
import { hostPort } from './schema-common.ts';

export const extAuthz = z
  .strictObject({
    listen: hostPort.meta({ description: 'host:port of the gRPC listener, e.g. 127.0.0.1:9191' }),
    tls: z
      .strictObject({
        cert: z.string().min(1).meta({ description: 'PEM certificate chain file' }),
        key: z.string().min(1).meta({ description: 'PEM private key file' }),
        client_ca: z
          .string()
          .min(1)
          .optional()
          .meta({ description: 'PEM CA bundle: a caller presenting a client certificate that chains to it may ask, from any address' }),
      })
      .optional()
      .meta({ description: 'Serve gRPC over TLS (and accept mTLS callers with client_ca); plaintext HTTP/2 without it' }),
  })
  .meta({
    description:
      'Envoy ext_authz gRPC service. Callers must be in trusted_proxies or present a client certificate verified against tls.client_ca; requests are decided as /.zt/verify decides them',
  });
