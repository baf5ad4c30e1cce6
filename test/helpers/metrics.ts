// Scrapes /metrics of a running gateway and reads samples (src/metrics/exposition.ts).
import { request } from 'undici';
import { parseExposition, type Exposition } from '../../src/metrics/exposition.ts';

export interface Scrape extends Exposition {
  readonly text: string;
  readonly contentType: string;
}

export function parseMetrics(text: string, contentType = ''): Scrape {
  return { ...parseExposition(text), text, contentType };
}

/** `token`: the admin token, when /metrics is authenticated (admin.metrics). */
export async function scrape(adminUrl: string, token?: string): Promise<Scrape> {
  const res = await request(`${adminUrl}/metrics`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}: ${text}`);
  return parseMetrics(text, String(res.headers['content-type']));
}
