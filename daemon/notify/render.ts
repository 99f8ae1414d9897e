// Notice → request body, pure: the generic JSON format (the notice itself, versioned, with a text line) and the
// Slack-compatible one (`text` for clients and notifications, `blocks` for the message). Bodies are built only
// from the notice, whose fields are ids, commits, statuses and the daemon's own messages, scrubbed once more here.
import { scrubText } from '../log.ts';
import type { Notice } from './decide.ts';

export interface Origin {
  /** The fleet repository (its URL without credentials), so one channel can follow several fleets. */
  fleet: string;
}

const short = (sha: string | null) => (sha ? sha.slice(0, 7) : 'none');
const list = (ids: string[], max = 10) => (ids.length > max ? `${ids.slice(0, max).join(', ')} and ${ids.length - max} more` : ids.join(', '));

/** One line a person reads. */
export function noticeText(n: Notice): string {
  switch (n.event) {
    case 'deploy_applied': {
      const changed = n.projects.length ? `changed: ${list(n.projects.map((p) => p.id))}` : 'no project changed';
      return n.outcome === 'success'
        ? `Deployed ${short(n.commit)}: ${changed}.`
        : `Deploy of ${short(n.commit)} failed: ${n.problems.slice(0, 5).join('; ')}${n.problems.length > 5 ? ` (and ${n.problems.length - 5} more)` : ''}.`;
    }
    case 'project_failed': return `Project ${n.project} failed (${n.status}): ${n.reason}`;
    case 'project_stalled': return `Project ${n.project} is stalled (${n.status}): ${n.reason}. A new commit or a fix is needed.`;
    case 'project_recovered': return `Project ${n.project} recovered: ${n.reason}${n.commit ? ` at ${short(n.commit)}` : ''}.`;
    case 'backup_failed': return `Backup of ${n.project === '_registry' ? 'the registry' : n.project} failed: ${n.reason}. It is retried with backoff.`;
    case 'manifest_invalid': {
      const what = [...n.projects.map((p) => `${p.id}: ${p.issues[0] ?? 'invalid'}`), ...n.fleet.map((f) => `fleet.yaml: ${f}`)];
      return `Invalid manifest on the tracked branch at ${short(n.commit)} (the last valid one keeps running): ${what.slice(0, 5).join('; ')}`;
    }
  }
}

/** The generic JSON body. */
export function jsonBody(n: Notice, origin: Origin, at: Date): Record<string, unknown> {
  return scrubDeep({ version: 1, ...n, text: noticeText(n), fleet: origin.fleet, at: at.toISOString() }) as Record<string, unknown>;
}

// Slack's mrkdwn treats &, < and > as control characters.
const slackEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const ICON: Record<Notice['event'], string> = {
  deploy_applied: ':rocket:', project_failed: ':x:', project_stalled: ':octagonal_sign:', project_recovered: ':white_check_mark:',
  backup_failed: ':floppy_disk:', manifest_invalid: ':warning:',
};

/** The Slack-compatible body (incoming webhooks; Mattermost and others read `text`). */
export function slackBody(n: Notice, origin: Origin): Record<string, unknown> {
  const icon = n.event === 'deploy_applied' && n.outcome === 'failure' ? ':x:' : ICON[n.event];
  const text = slackEscape(scrubText(noticeText(n)));
  return {
    text: `${icon} ${text}`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `${icon} ${text}`.slice(0, 3000) } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: slackEscape(`atomo-fleet · ${n.event} · ${scrubText(origin.fleet)}`).slice(0, 3000) }] },
    ],
  };
}

function scrubDeep(v: unknown): unknown {
  if (typeof v === 'string') return scrubText(v);
  if (Array.isArray(v)) return v.map(scrubDeep);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, scrubDeep(x)]));
  return v;
}
