// The two requests notifications make: a JSON POST to a webhook, and GitHub's "create a commit status"
// (POST /repos/{owner}/{repo}/statuses/{sha}). Thin: they return what the attempt came to and never put a URL or a
// token in a reason (webhook URLs hold credentials).
import type { Attempt } from './queue.ts';

const TIMEOUT_MS = 10_000;

/** Retry-After in ms (seconds or an HTTP date), when given. */
function retryAfter(h: string | null): number | undefined {
  if (!h) return undefined;
  const s = Number(h);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const at = Date.parse(h);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Attempt & { status?: number }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST', body: JSON.stringify(body), redirect: 'error', signal: AbortSignal.timeout(TIMEOUT_MS),
      headers: { 'content-type': 'application/json', 'user-agent': 'atomo-fleet', ...headers },
    });
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string } };
    return { ok: false, retry: true, reason: e.name === 'TimeoutError' ? 'timed out' : e.cause?.code ?? 'network error' };
  }
  await res.arrayBuffer().catch(() => undefined);
  if (res.ok) return { ok: true, status: res.status };
  const retry = res.status >= 500 || res.status === 408 || res.status === 429 || (res.status === 403 && res.headers.has('retry-after'));
  return { ok: false, retry, status: res.status, reason: `answered ${res.status}`, retryAfterMs: retryAfter(res.headers.get('retry-after')) };
}

export interface GithubStatusTarget {
  apiUrl: string;
  repository: string;
  context: string;
  targetUrl?: string;
}

/** POST a commit status the way GitHub's REST API documents it; 201 is success. */
export async function postCommitStatus(t: GithubStatusTarget, token: string, s: { sha: string; state: string; description: string }): Promise<Attempt> {
  const url = `${t.apiUrl.replace(/\/+$/, '')}/repos/${t.repository}/statuses/${s.sha}`;
  const r = await postJson(url, { state: s.state, context: t.context, description: s.description, ...(t.targetUrl ? { target_url: t.targetUrl } : {}) }, {
    authorization: `Bearer ${token}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28',
  });
  if (r.ok || r.status === undefined) return r;
  const hint = r.status === 401 ? ': the token was refused; store a valid one'
    : r.status === 403 || r.status === 404 ? `: the token cannot write statuses to ${t.repository} (it needs repo:status, or "Commit statuses: write")`
      : r.status === 422 ? ': GitHub refused the status (unknown commit?)' : '';
  return { ...r, reason: `${r.reason}${hint}` };
}
