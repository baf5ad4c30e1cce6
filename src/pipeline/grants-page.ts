// GET /.zt/grants for a person: their own requests with their state, and for approvers the pending requests
// they may decide, each with Approve / Deny buttons (POST forms back to /.zt/grants/{id}/…). Every value is
// escaped; the page's template and CSP were compiled at load.
import { escapeHtml as e } from '../response/index.ts';
import { GRANTS_PATH } from './grants-paths.ts';

export type GrantRow = Readonly<Record<string, unknown>>;

const text = (v: unknown): string => (v === undefined || v === null ? '' : e(String(v)));

function duration(s: unknown): string {
  const n = typeof s === 'number' ? s : 0;
  return n % 3600 === 0 ? `${n / 3600}h` : n % 60 === 0 ? `${n / 60}m` : `${n}s`;
}

function own(rows: readonly GrantRow[]): string {
  if (rows.length === 0) return '<p>You have no access requests.</p>';
  const body = rows
    .map((g) => `<tr><td>${text(g.grant)}</td><td>${text(g.state)}</td><td>${duration(g.duration_s)}</td><td>${text(g.justification)}</td><td>${text(g.requested_at)}</td><td>${text(g.expires_at ?? g.request_expires_at)}</td></tr>`)
    .join('');
  return `<table><thead><tr><th>Access</th><th>State</th><th>For</th><th>Why</th><th>Requested</th><th>Until</th></tr></thead><tbody>${body}</tbody></table>`;
}

function toDecide(rows: readonly GrantRow[]): string {
  if (rows.length === 0) return '<p>No request is waiting for your approval.</p>';
  const body = rows
    .map((g) => {
      const id = encodeURIComponent(String(g.id));
      return `<tr><td>${text(g.subject)}</td><td>${text(g.grant)}</td><td>${duration(g.duration_s)}</td><td>${text(g.justification)}</td><td>${text(g.requested_at)}</td><td>
<form method="post" action="${GRANTS_PATH}/${id}/approve"><button type="submit">Approve</button></form><form method="post" action="${GRANTS_PATH}/${id}/deny"><button class="s" type="submit">Deny</button></form></td></tr>`;
    })
    .join('');
  return `<table><thead><tr><th>Who</th><th>Access</th><th>For</th><th>Why</th><th>Requested</th><th></th></tr></thead><tbody>${body}</tbody></table>`;
}

/** The page body: `approver` false hides the approvals section (the person approves nothing). */
export function grantsPageContent(subject: string, mine: readonly GrantRow[], pending: readonly GrantRow[], approver: boolean): string {
  return `<p>Signed in as <strong>${e(subject)}</strong>.</p><h2>Your requests</h2>${own(mine)}${approver ? `<h2>Waiting for your approval</h2>${toDecide(pending)}` : ''}`;
}
