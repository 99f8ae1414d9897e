// The notification decisions, pure: one notice per state change, a deploy judged from the rows it changed, GitHub
// descriptions within 140 characters, backups told once until they work again.
import { describe, expect, it } from 'vitest';
import type { Condition } from '../daemon/core/types.ts';
import type { FleetRead } from '../daemon/git/read.ts';
import { decideBackup, decidePass, deployOf, emptyMemory, statusDescription, troubleOf, type NotifyMemory } from '../daemon/notify/decide.ts';
import type { ProjectRecord } from '../daemon/registry/registry.ts';

const C1 = 'a'.repeat(40);
const C2 = 'b'.repeat(40);
const cond = (type: Condition['type'], status: boolean, reason = 'R', message = ''): Condition => ({ type, status, reason, message, at: '2026-01-01T00:00:00Z' });
const OK = [cond('Healthy', true, 'Ready'), cond('Ready', true, 'Converged'), cond('Stalled', false, 'Running'), cond('Reconciling', true, 'Ok')];

function row(id: string, over: Partial<ProjectRecord> = {}): ProjectRecord {
  return {
    id, displayName: id, hostname: `${id}.localhost`, aliases: [], status: 'running', desiredState: 'running', upstream: '127.0.0.1:1',
    schemaVersion: C1, schemaDigest: 'd', observedCommit: C1, appliedCommit: C1, lastHealth: null, conditions: OK, manifest: null,
    secretRefs: {}, port: 1, updatedAt: '', databaseUrlRef: '', databaseName: `atomo_${id}`, roleName: `atomo_${id}`,
    schemaRef: { type: 'git', repo: '', path: '', ref: C1 }, schemaHistory: [], env: {}, present: true, specHash: null, secretsVersion: 0,
    restarts: 0, provisionedConnections: 20, lastError: null, createdAt: '', ...over,
  };
}
const read = (commit: string, over: Partial<FleetRead> = {}): FleetRead => ({ commit, projects: [], invalid: [], fleet: null, fleetIssues: [], ...over });

describe('troubleOf', () => {
  it.each([
    ['running and healthy', row('a'), 'ok'],
    ['crash, backing off', row('a', { conditions: [...OK.filter((c) => c.type !== 'Stalled'), cond('Stalled', false, 'BackOff', 'exited 1 time(s)')] }), 'failed'],
    ['crash loop', row('a', { status: 'failed', conditions: [cond('Stalled', true, 'CrashLoopBackOff')] }), 'stalled'],
    ['a step failed', row('a', { conditions: [cond('Reconciling', false, 'PROVISION', 'no database')] }), 'failed'],
    ['driver unreachable is not the project\'s trouble', row('a', { conditions: [...OK.filter((c) => c.type !== 'Reconciling'), cond('Reconciling', false, 'DriverUnreachable')] }), 'ok'],
    ['replacement not ready', row('a', { conditions: [...OK, cond('Degraded', true, 'ReplacementNotReady')] }), 'failed'],
    ['starting', row('a', { status: 'provisioning', conditions: [] }), null],
    ['stopped as asked', row('a', { status: 'stopped', desiredState: 'stopped', conditions: [] }), 'ok'],
    ['folder removed', row('a', { present: false, status: 'stopped' }), 'ok'],
    ['deleted', row('a', { status: 'deleted' }), 'ok'],
  ])('%s', (_name, r, want) => {
    expect(troubleOf(r)).toBe(want);
  });
});

describe('decidePass', () => {
  const run = (m: NotifyMemory, r: FleetRead, rows: ProjectRecord[]) => decidePass(m, r, rows);

  it('a new commit that converged: one deploy notice and a success status; the same pass again tells nothing', () => {
    const rows = [row('blog'), row('shop', { observedCommit: C2, appliedCommit: C2 })];
    const first = run(emptyMemory(), read(C2), rows);
    expect(first.notices).toEqual([{ event: 'deploy_applied', commit: C2, outcome: 'success', projects: [{ id: 'shop', status: 'running' }], problems: [] }]);
    expect(first.statuses).toEqual([{ sha: C2, state: 'success', description: 'deployed: shop changed' }]);
    const again = run(first.memory, read(C2), rows);
    expect(again).toMatchObject({ notices: [], statuses: [] });
  });

  it('a deploy still starting is pending (status only), then success once it runs: one notice', () => {
    const starting = [row('shop', { observedCommit: C2, status: 'provisioning', conditions: [] })];
    const a = run(emptyMemory(), read(C2), starting);
    expect(a.notices).toEqual([]);
    expect(a.statuses.map((s) => s.state)).toEqual(['pending']);
    const b = run(a.memory, read(C2), [row('shop', { observedCommit: C2, appliedCommit: C2 })]);
    expect(b.notices.map((n) => n.event)).toEqual(['deploy_applied']);
    expect(b.statuses.map((s) => s.state)).toEqual(['success']);
  });

  it('a pending deploy overtaken by a newer commit gets an error status naming it', () => {
    const a = run(emptyMemory(), read(C1), [row('shop', { status: 'provisioning', conditions: [] })]);
    const b = run(a.memory, read(C2), [row('shop', { status: 'provisioning', conditions: [] })]);
    expect(b.statuses[0]).toEqual({ sha: C1, state: 'error', description: 'superseded by bbbbbbb before it was deployed' });
  });

  it('a crash: failed, then stalled, then recovered, each once however many passes see it', () => {
    let m = emptyMemory();
    const seq = [
      row('c', { conditions: [cond('Stalled', false, 'BackOff', 'instance exited 1 time(s) in a row')] }),
      row('c', { conditions: [cond('Stalled', false, 'BackOff', 'instance exited 2 time(s) in a row')] }),
      row('c', { status: 'failed', conditions: [cond('Stalled', true, 'CrashLoopBackOff', 'instance exited 3 time(s)')] }),
      row('c', { status: 'failed', conditions: [cond('Stalled', true, 'CrashLoopBackOff', 'instance exited 4 time(s)')] }),
      row('c', { status: 'provisioning', conditions: [] }),
      row('c'),
      row('c'),
    ];
    const told: string[] = [];
    for (const r of seq) {
      const d = run(m, read(C1), [r]);
      told.push(...d.notices.filter((n) => n.event !== 'deploy_applied').map((n) => n.event));
      m = d.memory;
    }
    expect(told).toEqual(['project_failed', 'project_stalled', 'project_recovered']);
  });

  it('an invalid manifest: told once per distinct set of issues; the deploy of its commit failed', () => {
    const bad = read(C2, { invalid: [{ id: 'blog', errors: [{ file: 'projects/blog/project.yaml', path: '/colour', message: 'unknown key' }] }] });
    const rows = [row('blog', { observedCommit: C2, conditions: [...OK, cond('Invalid', true, 'InvalidManifest')] })];
    const a = run(emptyMemory(), bad, rows);
    expect(a.notices.map((n) => n.event).sort()).toEqual(['deploy_applied', 'manifest_invalid']);
    expect(a.notices.find((n) => n.event === 'deploy_applied')).toMatchObject({ outcome: 'failure', problems: ['blog: invalid manifest'] });
    expect(a.statuses).toEqual([{ sha: C2, state: 'failure', description: 'not deployed: blog: invalid manifest' }]);
    expect(run(a.memory, bad, rows).notices).toEqual([]);
    // Fixed: nothing more about the manifest; the next commit's deploy says how it went.
    const fixed = run(a.memory, read(C1), [row('blog')]);
    expect(fixed.notices.map((n) => n.event)).toEqual(['deploy_applied']);
    expect(fixed.memory.invalid).toBe('');
  });

  it('a project invalid from its first commit (no row) fails the deploy too', () => {
    const d = deployOf(read(C2, { invalid: [{ id: 'notes', errors: [] }] }), []);
    expect(d).toMatchObject({ state: 'failure', projects: [{ id: 'notes', status: 'invalid' }] });
  });

  it('the worktree (no commit sha) gets no deploy and no status', () => {
    expect(run(emptyMemory(), read('worktree'), [row('a')])).toMatchObject({ notices: [], statuses: [] });
  });

  it('a removed project is forgotten', () => {
    const m: NotifyMemory = { ...emptyMemory(), projects: { gone: 'failed' }, deploy: { commit: C1, state: 'success' } };
    expect(run(m, read(C1), []).memory.projects).toEqual({});
  });
});

describe('statusDescription', () => {
  it('stays within GitHub\'s 140 characters', () => {
    const problems = Array.from({ length: 50 }, (_, i) => `p${i}: CrashLoopBackOff: instance exited 3 time(s) in a row`);
    const text = statusDescription('failure', { projects: [], problems });
    expect(text.length).toBeLessThanOrEqual(140);
    expect(text).toMatch(/^not deployed: p0: CrashLoopBackOff/);
  });
});

describe('decideBackup', () => {
  it('tells the first failure, not the retries; a success resets it', () => {
    let m = emptyMemory();
    const told: string[] = [];
    for (const ok of [false, false, false, true, false]) {
      const d = decideBackup(m, 'blog', ok, 'pg_dump failed');
      told.push(...d.notices.map((n) => n.event));
      m = d.memory;
    }
    expect(told).toEqual(['backup_failed', 'backup_failed']);
  });
});
