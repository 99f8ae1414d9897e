// What fleet.yaml `notify:` must satisfy beyond its JSON Schema: credentials (webhook URLs, the GitHub token) are
// fleet secrets, so their references must be absolute and must not lie under a project's own path.
import type { NotifyConfig } from '../core/types.ts';
import { FLEET_SECRETS_ID, cleanPrefix, refProblem } from '../secrets/refs.ts';

/** Every secret reference notify names (so sharedSecrets cannot share them). */
export function notifyRefs(n: NotifyConfig | undefined): string[] {
  return [...(n?.webhooks ?? []).map((w) => w.urlSecret), ...(n?.githubStatus ? [n.githubStatus.tokenSecret] : [])];
}

export function notifyProblems(n: NotifyConfig | undefined, prefix: string): { path: string; message: string }[] {
  if (!n) return [];
  const out: { path: string; message: string }[] = [];
  const base = `${cleanPrefix(prefix)}/`;
  const check = (path: string, ref: string, what: string) => {
    const example = `${base}${FLEET_SECRETS_ID}/${what}`;
    if (!ref.startsWith('/')) out.push({ path, message: `must be an absolute secret reference such as ${example}` });
    else if (refProblem(ref)) out.push({ path, message: `secret reference ${refProblem(ref)}` });
    // A project's instance can read its own path: a credential there would be the project's to read.
    else if (ref.startsWith(base) && !ref.startsWith(`${base}${FLEET_SECRETS_ID}/`)) {
      out.push({ path, message: `is under another path than the fleet's own; store it under ${base}${FLEET_SECRETS_ID}/, such as ${example}` });
    }
  };
  const seen = new Set<string>();
  (n.webhooks ?? []).forEach((w, i) => {
    if (seen.has(w.name)) out.push({ path: `/notify/webhooks/${i}/name`, message: `"${w.name}" names two webhooks; give each its own name` });
    seen.add(w.name);
    check(`/notify/webhooks/${i}/urlSecret`, w.urlSecret, 'SLACK_WEBHOOK_URL');
  });
  if (n.githubStatus) check('/notify/githubStatus/tokenSecret', n.githubStatus.tokenSecret, 'GITHUB_TOKEN');
  return out;
}
