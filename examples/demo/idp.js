// The demo's OpenID Provider: panva's oidc-provider (a devDependency), started in-process by run.js on
// 127.0.0.1 (its issuer is http://127.0.0.1:PORT, not localhost: cookies are scoped by host, not port, and the
// IdP's session cookie must not travel to the gateway at https://localhost and on to the app), so that
// `npm run demo` has a real login. It knows one demo account, shows a plain HTML login
// form, and has two ways to log in:
//
//   - login and password only           → acr "pwd", amr [pwd]
//   - login, password and one-time code → acr "mfa", amr [pwd, otp]   (what a route's `step_up: { acr: mfa }` asks for)
//
// The client (the demo gateway) is registered by run.js with its callback, post-logout and back-channel
// logout URIs. Signing keys and cookie keys are made at start and kept in memory only: restarting the demo
// ends every IdP session. Everything here is DEMO-ONLY: public passwords, no rate limit, no real users.
import { randomBytes } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns';
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { Agent, fetch as undiciFetch } from 'undici';

/** The demo accounts: public, shown in the demo's output. */
export const DEMO_ACCOUNTS = Object.freeze({
  alice: Object.freeze({ password: 'demo-only', email: 'alice@example.com', name: 'Alice Example', groups: Object.freeze(['sales']) }),
});
/** The "authenticator app" of the demo: this one-time code always works. */
export const DEMO_OTP = '123456';

const escape = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input{width:100%;box-sizing:border-box;padding:.45rem;font:inherit}
button{margin-top:1rem;padding:.5rem 1.2rem;font:inherit}.note{background:#f3f5f7;border-left:4px solid #7a8591;padding:.5rem .8rem;font-size:.9rem}
.error{background:#fdecea;border-left:4px solid #c62828;padding:.5rem .8rem}.small{font-size:.85rem;color:#57606a}code{font-size:.9em}`;

function page(title, body) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} · demo IdP</title>
<style>${STYLE}</style>
</head>
<body>
${body}
<p class="small">zt-gateway demo identity provider (oidc-provider on this machine). DEMO-ONLY: never use it for anything real.</p>
</body>
</html>
`;
}

function sendHtml(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    'x-frame-options': 'DENY',
    // No form-action: Chromium applies it to the redirects after the login form too, back to the gateway.
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  });
  res.end(html);
}

function loginPage({ uid, client, mfaRequired, error, login }) {
  const account = Object.keys(DEMO_ACCOUNTS)[0];
  return page(
    'Log in',
    `<h1>Log in${client ? ` to ${escape(client)}` : ''}</h1>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ''}
${
  mfaRequired
    ? `<p class="note"><strong>This page asks for a multi-factor login.</strong> Enter the one-time code as well.</p>`
    : ''
}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
<label for="login">Login</label>
<input id="login" name="login" value="${escape(login ?? '')}" autocomplete="username" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="otp">One-time code${mfaRequired ? '' : ' (optional: for a multi-factor login)'}</label>
<input id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code"${mfaRequired ? ' required' : ''}>
<button type="submit">Log in</button>
</form>
<p class="note">Demo account: <code>${escape(account)}</code> / <code>${escape(DEMO_ACCOUNTS[account].password)}</code>;
one-time code <code>${DEMO_OTP}</code>.</p>`,
  );
}

function readBody(req, limit = 16 * 1024) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * The provider's storage (sessions, grants, codes, tokens, the registered client): in memory, gone when the
 * demo stops. oidc-provider's own quick-start adapter works the same but warns on every start.
 */
function memoryAdapter() {
  const store = new Map(); // `${model}:${id}` → { payload, until }
  const index = new Map(); // `uid:…`, `userCode:…` → id; `grant:…` → Set of keys
  const live = (key) => {
    const e = store.get(key);
    if (e && e.until <= Date.now()) store.delete(key);
    return e && e.until > Date.now() ? e.payload : undefined;
  };
  return class DemoAdapter {
    constructor(model) {
      this.model = model;
    }
    key(id) {
      return `${this.model}:${id}`;
    }
    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      store.set(key, { payload, until: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity });
      if (this.model === 'Session' && payload.uid) index.set(`uid:${payload.uid}`, id);
      if (payload.userCode) index.set(`userCode:${payload.userCode}`, id);
      if (payload.grantId && this.model !== 'Grant') {
        const members = index.get(`grant:${payload.grantId}`) ?? new Set();
        members.add(key);
        index.set(`grant:${payload.grantId}`, members);
      }
    }
    async find(id) {
      return live(this.key(id));
    }
    async findByUid(uid) {
      return this.find(index.get(`uid:${uid}`));
    }
    async findByUserCode(userCode) {
      return this.find(index.get(`userCode:${userCode}`));
    }
    async consume(id) {
      const payload = live(this.key(id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id) {
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId) {
      for (const key of index.get(`grant:${grantId}`) ?? []) store.delete(key);
      index.delete(`grant:${grantId}`);
    }
  };
}

/**
 * Starts the provider on host:port (port 0 picks one) with `issuer` as its identifier (run.js uses
 * http://127.0.0.1:<port>). `gatewayCa` (PEM) is trusted for back-channel logout deliveries to the gateway.
 * `log` receives one line per notable event.
 */
export async function startDemoIdp({ host = '127.0.0.1', port = 0, issuer, gatewayCa, log = () => undefined }) {
  const server = createServer();
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address().port;
  issuer ??= `http://${host}:${bound}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: `demo-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
  /** Home page shown after a logout at the IdP: the (first) registered gateway. */
  let home;

  // Back-channel logout tokens go to the gateway over HTTPS, verified against the demo CA.
  const toGateway = new Agent({
    connect: {
      ...(gatewayCa ? { ca: gatewayCa } : {}),
      rejectUnauthorized: true,
      // The demo gateway listens on 127.0.0.1; "localhost" may resolve to ::1 first.
      lookup: (hostname, o, cb) => {
        if (hostname !== 'localhost') return dnsLookup(hostname, o, cb);
        return o?.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);
      },
    },
  });

  const provider = new Provider(issuer, {
    adapter: memoryAdapter(),
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    acrValues: ['pwd', 'mfa'],
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
      acr: null,
      amr: null,
      auth_time: null,
      sid: null,
      iss: null,
    },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      revocation: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.type = 'html';
          ctx.body = page(
            'Log out',
            `<h1>Log out of the demo IdP too?</h1>
<p>You are logged out of the demo app. The identity provider still has a session: while it lasts, the app logs
you in again without asking.</p>
${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, log me out of the IdP</button>
<button type="submit" form="op.logoutForm">No, stay logged in at the IdP</button>`,
          );
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = page(
            'Logged out',
            `<h1>Logged out</h1>
<p>Your session at the demo IdP has ended. The IdP notified the gateway too (OIDC back-channel logout): the
login it started there has ended as well.</p>
${home ? `<p><a href="${escape(home)}">Back to the demo app</a> (it will ask you to log in again)</p>` : ''}`,
          );
        },
      },
    },
    pkce: { required: () => true },
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 8 * 3600,
      Interaction: 600,
      Session: 8 * 3600,
      Grant: 8 * 3600,
    },
    // Refresh tokens for the gateway (it refreshes the access token before it expires), no offline_access dance.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // The demo gateway is a first-party client: the grant covers what it asks for, no consent screen.
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const existing = await ctx.oidc.provider.Grant.find(grantId);
        if (existing) return existing;
      }
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid email profile groups');
      grant.addOIDCClaims(['email', 'email_verified', 'name', 'groups']);
      await grant.save();
      return grant;
    },
    findAccount: async (_ctx, id) => {
      const account = Object.hasOwn(DEMO_ACCOUNTS, id) ? DEMO_ACCOUNTS[id] : undefined;
      if (!account) return undefined;
      return {
        accountId: id,
        claims: async () => ({ sub: id, email: account.email, email_verified: true, name: account.name, groups: [...account.groups] }),
      };
    },
    fetch: (url, options) => undiciFetch(url, { ...options, dispatcher: toGateway }),
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page(
        'Error',
        `<h1>Login error</h1><p class="error"><code>${escape(out.error)}</code>: ${escape(out.error_description ?? '')}</p>`,
      );
    },
  });

  provider.on('server_error', (_ctx, err) => log(`server error: ${err?.stack ?? err}`));
  provider.on('authorization.error', (_ctx, err) => log(`authorization error: ${err.message} ${err.error_description ?? ''}`));
  provider.on('grant.error', (_ctx, err) => log(`token error: ${err.message} ${err.error_description ?? ''}`));
  provider.on('backchannel.success', (_ctx, client, sub) => log(`back-channel logout of ${sub} delivered to ${client.clientId}`));
  provider.on('backchannel.error', (_ctx, err, client, sub) => log(`back-channel logout of ${sub} to ${client.clientId} failed: ${err.message}`));
  provider.on('end_session.success', () => log('IdP session ended (logout)'));

  const callback = provider.callback();

  async function interaction(req, res, submit) {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params, uid } = details;
    if (prompt.name !== 'login') {
      // Consent for the first-party demo client: granted without a screen.
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
      return;
    }
    const client = await provider.Client.find(String(params.client_id ?? ''));
    const clientName = client?.clientName ?? client?.clientId;
    const mfaRequired = String(params.acr_values ?? '').split(' ').includes('mfa');
    if (!submit) return sendHtml(res, 200, loginPage({ uid, client: clientName, mfaRequired }));

    const form = new URLSearchParams(await readBody(req));
    const login = (form.get('login') ?? '').trim();
    const otp = (form.get('otp') ?? '').trim();
    const account = Object.hasOwn(DEMO_ACCOUNTS, login) ? DEMO_ACCOUNTS[login] : undefined;
    const again = (error) => sendHtml(res, 200, loginPage({ uid, client: clientName, mfaRequired, error, login }));
    if (!account || form.get('password') !== account.password) {
      log(`login refused for ${JSON.stringify(login.slice(0, 64))}: wrong login or password`);
      return again('Wrong login or password.');
    }
    if (otp !== '' && otp !== DEMO_OTP) return again('Wrong one-time code.');
    if (mfaRequired && otp === '') return again('This login needs the one-time code.');
    const mfa = otp !== '';
    log(`${login} logged in (acr ${mfa ? 'mfa' : 'pwd'})`);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: login, acr: mfa ? 'mfa' : 'pwd', amr: mfa ? ['pwd', 'otp'] : ['pwd'], remember: true } },
      { mergeWithLastSubmission: false },
    );
  }

  server.on('request', (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(path);
    if (m) {
      interaction(req, res, m[2] !== undefined && req.method === 'POST').catch((err) => {
        log(`interaction failed: ${err.message}`);
        if (!res.headersSent) {
          sendHtml(res, 400, page('Error', `<h1>Login error</h1><p class="error">${escape(err.message)}</p><p>Start again from the demo app.</p>`));
        } else res.destroy();
      });
      return;
    }
    if (path === '/' && req.method === 'GET') {
      return sendHtml(res, 200, page('Demo IdP', `<h1>Demo identity provider</h1><p>Issuer <code>${escape(issuer)}</code>; discovery at <a href="/.well-known/openid-configuration">/.well-known/openid-configuration</a>.</p>${home ? `<p><a href="${escape(home)}">The demo app</a></p>` : ''}`));
    }
    callback(req, res);
  });

  return {
    issuer,
    port: bound,
    provider,
    /**
     * Registers (or updates) the gateway as a confidential web client: `origin` is its https origin,
     * e.g. https://localhost:8443 (callback, post-logout and back-channel logout URIs); `origins` lists more
     * origins a browser logs in on — every app host behind a forward-auth proxy, e.g. https://app.example:8444 —
     * each with its own https://host[:port]/.zt/callback and post-logout URI.
     */
    async register({ client_id, client_secret, origin, origins = [] }) {
      home ??= `${origin}/`;
      const all = [...new Set([origin, ...origins])];
      await provider.Client.adapter.upsert(client_id, {
        client_id,
        client_secret,
        client_name: 'the zt-gateway demo',
        application_type: 'web',
        redirect_uris: all.map((o) => `${o}/.zt/callback`),
        post_logout_redirect_uris: all.map((o) => `${o}/`),
        backchannel_logout_uri: `${origin}/.zt/backchannel-logout`,
        backchannel_logout_session_required: true,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      });
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
        void toGateway.close();
      }),
  };
}
