// What to tell, decided from what a pass already holds (its rows and its read) and what was told before: pure.
// One notice per state change, never one per pass: the memory says what receivers last heard, and it is kept in
// the registry so a daemon restart does not tell it again.
import { createHash } from 'node:crypto';
import type { NotifyEvent, ValidationIssue } from '../core/types.ts';
import type { FleetRead } from '../git/read.ts';
import { formatIssue } from '../manifest/parse.ts';
import type { ProjectRecord } from '../registry/registry.ts';

export type Trouble = 'failed' | 'stalled';
export type DeployState = 'pending' | 'success' | 'failure';

export interface NotifyMemory {
  /** The last commit whose deploy was judged, and how. */
  deploy?: { commit: string; state: DeployState };
  /** Projects receivers last heard were in trouble (absent: fine, or never heard of). */
  projects: Record<string, Trouble>;
  /** Fingerprint of the invalid manifests last told ('' or absent: none). */
  invalid?: string;
  /** Projects whose backups fail (told once, until one succeeds). */
  backups: string[];
}

export interface ProjectBrief {
  id: string;
  status: string;
  /** Why it is not fine, when it is not. */
  reason?: string;
}

export type Notice =
  | { event: 'deploy_applied'; commit: string; outcome: 'success' | 'failure'; projects: ProjectBrief[]; problems: string[] }
  | { event: 'project_failed' | 'project_stalled' | 'project_recovered'; project: string; commit: string | null; status: string; reason: string }
  | { event: 'backup_failed'; project: string; reason: string }
  | { event: 'manifest_invalid'; commit: string; projects: { id: string; issues: string[] }[]; fleet: string[] };

/** A GitHub commit status to post. */
export interface CommitStatus {
  sha: string;
  state: 'pending' | 'success' | 'failure' | 'error';
  description: string;
}

export const NOTIFY_EVENTS: NotifyEvent[] = ['deploy_applied', 'project_failed', 'project_stalled', 'project_recovered', 'backup_failed', 'manifest_invalid'];
const MAX_TEXT = 300;

export function emptyMemory(): NotifyMemory {
  return { projects: {}, backups: [] };
}

const cond = (r: ProjectRecord, type: string) => r.conditions.find((c) => c.type === type);
const short = (sha: string) => sha.slice(0, 7);
const clip = (s: string, n = MAX_TEXT) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/**
 * Whether a project is fine, in trouble, or on its way (null: provisioning or starting; the last verdict stands).
 * Stalled: its instance keeps crashing (CrashLoopBackOff). Failed: it crashed and is retried with backoff, a step
 * failed (Reconciling false), or a replacement did not get ready (Degraded). A driver out of reach is the fleet's
 * problem, not each project's.
 */
export function troubleOf(r: ProjectRecord): Trouble | 'ok' | null {
  if (r.status === 'deleted' || !r.present) return 'ok';
  const stalled = cond(r, 'Stalled');
  if (stalled?.status) return 'stalled';
  const reconciling = cond(r, 'Reconciling');
  if (r.status === 'failed' || (stalled && stalled.reason === 'BackOff') || cond(r, 'Degraded')?.status
    || (reconciling && !reconciling.status && reconciling.reason !== 'DriverUnreachable')) return 'failed';
  if (r.desiredState === 'stopped') return r.status === 'stopped' ? 'ok' : null;
  return r.status === 'running' && cond(r, 'Healthy')?.status ? 'ok' : null;
}

/** Why a project is in trouble, in one line (condition messages are the daemon's own words, scrubbed later). */
function reasonOf(r: ProjectRecord): string {
  const c = ['Stalled', 'Degraded', 'Reconciling', 'Healthy', 'Ready'].map((t) => cond(r, t)).find((x) => x && (x.type === 'Reconciling' || x.type === 'Healthy' || x.type === 'Ready' ? !x.status : x.status || x.reason === 'BackOff'));
  return clip(c ? `${c.reason}: ${c.message}` : r.lastError ?? r.status);
}

/** The invalid manifests (and fleet.yaml issues) at the read, as told; with its fingerprint. */
function invalidOf(read: FleetRead): { fp: string; projects: { id: string; issues: string[] }[]; fleet: string[] } {
  const lines = (issues: ValidationIssue[]) => issues.slice(0, 5).map((i) => clip(formatIssue(i)));
  const projects = read.invalid.map((p) => ({ id: p.id, issues: lines(p.errors) })).sort((a, b) => a.id.localeCompare(b.id));
  const fleet = lines(read.fleetIssues);
  const fp = projects.length || fleet.length ? createHash('sha256').update(JSON.stringify([projects, fleet])).digest('hex').slice(0, 16) : '';
  return { fp, projects, fleet };
}

/**
 * The deploy of `commit`: the projects whose folder it changed (their row observed it, or they are invalid and were
 * never deployed) and whether they converged. Failure: an invalid manifest or fleet.yaml, a project in trouble.
 * Success: every changed project runs it (or is stopped, removed or deleted as asked). Pending otherwise.
 */
export function deployOf(read: FleetRead, rows: readonly ProjectRecord[]): { state: DeployState; projects: ProjectBrief[]; problems: string[] } {
  const commit = read.commit;
  const known = new Set(rows.map((r) => r.id));
  const invalid = new Set(read.invalid.map((p) => p.id));
  const projects: ProjectBrief[] = [];
  const problems: string[] = read.fleetIssues.length ? [`fleet.yaml is invalid: ${clip(formatIssue(read.fleetIssues[0]))}`] : [];
  let pending = false;
  for (const r of rows) {
    if (r.observedCommit !== commit) continue;
    const t = troubleOf(r);
    if (invalid.has(r.id)) {
      projects.push({ id: r.id, status: 'invalid', reason: 'invalid manifest' });
      problems.push(`${r.id}: invalid manifest`);
    } else if (t === 'failed' || t === 'stalled') {
      const reason = reasonOf(r);
      projects.push({ id: r.id, status: r.status, reason });
      problems.push(`${r.id}: ${reason}`);
    } else {
      const done = t === 'ok' && (r.appliedCommit === commit || !r.present || r.status === 'deleted' || r.desiredState === 'stopped');
      if (!done) pending = true;
      projects.push({ id: r.id, status: r.status });
    }
  }
  for (const id of invalid) {
    if (known.has(id)) continue;
    projects.push({ id, status: 'invalid', reason: 'invalid manifest' });
    problems.push(`${id}: invalid manifest`);
  }
  projects.sort((a, b) => a.id.localeCompare(b.id));
  return { state: problems.length ? 'failure' : pending ? 'pending' : 'success', projects, problems };
}

/** GitHub's description: at most 140 characters. */
export function statusDescription(state: DeployState | 'error', d: { projects: ProjectBrief[]; problems: string[] }, supersededBy?: string): string {
  const n = d.projects.length;
  const changed = n === 0 ? 'no project changed' : n === 1 ? `${d.projects[0].id} changed` : `${n} projects changed`;
  const text = state === 'error' ? `superseded by ${supersededBy} before it was deployed`
    : state === 'pending' ? `deploying: ${changed}`
      : state === 'success' ? `deployed: ${changed}`
        : `not deployed: ${d.problems.join('; ')}`;
  return clip(text, 140);
}

/** Everything one pass has to tell: notices for webhooks, statuses for GitHub, and the memory that follows. */
export function decidePass(memory: NotifyMemory, read: FleetRead, rows: readonly ProjectRecord[]): { notices: Notice[]; statuses: CommitStatus[]; memory: NotifyMemory } {
  const notices: Notice[] = [];
  const statuses: CommitStatus[] = [];
  const next: NotifyMemory = { ...memory, projects: { ...memory.projects } };
  // 1. Invalid manifests on the tracked branch: once per distinct set of issues.
  const inv = invalidOf(read);
  if (inv.fp !== (memory.invalid ?? '')) {
    if (inv.fp) notices.push({ event: 'manifest_invalid', commit: read.commit, projects: inv.projects, fleet: inv.fleet });
    next.invalid = inv.fp;
  }
  // 2. Each project's trouble: told when it starts, when a failure stalls, and when it ends.
  const present = new Set<string>();
  for (const r of rows) {
    present.add(r.id);
    const t = troubleOf(r);
    if (t === null) continue;
    const was = memory.projects[r.id];
    if (t === 'ok') {
      if (was) notices.push({ event: 'project_recovered', project: r.id, commit: r.appliedCommit, status: r.status, reason: r.status === 'running' ? 'running and ready' : r.status });
      delete next.projects[r.id];
    } else if (t !== was) {
      notices.push({ event: t === 'stalled' ? 'project_stalled' : 'project_failed', project: r.id, commit: r.observedCommit, status: r.status, reason: reasonOf(r) });
      next.projects[r.id] = t;
    }
  }
  for (const id of Object.keys(next.projects)) if (!present.has(id)) delete next.projects[id];
  // 3. The deploy of the commit: its GitHub status at each change, the webhook notice once it is settled.
  if (/^[0-9a-f]{40}$/.test(read.commit)) {
    const d = deployOf(read, rows);
    const prev = memory.deploy;
    if (prev && prev.commit !== read.commit && prev.state === 'pending') {
      statuses.push({ sha: prev.commit, state: 'error', description: statusDescription('error', d, short(read.commit)) });
    }
    if (!prev || prev.commit !== read.commit || prev.state !== d.state) {
      statuses.push({ sha: read.commit, state: d.state, description: statusDescription(d.state, d) });
      if (d.state !== 'pending') notices.push({ event: 'deploy_applied', commit: read.commit, outcome: d.state, projects: d.projects, problems: d.problems });
      next.deploy = { commit: read.commit, state: d.state };
    }
  }
  return { notices, statuses, memory: next };
}

/** A backup's outcome: told when backups of a project start failing, not at each retry. */
export function decideBackup(memory: NotifyMemory, project: string, ok: boolean, message = ''): { notices: Notice[]; memory: NotifyMemory } {
  const failing = memory.backups.includes(project);
  if (ok) return { notices: [], memory: failing ? { ...memory, backups: memory.backups.filter((p) => p !== project) } : memory };
  if (failing) return { notices: [], memory };
  return { notices: [{ event: 'backup_failed', project, reason: clip(message || 'the backup failed') }], memory: { ...memory, backups: [...memory.backups, project].sort() } };
}
