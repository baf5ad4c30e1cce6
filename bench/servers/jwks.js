// A JWKS (and discovery) server for the bench: serves the public key given in JWKS_JSON.
import http from 'node:http';

const jwks = process.env.JWKS_JSON;
const server = http.createServer((req, res) => {
  const port = server.address().port;
  if (req.url === '/.well-known/openid-configuration') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ issuer: `http://127.0.0.1:${port}`, jwks_uri: `http://127.0.0.1:${port}/jwks.json` }));
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(jwks);
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ ready: server.address().port })}\n`));
