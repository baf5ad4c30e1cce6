// `login:` one auth host for the whole fleet (README "One login for many apps"): login, callback and logout
// for every host go through it, so the IdP knows one redirect URI and the user logs in once.
import { z } from 'zod';

export const login = z
  .strictObject({
    host: z
      .string()
      .regex(/^[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.)*[A-Za-z0-9-]{1,63}(:\d{1,5})?$/, 'a host name with an optional port, e.g. auth.example.com or auth.example.com:8443')
      .meta({ description: "The auth host (one of the gateway's own hosts: a route's host or in listen.public_urls); scheme and port from listen.public_urls when set" }),
    logout: z
      .enum(['fleet', 'host'])
      .default('fleet')
      .meta({ description: "fleet: a logout on any host ends the login on every host (and their live connections); host: only that host's session" }),
  })
  .meta({ description: 'One login for many apps: the auth host the IdP redirects to' });
