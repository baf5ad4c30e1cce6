// Entra ID group overage. Past ~200 groups Entra leaves `groups` out of the ID token and names a "claim
// source" instead (`_claim_names: { groups: "src1" }`, `_claim_sources: { src1: { endpoint } }`, OIDC Core
// 5.6.2). The gateway never calls a URL the token names: with `groups_overage.endpoint` configured it asks
// that Graph base (`POST /me/getMemberGroups`) with the user's access token, once, at login, bounded in
// time and size; without it the login is refused with reason groups-overage (never "no groups").
import { fetch as undiciFetch, type Agent } from 'undici';
import { GatewayError, hasGroupsOverage } from '../../core/index.ts';
import { endWith, outboundSpan } from '../outbound-span.ts';
import { MAX_GROUPS } from '../claim-mapping.ts';
import { readCappedText } from './capped-answer.ts';

/** The largest Graph answer read (11,000 ids of 36 characters, the call's own limit, fit easily). */

export interface GroupsOverageConfig {
  endpoint: string;
  /** Milliseconds. */
  timeout: number;
}

/** The refusal for an overage the gateway cannot (or may not) resolve. */
export function overageRefused(detail: string, cause?: unknown): GatewayError {
  return new GatewayError('GW_ERR_FORBIDDEN', `login refused (groups-overage): ${detail}`, {
    ...(cause === undefined ? {} : { cause }),
    extra: { reason: 'groups-overage' },
  });
}

/** The claims without the distributed-claim pointers (they name URLs the gateway never uses). */
function withoutPointers(claims: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(claims)) if (k !== '_claim_names' && k !== '_claim_sources') out[k] = v;
  return out;
}

/** Graph's member-groups call for the signed-in user: the ids of every group (security or not) they are in. */
export async function fetchMemberGroups(cfg: GroupsOverageConfig, accessToken: string, dispatcher?: Agent): Promise<string[]> {
  const url = `${cfg.endpoint.replace(/\/+$/, '')}/me/getMemberGroups`;
  let res: Response;
  try {
    res = await endWith(
      outboundSpan(url, 'POST', 'idp getMemberGroups'),
      undiciFetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ securityEnabledOnly: false }),
        redirect: 'error',
        signal: AbortSignal.timeout(cfg.timeout),
        ...(dispatcher ? { dispatcher } : {}),
      }) as unknown as Promise<Response>,
    );
  } catch (err) {
    throw new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'the group directory is unavailable', { cause: err });
  }
  if (res.status >= 500 || res.status === 429) {
    await res.body?.cancel().catch(() => undefined);
    throw new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'the group directory is unavailable');
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => undefined);
    // 401/403: typically an access token that is not for Graph (see README "Claims and groups").
    throw overageRefused(`the group directory refused the access token (HTTP ${res.status})`);
  }
  let body: unknown;
  try {
    body = JSON.parse(await readCappedText(res));
  } catch (err) {
    throw overageRefused('the group directory answer is not JSON', err);
  }
  const value = body !== null && typeof body === 'object' && Object.hasOwn(body, 'value') ? (body as { value: unknown }).value : undefined;
  if (!Array.isArray(value)) throw overageRefused('the group directory answer has no value list');
  if (value.length > MAX_GROUPS) throw overageRefused(`more than ${MAX_GROUPS} groups`);
  return value.filter((g): g is string => typeof g === 'string' && g !== '' && g.length <= 1024);
}

/**
 * The token result with `groups` read from the configured directory when the ID token (or UserInfo) has an
 * overage; unchanged otherwise. `cfg` undefined: an overage is refused.
 */
export async function resolveGroupsOverage<T extends { claims: Record<string, unknown>; accessToken: string | undefined }>(
  cfg: GroupsOverageConfig | undefined,
  result: T,
  dispatcher?: Agent,
): Promise<T> {
  if (!hasGroupsOverage(result.claims)) return result;
  if (cfg === undefined) throw overageRefused('the identity provider left the groups out of the token (over its limit); configure groups_overage');
  if (result.accessToken === undefined) throw overageRefused('no access token to read the groups with');
  const groups = await fetchMemberGroups(cfg, result.accessToken, dispatcher);
  return { ...result, claims: { ...withoutPointers(result.claims), groups } };
}
