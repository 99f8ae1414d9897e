// A failed database move is told as the project's failure (project_failed, with the move's own message), once, and
// its success as project_recovered: the reconciler leaves the failure on the Reconciling condition while the move
// waits for its backoff, so no notice is repeated per try.
import { describe, expect, it } from 'vitest';
import type { Condition } from '../daemon/core/types.ts';
import type { FleetRead } from '../daemon/git/read.ts';
import { decidePass, emptyMemory } from '../daemon/notify/decide.ts';
import { noticeText } from '../daemon/notify/render.ts';
import type { ProjectRecord } from '../daemon/registry/registry.ts';

const C1 = 'a'.repeat(40);
const cond = (type: Condition['type'], status: boolean, reason: string, message = ''): Condition => ({ type, status, reason, message, at: '2026-01-01T00:00:00Z' });
const OK = [cond('Healthy', true, 'Ready'), cond('Ready', true, 'Converged'), cond('Stalled', false, 'Running'), cond('Reconciling', true, 'Ok')];
const MOVE_FAILED = 'database move main → hot failed; notes stays on main, nothing was lost: could not reach Postgres server hot for notes';
const row = (conditions: Condition[]): ProjectRecord => ({
  id: 'notes', displayName: 'notes', hostname: 'notes.localhost', aliases: [], status: 'running', desiredState: 'running', upstream: '127.0.0.1:1',
  schemaVersion: C1, schemaDigest: 'd', observedCommit: C1, appliedCommit: C1, lastHealth: null, conditions, manifest: null,
  secretRefs: {}, port: 1, updatedAt: '', databaseUrlRef: '', databaseName: 'atomo_notes', roleName: 'atomo_notes',
  schemaRef: { type: 'git', repo: '', path: '', ref: C1 }, schemaHistory: [], env: {}, present: true, specHash: null, secretsVersion: 0,
  restarts: 0, provisionedConnections: 20, lastError: MOVE_FAILED, createdAt: '', databaseServer: 'main', oldDatabaseServer: null,
});
const read: FleetRead = { commit: 'x', projects: [], invalid: [], fleet: null, fleetIssues: [] };

describe('notifications: a failed database move', () => {
  it('project_failed once with the move\'s message, nothing at the retries, project_recovered when it moved', () => {
    const failed = row([...OK.slice(0, 3), cond('Reconciling', false, 'PROVISION', MOVE_FAILED)]);
    const first = decidePass({ ...emptyMemory(), projects: {} }, read, [failed]);
    expect(first.notices).toHaveLength(1);
    expect(noticeText(first.notices[0])).toBe(`Project notes failed (running): PROVISION: ${MOVE_FAILED}`);
    expect(decidePass(first.memory, read, [failed]).notices).toEqual([]);
    const moved = { ...row(OK), databaseServer: 'hot', oldDatabaseServer: 'main', lastError: null };
    expect(decidePass(first.memory, read, [moved]).notices.map((n) => n.event)).toEqual(['project_recovered']);
  });
});
