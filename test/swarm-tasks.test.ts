// Pure readings of Swarm's task list (daemon/drivers/swarm-tasks.ts): after a node is lost Swarm starts a new task
// elsewhere; until it runs, that is a task being rescheduled, not a crash of the project (no restart is counted).
import { describe, expect, it } from 'vitest';
import { LABEL_SPEC_HASH } from '../daemon/drivers/container-spec.ts';
import { reschedulingTask, type Task } from '../daemon/drivers/swarm-tasks.ts';
import { planFleet } from '../daemon/core/plan.ts';
import type { ActualProject, DesiredProject, Manifest } from '../daemon/core/types.ts';
import { sha256 } from '../daemon/manifest/project.ts';

const task = (id: string, state: string, desired = 'running', extra: Partial<Task['Status']> = {}, hash = 'h1', at = '2026-01-01T00:00:00Z'): Task => ({
  ID: id, ServiceID: 's', NodeID: 'n2', CreatedAt: at, DesiredState: desired,
  Status: { State: state, ...extra }, Spec: { ContainerSpec: { Labels: { [LABEL_SPEC_HASH]: hash } } },
});

describe('a task Swarm is bringing up in place of a lost one', () => {
  it.each([
    ['the old task shut down (its node is down), a new one assigned', [task('old', 'running', 'shutdown'), task('new', 'assigned', 'running', {}, 'h1', '2026-01-01T00:01:00Z')], 'new'],
    ['preparing (pulling or creating the container)', [task('new', 'preparing')], 'new'],
    ['starting (container up, healthcheck not passed)', [task('new', 'starting')], 'new'],
    ['pending on a node that is not there yet', [task('new', 'pending')], 'new'],
    ['its node is down, Swarm shut it down and waits out the restart delay before the replacement', [task('old', 'running', 'shutdown')], 'old', ['n2']],
  ] as [string, Task[], string, string[]?][])('%s', (_name, tasks, want, down = []) => {
    expect(reschedulingTask(tasks, 'h1', new Set(down))?.ID).toBe(want);
  });

  it.each([
    ['nothing wanted running', [task('old', 'running', 'shutdown')]],
    ['no node fits (the scheduler says so): that is Unschedulable, not a reschedule', [task('new', 'pending', 'running', { Err: 'no suitable node (scheduling constraints not satisfied on 2 nodes)' })]],
    ['a task that ended (a crash)', [task('new', 'failed', 'shutdown', { Err: 'task: non-zero exit (1)' })]],
    ['a task of another spec (a deploy in progress)', [task('new', 'assigned', 'running', {}, 'h2')]],
    ['a task that runs', [task('new', 'running')]],
    ['shut down on a node that is up (a stop, a drain finished)', [task('old', 'running', 'shutdown')], ['n1']],
    ['on a down node but ended', [task('old', 'failed', 'shutdown')], ['n2']],
  ] as [string, Task[], string[]?][])('none: %s', (_name, tasks, down = []) => {
    expect(reschedulingTask(tasks, 'h1', new Set(down))).toBeUndefined();
  });
});

describe('plan: an instance being rescheduled', () => {
  const SCHEMA = 'export interface W { id: string }\n';
  const manifest: Manifest = { id: 'web', displayName: 'Web', hostname: 'web.localhost', aliases: [], state: 'running', schema: 'schema.ts', runtime: {}, env: {}, secrets: {}, resources: {} };
  const desired: DesiredProject = { id: 'web', manifest, commit: 'c1', schema: { path: 'projects/web/schema.ts', content: SCHEMA, digest: sha256(SCHEMA) } };
  const actual: ActualProject = { id: 'web', status: 'running', desiredState: 'running', manifest, schemaDigest: sha256(SCHEMA), schemaVersion: 'c1', schemaHistory: [], present: true, provisioned: 20 };

  it('waits for Swarm (no start, no crash restart)', () => {
    const plan = planFleet({
      desired: [desired], actual: [actual], invalid: [],
      instances: new Map([['web', { running: false, specHash: '', exitCode: null, pending: 'Swarm is starting a new task', pendingReason: 'Rescheduling' }]]),
    });
    expect(plan).toEqual([{ kind: 'wait', id: 'web', on: 'reschedule', waitMs: 0, reason: 'Swarm is starting a new task' }]);
  });
});
