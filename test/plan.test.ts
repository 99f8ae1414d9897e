// The pure plan: one table of single-project cases, the inverse property over commit pairs, and the renderers.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { sha256 } from '../daemon/manifest/project.ts';
import { actualFromDesired, compareActions, inverse, plan } from '../daemon/core/plan.ts';
import { formatPlanMarkdown, formatPlanText } from '../scripts/plan-format.ts';
import type { Action, ActualProject, DesiredProject, Manifest } from '../daemon/core/types.ts';

const COMMIT = '3f2c1a9b8e7d6c5b4a3928170615f4e3d2c1b0a9';
const SCHEMA = 'export interface Widget { id: string; name: string; }\n';

function manifest(id: string, fields: Partial<Manifest> = {}): Manifest {
  return {
    id, displayName: id, hostname: `${id}.localhost`, aliases: [], state: 'running', schema: 'schema.ts',
    runtime: {}, env: {}, secrets: {}, resources: {}, ...fields,
  };
}

function desired(id: string, fields: Partial<Manifest> & { schemaText?: string } = {}): DesiredProject {
  const { schemaText = SCHEMA, ...rest } = fields;
  return {
    id, manifest: manifest(id, rest), commit: COMMIT,
    schema: { path: `projects/${id}/schema.ts`, content: schemaText, digest: sha256(schemaText) },
  };
}

function actual(id: string, fields: Partial<ActualProject> & { m?: Partial<Manifest> } = {}): ActualProject {
  const { m, ...rest } = fields;
  return {
    id, status: 'running', desiredState: 'running', manifest: manifest(id, m), schemaDigest: sha256(SCHEMA),
    schemaVersion: 'c0ffee', schemaHistory: [], present: true, ...rest,
  };
}

const OLD = 'export interface Widget { id: string; }\n';

describe('plan, one project', () => {
  it.each<[string, DesiredProject[], ActualProject[], string[], Partial<Action>[]]>([
    ['new project', [desired('blog')], [], [], [{ kind: 'create', reason: 'new project at blog.localhost' }]],
    ['new stopped project is created, not started', [desired('blog', { state: 'stopped' })], [], [],
      [{ kind: 'create', reason: 'new project at blog.localhost (state: stopped: database only, not started)' }]],
    ['new project already marked deleted', [desired('blog', { state: 'deleted', deletion: { confirm: 'blog' } })], [], [],
      [{ kind: 'noop' }]],
    ['stopped → running', [desired('blog')], [actual('blog', { status: 'stopped', desiredState: 'stopped' })], [],
      [{ kind: 'start', reason: 'state: running (was stopped)' }]],
    ['failed → start again', [desired('blog')], [actual('blog', { status: 'failed' })], [],
      [{ kind: 'start', reason: 'state: running (was failed)' }]],
    ['folder back in git', [desired('blog')], [actual('blog', { status: 'stopped', present: false })], [],
      [{ kind: 'start', reason: 'folder is back in git' }]],
    ['env changed', [desired('blog', { env: { A: '2' } })], [actual('blog', { m: { env: { A: '1' } } })], [],
      [{ kind: 'update', changes: ['env'], reason: 'changed: env' }]],
    ['hostname renamed', [desired('blog', { hostname: 'journal.localhost' })], [actual('blog')], [],
      [{ kind: 'update', changes: ['hostname'], reason: 'changed: hostname blog.localhost → journal.localhost' }]],
    ['schema changed', [desired('blog')], [actual('blog', { schemaDigest: sha256(OLD) })], [],
      [{ kind: 'schema_update', revert: false, reason: 'schema.ts changed (3f2c1a9)' }]],
    ['schema back to older content', [desired('blog', { schemaText: OLD })],
      [actual('blog', { schemaHistory: [sha256(OLD)] })], [],
      [{ kind: 'schema_update', revert: true, reason: 'schema.ts reverted to earlier content (3f2c1a9)' }]],
    ['running → stopped', [desired('blog', { state: 'stopped' })], [actual('blog')], [],
      [{ kind: 'stop', removed: false, reason: 'state: stopped; database kept' }]],
    ['folder removed', [], [actual('blog')], [],
      [{ kind: 'stop', removed: true, reason: 'folder projects/blog removed from git; instance stopped, database kept' }]],
    ['folder removed earlier', [], [actual('blog', { status: 'stopped', present: false })], [], [{ kind: 'noop' }]],
    ['deleted, database kept', [desired('blog', { state: 'deleted', deletion: { confirm: 'blog' } })], [actual('blog')], [],
      [{ kind: 'delete', dropDatabase: false }]],
    ['deleted, database dropped',
      [desired('blog', { state: 'deleted', deletion: { confirm: 'blog', dropDatabase: true } })], [actual('blog')], [],
      [{ kind: 'delete', dropDatabase: true, reason: 'state: deleted; instance removed and database DROPPED' }]],
    ['already deleted', [desired('blog', { state: 'deleted', deletion: { confirm: 'blog' } })],
      [actual('blog', { status: 'deleted' })], [], [{ kind: 'noop' }]],
    ['invalid manifest keeps what runs', [], [actual('blog')], ['blog'],
      [{ kind: 'noop', reason: 'manifest invalid; keeping what was last applied' }]],
    ['unchanged', [desired('blog')], [actual('blog')], [], [{ kind: 'noop', reason: 'up to date' }]],
    ['stop and update together', [desired('blog', { state: 'stopped', env: { A: '1' } })], [actual('blog')], [],
      [{ kind: 'update', changes: ['env'] }, { kind: 'stop', removed: false }]],
  ])('%s', (_name, d, a, invalid, expected) => {
    const actions = plan(d, a, invalid);
    expect(actions).toHaveLength(expected.length);
    expected.forEach((want, i) => expect(actions[i]).toMatchObject({ id: 'blog', ...want }));
  });

  it('is deterministic: sorted by id whatever the input order, inputs untouched', () => {
    const d = [desired('zeta'), desired('alpha', { env: { X: '1' } }), desired('mid')];
    const a = [actual('mid'), actual('alpha'), actual('gone')];
    const frozen = JSON.stringify([d, a]);
    const first = plan(d, a);
    expect(plan([...d].reverse(), [...a].reverse())).toEqual(first);
    expect(first.map((x) => `${x.id}:${x.kind}`)).toEqual(['alpha:update', 'gone:stop', 'mid:noop', 'zeta:create']);
    expect(JSON.stringify([d, a])).toBe(frozen);
  });
});

type FleetSpec = Record<string, Partial<Manifest> & { schema?: string }>;

function fleetAt(spec: FleetSpec): DesiredProject[] {
  return Object.entries(spec).map(([id, { schema, ...fields }]) =>
    desired(id, { ...fields, schemaText: schema ?? SCHEMA }));
}

/** Compare without reasons: they describe the direction they were made for. */
const shape = (actions: Action[]) =>
  [...actions].sort(compareActions).map(({ reason: _reason, ...rest }) => rest);

describe('plan inverse property', () => {
  const pairs = parse(readFileSync(new URL('./fixtures/plan/pairs.yaml', import.meta.url), 'utf8')) as
    { name: string; a: FleetSpec; b: FleetSpec }[];

  it.each(pairs)('$name', ({ a, b }) => {
    const A = fleetAt(a);
    const B = fleetAt(b);
    // B comes after A, so B's history knows A's schemas; A's history is empty.
    const historyOfB = Object.fromEntries(A.map((p) => [p.id, [p.schema.digest]]));
    const forward = plan(B, actualFromDesired(A));
    const backward = plan(A, actualFromDesired(B, historyOfB));
    expect(shape(forward.map(inverse))).toEqual(shape(backward));
    // The other way round too, except `revert`: undoing a revert is itself a revert, so it stays true.
    const noRevert = (x: ReturnType<typeof shape>) => x.map((r) => ('revert' in r ? { ...r, revert: true } : r));
    expect(noRevert(shape(backward.map(inverse)))).toEqual(noRevert(shape(forward)));
  });

  it('maps each kind to its inverse', () => {
    expect(shape([
      inverse({ kind: 'create', id: 'a', reason: '' }),
      inverse({ kind: 'start', id: 'b', reason: '' }),
      inverse({ kind: 'update', id: 'c', reason: '', changes: ['env', 'hostname'] }),
      inverse({ kind: 'schema_update', id: 'd', reason: '', revert: false }),
      inverse({ kind: 'stop', id: 'e', reason: '', removed: true }),
      inverse({ kind: 'stop', id: 'f', reason: '', removed: false }),
      inverse({ kind: 'delete', id: 'g', reason: '', dropDatabase: true }),
      inverse({ kind: 'noop', id: 'h', reason: '' }),
    ])).toEqual([
      { kind: 'stop', id: 'a', removed: true },
      { kind: 'stop', id: 'b', removed: false },
      { kind: 'update', id: 'c', changes: ['env', 'hostname'] },
      { kind: 'schema_update', id: 'd', revert: true },
      { kind: 'create', id: 'e' },
      { kind: 'start', id: 'f' },
      { kind: 'create', id: 'g' },
      { kind: 'noop', id: 'h' },
    ]);
  });
});

describe('plan renderers', () => {
  const actions: Action[] = [
    { kind: 'create', id: 'blog', reason: 'new project at blog.localhost' },
    { kind: 'noop', id: 'docs', reason: 'up to date' },
    { kind: 'delete', id: 'old', reason: 'state: deleted; instance removed and database DROPPED', dropDatabase: true },
    { kind: 'update', id: 'shop', reason: 'changed: env', changes: ['env'] },
    { kind: 'schema_update', id: 'shop', reason: 'schema.ts reverted to earlier content (3f2c1a9)', revert: true },
    { kind: 'stop', id: 'wiki', reason: 'state: stopped; database kept', removed: false },
  ];

  it('prints one line per changed project with its symbol', () => {
    expect(formatPlanText(actions).split('\n')).toEqual([
      '+ blog  new project at blog.localhost',
      '! old   state: deleted; instance removed and database DROPPED',
      '~ shop  changed: env; schema.ts reverted to earlier content (3f2c1a9)',
      '- wiki  state: stopped; database kept',
    ]);
    expect(formatPlanText([{ kind: 'noop', id: 'a', reason: 'up to date' }])).toBe('No changes.');
  });

  it('renders markdown with changes that need care in bold', () => {
    const md = formatPlanMarkdown(actions, { title: 'Fleet plan: a → b' });
    expect(md).toContain('### Fleet plan: a → b');
    expect(md).toContain('| `+` | blog | new project at blog.localhost |');
    expect(md).toContain('| `!` | old | **state: deleted; instance removed and database DROPPED (needs care)** |');
    expect(md).toContain('| `~` | shop | **changed: env; schema.ts reverted to earlier content (3f2c1a9) (needs care)** |');
    expect(md).toContain('| `-` | wiki | state: stopped; database kept |');
    expect(md).not.toContain('docs');
    expect(md).toContain('Plan: 1 to create, 0 to start, 1 to update, 1 to stop, 1 to delete.');
    expect(formatPlanMarkdown([])).toContain('No changes.');
  });

  it('renders a restart alone with ∓ (an update or start next to it picks the symbol) and waits with …', () => {
    const more: Action[] = [
      { kind: 'update', id: 'api', changes: ['env'], reason: 'changed: env' },
      { kind: 'restart', id: 'api', cause: 'spec', reason: 'spec changed: env' },
      { kind: 'restart', id: 'cron', cause: 'crash', reason: 'instance exited (1 failure(s) in a row)' },
      { kind: 'wait', id: 'lag', on: 'crash', waitMs: 2000, reason: 'backoff: next start in 2 s' },
      { kind: 'start', id: 'up', reason: 'instance not running' },
      { kind: 'restart', id: 'up', cause: 'crash', reason: 'x' },
    ];
    expect(formatPlanText(more).split('\n')).toEqual([
      '~ api   changed: env; spec changed: env',
      '∓ cron  instance exited (1 failure(s) in a row)',
      '… lag   backoff: next start in 2 s',
      '+ up    instance not running; x',
    ]);
    expect(formatPlanMarkdown(more)).toContain('Plan: 0 to create, 1 to start, 1 to update, 0 to stop, 0 to delete, 3 to restart.');
  });

  it('lists invalid manifests under the markdown plan', () => {
    const md = formatPlanMarkdown([], {
      invalid: [{ id: 'acme', errors: [{ file: 'projects/acme/project.yaml', line: 2, column: 11, path: '/hostname', message: 'bad | name' }] }],
    });
    expect(md).toContain('- projects/acme/project.yaml:2:11: /hostname: bad \\| name');
  });
});
