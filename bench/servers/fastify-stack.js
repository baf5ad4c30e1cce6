// What a Node team would assemble instead: fastify + reply-from + @fastify/jwt (get-jwks) + rate-limit +
// helmet, doing the same work as zt-gateway's full pipeline (JWT, 5 allow rules, memory limit, headers).
import Fastify from 'fastify';
import helmet from '@fastify/helmet';
import jwt from '@fastify/jwt';
import rateLimit from '@fastify/rate-limit';
import replyFrom from '@fastify/reply-from';
import buildGetJwks from 'get-jwks';

const { TARGET, ISSUER, AUDIENCE } = process.env;
const app = Fastify({ logger: false });
const pems = new Map();
const getJwks = buildGetJwks({ providerDiscovery: false, jwksPath: '/jwks.json', issuersWhitelist: [ISSUER] });

await app.register(helmet);
await app.register(rateLimit, { max: 1_000_000_000, timeWindow: '1 minute', keyGenerator: (req) => req.user?.sub ?? req.ip, hook: 'preHandler' });
await app.register(jwt, {
  decode: { complete: true },
  // get-jwks converts the JWK to PEM on every call: memoize per kid, as a careful team would.
  secret: (_request, token) => {
    const id = `${token.header.alg}:${token.header.kid}`;
    let pem = pems.get(id);
    if (!pem) {
      pem = getJwks.getPublicKey({ kid: token.header.kid, alg: token.header.alg, domain: ISSUER });
      pem.catch(() => pems.delete(id));
      pems.set(id, pem);
    }
    return pem;
  },
  // fast-jwt's verified-token cache: the same advantage zt-gateway's token cache has.
  verify: { allowedIss: ISSUER, allowedAud: AUDIENCE, algorithms: ['ES256'], cache: true },
});
await app.register(replyFrom, { base: TARGET, undici: { connections: 128, pipelining: 1 } });

// The same five allow rules as the zt-gateway scenario: any one grants access.
const rules = [
  (u) => u.groups?.includes('admins'),
  (u) => u.email?.endsWith('@partner.example'),
  (u) => u.sub === 'svc-reporting',
  (u) => u.groups?.includes('support') && u.amr?.includes('otp'),
  (u) => u.groups?.includes('sales'),
];

app.addHook('onRequest', async (req, reply) => {
  try {
    await req.jwtVerify();
  } catch {
    return reply.code(401).send({ code: 'unauthenticated' });
  }
  if (!rules.some((r) => r(req.user))) return reply.code(403).send({ code: 'forbidden' });
});
app.all('/*', (req, reply) => {
  reply.from(req.url, {
    rewriteRequestHeaders: (_req, headers) => {
      const { authorization, ...rest } = headers;
      return { ...rest, 'x-zt-user': req.user.sub, 'x-zt-groups': (req.user.groups ?? []).join(',') };
    },
  });
});
await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ ready: app.server.address().port })}\n`);
