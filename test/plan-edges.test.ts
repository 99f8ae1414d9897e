// The plan at its edges: each condition in plan.ts flipped one way or the other by one row of a table.
import { describe, expect, it } from 'vitest';
import { sha256 } from '../daemon/manifest/project.ts';
import { actualFromDesired, changedFields, compareActions, inverse, plan, planFleet, targetSpecHash, UPDATE_FIELDS } from '../daemon/core/plan.ts';
import type { Action, ActualProject, DesiredProject, Manifest, ObservedInstance, Pacing, PlanInput, ProjectStatus } from '../daemon/core/types.ts';
import { PROCESS_LAYOUT as PROCESS } from '../daemon/drivers/process.ts';
import { dockerLayout } from '../daemon/drivers/container-spec.ts';

const DOCKER = dockerLayout();

const COMMIT = '3f2c1a9b8e7d6c5b4a3928170615f4e3d2c1b0a9';
const SCHEMA = 'export interface Widget { id: string; name: string; }\n';
const OLD = 'export interface Widget { id: string; }\n';

function manifest(id: string, fields: Partial<Manifest> = {}): Manifest {
  return {
    id, displayName: id, hostname: `${id}.localhost`, aliases: [], state: 'running', schema: 'schema.ts',
    runtime: {}, env: {}, secrets: {}, resources: {}, ...fields,
  };
}

function desired(id: string, fields: Partial<Manifest> & { commit?: string; schemaPath?: string } = {}): DesiredProject {
  const { commit = COMMIT, schemaPath = `projects/${id}/schema.ts`, ...rest } = fields;
  return { id, manifest: manifest(id, rest), commit, schema: { path: schemaPath, content: SCHEMA, digest: sha256(SCHEMA) } };
}

function actual(id: string, fields: Partial<ActualProject> & { m?: Partial<Manifest> } = {}): ActualProject {
  const { m, ...rest } = fields;
  return {
    id, status: 'running', desiredState: 'running', manifest: manifest(id, m), schemaDigest: sha256(SCHEMA),
    schemaVersion: 'c0ffee', schemaHistory: [], present: true, ...rest,
  };
}

const one = (d: DesiredProject[], a: ActualProject[]) => plan(d, a).map(({ kind, reason }) => `${kind}: ${reason}`);

describe('plan edges: does an instance that should run get a start?', () => {
  it.each<[string, Partial<ActualProject>, string[]]>([
    ['running: no', {}, ['noop: up to date']],
    ['provisioning: no, it is on its way up', { status: 'provisioning' }, ['noop: up to date']],
    ['failed: yes', { status: 'failed' }, ['start: state: running (was failed)']],
    ['stopped: yes', { status: 'stopped', desiredState: 'stopped' }, ['start: state: running (was stopped)']],
    ['running but last applied as stopped: yes, the registry must say running',
      { status: 'running', desiredState: 'stopped' }, ['start: state: running (was running)']],
    ['provisioning but last applied as stopped: yes',
      { status: 'provisioning', desiredState: 'stopped' }, ['start: state: running (was provisioning)']],
    ['folder back in git while the registry still says running: yes',
      { present: false }, ['start: folder is back in git']],
    ['folder back in git, provisioning: yes', { present: false, status: 'provisioning' }, ['start: folder is back in git']],
  ])('%s', (_name, a, want) => {
    expect(one([desired('blog')], [actual('blog', a)])).toEqual(want);
  });
});

describe('plan edges: does an instance that should not run get a stop?', () => {
  it.each<[string, Partial<ActualProject>, string[]]>([
    ['running: yes', {}, ['stop: state: stopped; database kept']],
    ['failed but last applied as running: yes, it may come back', { status: 'failed' }, ['stop: state: stopped; database kept']],
    ['provisioning, last applied as running: yes', { status: 'provisioning' }, ['stop: state: stopped; database kept']],
    ['still running though last applied as stopped: yes', { desiredState: 'stopped' }, ['stop: state: stopped; database kept']],
    ['stopped: no', { status: 'stopped', desiredState: 'stopped' }, ['noop: up to date']],
    ['failed and last applied as stopped: no', { status: 'failed', desiredState: 'stopped' }, ['noop: up to date']],
    ['folder removed earlier, back in git as stopped: no', { present: false, status: 'running' }, ['noop: up to date']],
  ])('%s', (_name, a, want) => {
    expect(one([desired('blog', { state: 'stopped' })], [actual('blog', { m: { state: 'stopped' }, ...a })])).toEqual(want);
  });
});

describe('plan edges: deletion and absence', () => {
  it.each<[string, DesiredProject[], ActualProject[], Partial<Action>[]]>([
    ['deleted in git, never applied', [desired('blog', { state: 'deleted' })], [],
      [{ kind: 'noop', reason: 'state: deleted; nothing runs' }]],
    ['deleted in git, deleted in the registry', [desired('blog', { state: 'deleted' })], [actual('blog', { status: 'deleted' })],
      [{ kind: 'noop', reason: 'state: deleted; nothing runs' }]],
    ['deleted without a deletion block: database kept', [desired('blog', { state: 'deleted' })], [actual('blog')],
      [{ kind: 'delete', dropDatabase: false, reason: 'state: deleted; instance removed, database kept' }]],
    ['dropDatabase false: database kept', [desired('blog', { state: 'deleted', deletion: { confirm: 'blog', dropDatabase: false } })],
      [actual('blog')], [{ kind: 'delete', dropDatabase: false, reason: 'state: deleted; instance removed, database kept' }]],
    ['running in git, deleted in the registry: created again', [desired('blog')], [actual('blog', { status: 'deleted' })],
      [{ kind: 'create', reason: 'new project at blog.localhost' }]],
    ['folder removed, project deleted before', [], [actual('blog', { status: 'deleted' })],
      [{ kind: 'noop', reason: 'deleted' }]],
    ['folder removed, row already marked absent and deleted', [], [actual('blog', { status: 'deleted', present: false })],
      [{ kind: 'noop', reason: 'deleted' }]],
    ['folder removed earlier', [], [actual('blog', { status: 'stopped', present: false })],
      [{ kind: 'noop', reason: 'folder removed earlier; database kept' }]],
    ['folder removed while stopped: stopped again (it is present in the registry)', [], [actual('blog', { status: 'stopped' })],
      [{ kind: 'stop', removed: true, reason: 'folder projects/blog removed from git; instance stopped, database kept' }]],
  ])('%s', (_name, d, a, want) => {
    const actions = plan(d, a);
    expect(actions).toHaveLength(want.length);
    want.forEach((w, i) => expect(actions[i]).toEqual(expect.objectContaining({ id: 'blog', ...w })));
  });
});

describe('plan edges: reasons', () => {
  it.each<[string, DesiredProject, Partial<ActualProject>, string]>([
    ['several fields, in UPDATE_FIELDS order', desired('blog', { env: { A: '1' }, displayName: 'Blog', hostname: 'j.localhost' }), {},
      'update: changed: displayName, hostname blog.localhost → j.localhost, env'],
    ['the schema file name comes from its path', desired('blog', { schemaPath: 'projects/blog/db/app-schema.ts' }),
      { schemaDigest: sha256(OLD) }, `schema_update: app-schema.ts changed (3f2c1a9)`],
    ['a commit that is not a full sha is shown whole', desired('blog', { commit: 'worktree' }),
      { schemaDigest: sha256(OLD) }, 'schema_update: schema.ts changed (worktree)'],
    ['a short sha is shown whole', desired('blog', { commit: '3f2c1a9' }),
      { schemaDigest: sha256(OLD) }, 'schema_update: schema.ts changed (3f2c1a9)'],
    ['41 hex digits are not a sha', desired('blog', { commit: `${COMMIT}0` }),
      { schemaDigest: sha256(OLD) }, `schema_update: schema.ts changed (${COMMIT}0)`],
    ['a sha with a prefix is not a sha', desired('blog', { commit: `x${COMMIT}` }),
      { schemaDigest: sha256(OLD) }, `schema_update: schema.ts changed (x${COMMIT})`],
    ['upper-case hex is not git\'s spelling', desired('blog', { commit: COMMIT.toUpperCase() }),
      { schemaDigest: sha256(OLD) }, `schema_update: schema.ts changed (${COMMIT.toUpperCase()})`],
    ['no schema deployed yet', desired('blog'), { schemaDigest: null }, 'schema_update: schema.ts changed (3f2c1a9)'],
  ])('%s', (_name, d, a, want) => {
    expect(one([d], [actual('blog', a)])).toEqual([want]);
  });
});

describe('plan edges: order and invalid projects', () => {
  it('orders one project\'s actions start, update, schema_update', () => {
    const d = desired('blog', { env: { A: '1' } });
    const a = actual('blog', { status: 'failed', schemaDigest: sha256(OLD) });
    expect(plan([d], [a]).map((x) => x.kind)).toEqual(['start', 'update', 'schema_update']);
  });

  it('orders one project\'s actions update, schema_update, stop', () => {
    const d = desired('blog', { env: { A: '1' }, state: 'stopped' });
    const a = actual('blog', { schemaDigest: sha256(OLD) });
    expect(plan([d], [a]).map((x) => x.kind)).toEqual(['update', 'schema_update', 'stop']);
  });

  it('an invalid manifest wins over a valid one for the same id, and lists an id no side knows', () => {
    expect(plan([desired('blog', { env: { A: '1' } })], [actual('blog')], ['blog', 'ghost']).map((x) => `${x.id}:${x.kind}`))
      .toEqual(['blog:noop', 'ghost:noop']);
  });

  it('sorts many projects by id whatever the input order', () => {
    const ids = ['m', 'b', 'z', 'a', 'q', 'c'];
    expect(plan(ids.map((id) => desired(id)), []).map((x) => x.id)).toEqual(['a', 'b', 'c', 'm', 'q', 'z']);
  });

  it.each<[string, string, string, number]>([
    ['a before b', 'a', 'b', -1],
    ['b after a', 'b', 'a', 1],
    ['ids by code unit (upper case first)', 'Z', 'a', -1],
  ])('compareActions: %s', (_name, x, y, sign) => {
    const noop = (id: string): Action => ({ kind: 'noop', id, reason: '' });
    expect(Math.sign(compareActions(noop(x), noop(y)))).toBe(sign);
    // The id decides before the kind.
    expect(Math.sign(compareActions({ kind: 'noop', id: x, reason: '' }, { kind: 'create', id: y, reason: '' }))).toBe(sign);
  });

  it('compareActions puts one project\'s kinds in plan order', () => {
    const kinds: Action[] = [
      { kind: 'noop', id: 'a', reason: '' },
      { kind: 'delete', id: 'a', reason: '', dropDatabase: false },
      { kind: 'stop', id: 'a', reason: '', removed: false },
      { kind: 'schema_update', id: 'a', reason: '', revert: false },
      { kind: 'update', id: 'a', reason: '', changes: [] },
      { kind: 'start', id: 'a', reason: '' },
      { kind: 'create', id: 'a', reason: '' },
    ];
    expect([...kinds].sort(compareActions).map((x) => x.kind))
      .toEqual(['create', 'start', 'update', 'schema_update', 'stop', 'delete', 'noop']);
  });
});

describe('changedFields', () => {
  it.each<[string, Partial<Manifest>, Partial<Manifest>, string[]]>([
    ['nothing', {}, {}, []],
    ['key order alone is no change', { env: { A: '1', B: '2' } }, { env: { B: '2', A: '1' } }, []],
    ['an absent optional field equals null', { backup: undefined }, {}, []],
    ['state and schema path are not updates', { state: 'stopped', schema: 'a.ts' }, {}, []],
    ['every update field', {}, {
      displayName: 'x', hostname: 'x.localhost', aliases: ['y.localhost'], runtime: { image: 'i' }, env: { A: '1' },
      secrets: { S: 'S' }, resources: { cpus: 1 }, edge: { maxBodyBytes: 1 }, backup: { schedule: '0 3 * * *', retention: 7 },
      tenancy: { rls: true }, placement: { constraints: ['node.labels.tier==hot'] },
    }, [...UPDATE_FIELDS]],
  ])('%s', (_name, before, after, want) => {
    expect(changedFields(manifest('blog', before), manifest('blog', after))).toEqual(want);
  });
});

describe('actualFromDesired', () => {
  it.each<[Manifest['state'], ProjectStatus, 'running' | 'stopped']>([
    ['running', 'running', 'running'],
    ['stopped', 'stopped', 'stopped'],
    ['deleted', 'deleted', 'stopped'],
  ])('state %s → status %s, desired %s', (state, status, desiredState) => {
    const [a] = actualFromDesired([desired('blog', { state })]);
    expect(a).toEqual({
      id: 'blog', status, desiredState, manifest: manifest('blog', { state }), schemaDigest: sha256(SCHEMA),
      schemaVersion: COMMIT, schemaHistory: [], present: true, provisioned: 20, databaseServer: 'main',
    });
  });

  it('records the connection limit a commit provisions, so commit-to-commit plans show its change', () => {
    const [a] = actualFromDesired([desired('blog', { resources: { connections: 5 } })]);
    expect(a.provisioned).toBe(5);
    const next = desired('blog', { resources: { connections: 9 } });
    expect(plan([next], [a]).filter((x) => x.kind === 'provision')).toEqual([
      { kind: 'provision', id: 'blog', connections: 9, reason: 'connection limit 5 → 9' },
    ]);
  });

  it('takes the schema history given per id', () => {
    const [a, b] = actualFromDesired([desired('a'), desired('b')], { a: ['d1', 'd2'] });
    expect([a.schemaHistory, b.schemaHistory]).toEqual([['d1', 'd2'], []]);
  });
});

describe('inverse keeps the reason it inverts', () => {
  it.each<[Action, Action]>([
    [{ kind: 'create', id: 'a', reason: 'r' }, { kind: 'stop', id: 'a', removed: true, reason: 'inverse of: r' }],
    [{ kind: 'start', id: 'a', reason: 'r' }, { kind: 'stop', id: 'a', removed: false, reason: 'inverse of: r' }],
    [{ kind: 'stop', id: 'a', removed: true, reason: 'r' }, { kind: 'create', id: 'a', reason: 'inverse of: r' }],
    [{ kind: 'stop', id: 'a', removed: false, reason: 'r' }, { kind: 'start', id: 'a', reason: 'inverse of: r' }],
    [{ kind: 'update', id: 'a', changes: ['env'], reason: 'r' }, { kind: 'update', id: 'a', changes: ['env'], reason: 'inverse of: r' }],
    [{ kind: 'schema_update', id: 'a', revert: false, reason: 'r' }, { kind: 'schema_update', id: 'a', revert: true, reason: 'inverse of: r' }],
    [{ kind: 'delete', id: 'a', dropDatabase: true, reason: 'r' }, { kind: 'create', id: 'a', reason: 'inverse of: r' }],
    [{ kind: 'noop', id: 'a', reason: 'r' }, { kind: 'noop', id: 'a', reason: 'r' }],
    [{ kind: 'restart', id: 'a', cause: 'spec', reason: 'r' }, { kind: 'restart', id: 'a', cause: 'spec', reason: 'inverse of: r' }],
    [{ kind: 'wait', id: 'a', on: 'crash', waitMs: 5, reason: 'r' }, { kind: 'wait', id: 'a', on: 'crash', waitMs: 5, reason: 'r' }],
  ])('%j', (action, want) => {
    expect(inverse(action)).toEqual(want);
  });

  it('copies, never shares, the changed fields', () => {
    const action: Action = { kind: 'update', id: 'a', changes: ['env'], reason: 'r' };
    const inv = inverse(action) as Extract<Action, { kind: 'update' }>;
    inv.changes.push('hostname');
    expect(action.changes).toEqual(['env']);
  });
});

describe('plan edges: the instance check (instances observed, backoff pacing)', () => {
  const d = desired('blog');
  const target = { manifest: d.manifest, schemaDigest: d.schema.digest };
  const row = (fields: Partial<ActualProject> = {}) => actual('blog', { port: 4100, secretsVersion: 1, ...fields });
  const hash = targetSpecHash(row(), target, PROCESS)!;
  const up: ObservedInstance = { running: true, specHash: hash };
  const run = (fields: Partial<PlanInput> & { a?: Partial<ActualProject>; inst?: ObservedInstance | null; pace?: Pacing; des?: DesiredProject[] }) => {
    const { a, inst, pace, des, ...rest } = fields;
    return planFleet({
      desired: des ?? [d], actual: [row(a)], driver: PROCESS,
      instances: new Map(inst ? [['blog', inst]] : []), pacing: new Map(pace ? [['blog', pace]] : []), ...rest,
    }).map((x) => `${x.kind}${'cause' in x ? `(${x.cause})` : ''}${'on' in x ? `(${x.on})` : ''}: ${x.reason}`);
  };

  it.each<[string, Parameters<typeof run>[0], string[]]>([
    ['runs its spec: nothing to do', { inst: up }, ['noop: up to date']],
    ['does not run, never crashed: start', {}, ['start: instance not running']],
    ['exited with 0: started again at once', { inst: { running: false, specHash: hash, exitCode: 0 } }, ['start: instance exited with 0; started again']],
    ['exited with 1 after 2 crashes: restart (crash)', { inst: { running: false, specHash: hash, exitCode: 1 }, pace: { failures: 2 } },
      ['restart(crash): instance exited (2 failure(s) in a row)']],
    ['backoff: wait, no start', { pace: { failures: 3, waitMs: 1500 } }, ['wait(crash): backoff: next start in 2 s']],
    ['backoff of 0 ms still waits this pass', { pace: { waitMs: 0 } }, ['wait(crash): backoff: next start in 0 s']],
    ['env changed: update, then restart (spec)', { inst: up, des: [desired('blog', { env: { A: '1' } })] },
      ['update: changed: env', 'restart(spec): spec changed: env']],
    ['hostname changed: update only, no restart', { inst: up, des: [desired('blog', { hostname: 'j.localhost' })] },
      ['update: changed: hostname blog.localhost → j.localhost']],
    ['schema changed: schema_update and restart (spec: schema)',
      { inst: { running: true, specHash: targetSpecHash(row(), { ...target, schemaDigest: sha256(OLD) }, PROCESS)! }, a: { schemaDigest: sha256(OLD) } },
      ['schema_update: schema.ts changed (3f2c1a9)', 'restart(spec): spec changed: schema']],
    ['secrets rotated: restart', { inst: up, a: { secretsVersion: 2 } }, ['restart(spec): spec changed: secrets or port']],
    ['replacement paced: wait', { inst: { running: true, specHash: 'other' }, pace: { replaceWaitMs: 900 } },
      ['wait(replace): replacement not ready; retried in 1 s']],
    ['no driver name: no spec restart', { inst: { running: true, specHash: 'other' }, driver: undefined }, ['noop: up to date']],
    ['no spec hash from the driver: no spec restart', { inst: { running: true, specHash: '' } }, ['noop: up to date']],
    ['driver unreachable: no instance action', { instances: null, a: { status: 'failed' } }, ['noop: up to date']],
    ['back from stopped and not running: one start', { a: { status: 'stopped', desiredState: 'stopped' } }, ['start: state: running (was stopped)']],
    ['back from stopped, backoff pending: still one start', { a: { status: 'stopped', desiredState: 'stopped' }, pace: { waitMs: 100 } },
      ['start: state: running (was stopped)']],
    ['stopped in git and the registry, an instance still runs: stop', { a: { status: 'stopped', desiredState: 'stopped' }, inst: up, des: [desired('blog', { state: 'stopped' })] },
      ['stop: state: stopped; an instance still runs']],
    ['folder removed earlier, an instance still runs: stop (removed)', { a: { status: 'stopped', present: false }, inst: up, des: [] },
      ['stop: folder projects/blog removed from git; instance stopped, database kept']],
    ['folder removed earlier, nothing runs: noop', { a: { status: 'stopped', present: false }, des: [] }, ['noop: folder removed earlier; database kept']],
    ['delete paced: wait', { des: [desired('blog', { state: 'deleted', deletion: { confirm: 'blog' } })], pace: { deleteWaitMs: 2500 } },
      ['wait(delete): delete failed; retried in 3 s']],
    ['invalid, its instance crashed: restart (crash) as last applied', { invalid: ['blog'], des: [], pace: { failures: 1 } },
      ['restart(crash): instance exited (1 failure(s) in a row)', 'noop: manifest invalid; keeping what was last applied']],
    ['invalid, its instance crashed and is paced: wait (crash)', { invalid: ['blog'], des: [], pace: { failures: 1, waitMs: 700 } },
      ['wait(crash): backoff: next start in 1 s', 'noop: manifest invalid; keeping what was last applied']],
    ['invalid, spec differs: never a restart', { invalid: ['blog'], des: [], inst: { running: true, specHash: 'other' } },
      ['noop: manifest invalid; keeping what was last applied']],
    ['invalid, spec differs and paced: no wait either', { invalid: ['blog'], des: [], inst: { running: true, specHash: 'other' }, pace: { replaceWaitMs: 5 } },
      ['noop: manifest invalid; keeping what was last applied']],
    ['invalid and stopped: nothing started', { invalid: ['blog'], des: [], a: { desiredState: 'stopped', status: 'stopped' } },
      ['noop: manifest invalid; keeping what was last applied']],
    ['invalid and removed: nothing started', { invalid: ['blog'], des: [], a: { present: false, status: 'stopped' } },
      ['noop: manifest invalid; keeping what was last applied']],
    ['invalid without a deployed schema: nothing started', { invalid: ['blog'], des: [], a: { schemaDigest: null } },
      ['noop: manifest invalid; keeping what was last applied']],
    ['invalid and deleted: nothing started', { invalid: ['blog'], des: [], a: { status: 'deleted' } },
      ['noop: manifest invalid; keeping what was last applied']],
  ])('%s', (_name, input, want) => {
    expect(run(input)).toEqual(want);
  });

  it('the CLI preview (instances undefined) assumes what the registry says: a changed spec restarts a running row', () => {
    const rows = [row({ specHash: hash })];
    const env = [desired('blog', { env: { A: '1' } })];
    expect(planFleet({ desired: env, actual: rows, driver: PROCESS }).map((x) => x.kind)).toEqual(['update', 'restart']);
    expect(planFleet({ desired: [d], actual: rows, driver: PROCESS }).map((x) => x.kind)).toEqual(['noop']);
    expect(planFleet({ desired: env, actual: [row({ specHash: hash, status: 'stopped' })], driver: PROCESS }).map((x) => x.kind)).toEqual(['start', 'update']);
  });

  it('the spec hash: process driver uses the row port, docker the manifest port', () => {
    expect(targetSpecHash(undefined, target, PROCESS)).toBeNull();
    expect(targetSpecHash(row(), target, undefined)).toBeNull();
    expect(targetSpecHash(row({ port: 4101 }), target, PROCESS)).not.toBe(hash);
    expect(targetSpecHash(row({ port: 4101 }), target, DOCKER)).toBe(targetSpecHash(row({ port: 4102 }), target, DOCKER));
    expect(targetSpecHash(row({ port: null, secretsVersion: undefined }), target, PROCESS))
      .toBe(targetSpecHash(row({ port: 0, secretsVersion: 0 }), target, PROCESS));
  });
});

describe('plan edges: is provisioning planned?', () => {
  const base = () => actualFromDesired([desired('blog')])[0];
  it.each<[string, number | null | undefined, Partial<Manifest>, Action[]]>([
    ['recorded with the same limit: no', 20, {}, []],
    ['unknown (a row from before provisioning was recorded, as a test builds it): no', undefined, {}, []],
    ['never provisioned (null): yes, role, database and secrets', null, {}, [{ kind: 'provision', id: 'blog', connections: 20, reason: 'role, database and secrets' }]],
    ['the limit changed: yes', 20, { resources: { connections: 50 } }, [{ kind: 'provision', id: 'blog', connections: 50, reason: 'connection limit 20 → 50' }]],
    ['state stopped, never provisioned: yes (the database exists for a stopped project too)', null, { state: 'stopped' }, [{ kind: 'provision', id: 'blog', connections: 20, reason: 'role, database and secrets' }]],
  ])('%s', (_name, provisioned, over, want) => {
    const a = { ...base(), provisioned };
    const got = plan([desired('blog', over)], [a]).filter((x) => x.kind === 'provision');
    expect(got).toEqual(want);
  });

  it('a new project is provisioned by its create, a deleted or invalid one never', () => {
    expect(plan([desired('blog')], []).map((x) => x.kind)).toEqual(['create']);
    const a = { ...base(), provisioned: null };
    expect(plan([desired('blog', { state: 'deleted', deletion: { confirm: 'blog' } })], [a]).map((x) => x.kind)).toEqual(['delete']);
    expect(plan([], [a], ['blog']).map((x) => x.kind)).toEqual(['noop']);
  });

  it('provision comes before start in a plan, and inverts to itself', () => {
    const a = { ...base(), provisioned: null, desiredState: 'stopped' as const, status: 'stopped' as const };
    expect(plan([desired('blog')], [a]).map((x) => x.kind)).toEqual(['provision', 'start']);
    const p: Action = { kind: 'provision', id: 'blog', connections: 9, reason: 'r' };
    expect(inverse(p)).toEqual({ ...p, reason: 'inverse of: r' });
  });
});
