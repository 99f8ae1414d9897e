// The plan's database moves: "registry says main, manifest says hot" is one guarded `move_database` action (the
// instance actions of the pass give way to it, as to a restore); the copy a move leaves behind is dropped only when
// a later manifest says `dropOld: true` (`drop_old_database`). Both are bold in a pull request comment.
import { describe, expect, it } from 'vitest';
import { sha256 } from '../daemon/manifest/project.ts';
import { actualFromDesired, inverse, planFleet } from '../daemon/core/plan.ts';
import type { ActualProject, DesiredProject, Manifest, ObservedInstance, Pacing, PlanInput } from '../daemon/core/types.ts';
import { PROCESS_LAYOUT } from '../daemon/drivers/process.ts';
import { formatPlanMarkdown, formatPlanText, summary } from '../scripts/plan-format.ts';
import { Backoff } from '../daemon/core/backoff.ts';
import { pacing } from '../daemon/reconcile/pacing.ts';
import { dropKey } from '../daemon/reconcile/move.ts';

const SCHEMA = 'export interface Widget { id: string; }\n';
const manifest = (fields: Partial<Manifest> = {}): Manifest => ({
  id: 'blog', displayName: 'Blog', hostname: 'blog.localhost', aliases: [], state: 'running', schema: 'schema.ts',
  runtime: {}, env: {}, secrets: {}, resources: {}, ...fields,
});
const desired = (fields: Partial<Manifest> = {}): DesiredProject =>
  ({ id: 'blog', manifest: manifest(fields), commit: 'c0ffee1', schema: { path: 'projects/blog/schema.ts', content: SCHEMA, digest: sha256(SCHEMA) } });
const actual = (fields: Partial<ActualProject> = {}): ActualProject => ({
  id: 'blog', status: 'running', desiredState: 'running', manifest: manifest(), schemaDigest: sha256(SCHEMA), schemaVersion: 'c0ffee1',
  schemaHistory: [], present: true, provisioned: 20, databaseServer: 'main', oldDatabaseServer: null, ...fields,
});

function run(o: { d?: Partial<Manifest>; a?: Partial<ActualProject>; instances?: Map<string, ObservedInstance> | null; pacing?: Pacing; invalid?: boolean }): string[] {
  const input: PlanInput = {
    desired: [desired(o.d)], actual: [actual(o.a)], invalid: o.invalid ? ['blog'] : [], driver: PROCESS_LAYOUT,
    instances: o.instances === undefined ? new Map([['blog', { running: true, specHash: '' }]]) : o.instances,
    pacing: o.pacing ? new Map([['blog', o.pacing]]) : undefined,
  };
  return planFleet(input).map((a) => `${a.kind}: ${a.reason}${a.kind === 'move_database' && a.refused ? ' [refused]' : ''}`);
}

const MOVE = 'move_database: database moves main → hot: instance stopped, fresh backup restored on hot, DATABASE_URL switched, instance started again; the copy on main is kept';
const DROP = 'drop_old_database: the old copy of atomo_blog on main is DROPPED after a backup (database.dropOld: true)';

describe('plan: database moves', () => {
  it.each<[string, Parameters<typeof run>[0], string[]]>([
    ['same server: nothing', { d: { database: { server: 'main' } } }, ['noop: up to date']],
    ['no database block is main', { a: { databaseServer: 'main' } }, ['noop: up to date']],
    ['registry main, manifest hot: a move', { d: { database: { server: 'hot' } } }, [MOVE]],
    ['a crashed instance: the move starts it, no separate restart', { d: { database: { server: 'hot' } }, instances: new Map([['blog', { running: false, specHash: '', exitCode: 1 }]]) }, [MOVE]],
    ['an env change in the same pass: the update stays, the move restarts the instance', { d: { database: { server: 'hot' }, env: { A: '1' } } },
      ['update: changed: env', MOVE]],
    ['state: stopped: moved, nothing started, the stop stays', { d: { database: { server: 'hot' }, state: 'stopped' }, a: { status: 'stopped', desiredState: 'stopped' }, instances: new Map() },
      [MOVE]],
    ['the driver out of reach: the move waits', { d: { database: { server: 'hot' } }, instances: null }, ['noop: up to date']],
    ['a failed move waits for its backoff', { d: { database: { server: 'hot' } }, pacing: { moveWaitMs: 4100 } },
      ['wait: database move main → hot failed; retried in 5 s']],
    ['never provisioned: nothing to move (the create provisions on its server)', { d: { database: { server: 'hot' } }, a: { provisioned: null } },
      ['provision: role, database and secrets']],
    ['an invalid manifest: nothing moves', { d: { database: { server: 'hot' } }, invalid: true }, ['noop: manifest invalid; keeping what was last applied']],
    ['suspended: nothing moves', { d: { database: { server: 'hot' } }, a: { suspended: { by: 'alice', at: '2026-01-01T00:00:00.000Z' } } },
      ['suspended: suspended by alice at 2026-01-01T00:00:00Z: left as it is']],
    ['being deleted: no move', { d: { database: { server: 'hot' }, state: 'deleted', deletion: { confirm: 'blog' } } },
      ['delete: state: deleted; instance removed, database kept']],
    ['unknown server in the registry (a preview between commits without one): no move', { d: { database: { server: 'hot' } }, a: { databaseServer: undefined } }, ['noop: up to date']],
    ['moved, old copy kept: nothing more', { d: { database: { server: 'hot' } }, a: { databaseServer: 'hot', oldDatabaseServer: 'main' } }, ['noop: up to date']],
    ['dropOld: the old copy is dropped', { d: { database: { server: 'hot', dropOld: true } }, a: { databaseServer: 'hot', oldDatabaseServer: 'main' } }, [DROP]],
    ['dropOld in the commit whose move left the copy: kept until a later commit', { d: { database: { server: 'hot', dropOld: true } }, a: { databaseServer: 'hot', oldDatabaseServer: 'main', oldDatabaseCommit: 'c0ffee1' } },
      ['noop: the old copy of atomo_blog on main is kept: database.dropOld drops it from a commit after the move\'s (c0ffee1)']],
    ['dropOld at a commit after the move: dropped', { d: { database: { server: 'hot', dropOld: true } }, a: { databaseServer: 'hot', oldDatabaseServer: 'main', oldDatabaseCommit: 'beef000' } }, [DROP]],
    ['dropOld without an old copy: nothing', { d: { database: { server: 'hot', dropOld: true } }, a: { databaseServer: 'hot' } }, ['noop: up to date']],
    ['moving again while an old copy is kept: refused, says what to do', { d: { database: { server: 'cold' } }, a: { databaseServer: 'hot', oldDatabaseServer: 'main' } },
      ['move_database: database move hot → cold refused: main still holds the old copy from the last move; set database.dropOld: true to drop it (after a backup), then move [refused]']],
    ['moving back with dropOld: the stale copy on the target is dropped first, then the move', { d: { database: { server: 'main', dropOld: true } }, a: { databaseServer: 'hot', oldDatabaseServer: 'main' } },
      ['drop_old_database: the old copy of atomo_blog on main is DROPPED after a backup (database.dropOld: true)',
        'move_database: database moves hot → main: instance stopped, fresh backup restored on main, DATABASE_URL switched, instance started again; database.dropOld: true drops the copy on hot at the next pass']],
    ['a failed drop of the old copy waits for its backoff (each try takes a backup); the instance goes on', { d: { database: { server: 'hot', dropOld: true }, env: { A: '1' } }, a: { databaseServer: 'hot', oldDatabaseServer: 'main' }, pacing: { dropWaitMs: 4100 } },
      ['update: changed: env', 'wait: drop of the old copy of atomo_blog on main failed; retried in 5 s']],
    ['moving back while the drop of the stale copy waits: the move waits with it (one kept copy at a time)', { d: { database: { server: 'main', dropOld: true } }, a: { databaseServer: 'hot', oldDatabaseServer: 'main' }, pacing: { dropWaitMs: 900 } },
      ['wait: drop of the old copy of atomo_blog on main failed; retried in 1 s']],
  ])('%s', (_name, o, want) => {
    expect(run(o)).toEqual(want);
  });

  it('the move carries from and to; a registry view made from a commit knows the server but not an old copy', () => {
    const [move] = planFleet({ desired: [desired({ database: { server: 'hot' } })], actual: [actual()], driver: PROCESS_LAYOUT, instances: new Map([['blog', { running: true, specHash: '' }]]) });
    expect(move).toMatchObject({ kind: 'move_database', from: 'main', to: 'hot' });
    expect(inverse(move)).toMatchObject({ kind: 'move_database', from: 'hot', to: 'main' });
    const [a] = actualFromDesired([desired({ database: { server: 'hot' } })]);
    expect(a).toMatchObject({ databaseServer: 'hot' });
    expect(a.oldDatabaseServer).toBeUndefined();
  });

  it('fleet plan between commits: a move, then a dropOld whose old server only the registry knows', () => {
    const base = actualFromDesired([desired()]);
    const moved = planFleet({ desired: [desired({ database: { server: 'hot' } })], actual: base });
    expect(moved.map((a) => a.kind)).toEqual(['move_database']);
    const drop = planFleet({ desired: [desired({ database: { server: 'hot', dropOld: true } })], actual: actualFromDesired([desired({ database: { server: 'hot' } })]) });
    expect(drop).toEqual([{ kind: 'drop_old_database', id: 'blog', server: null, reason: 'the old copy of atomo_blog a move left behind (if any) is DROPPED after a backup (database.dropOld: true)' }]);
    // Already said at the base commit: nothing new.
    expect(planFleet({ desired: [desired({ database: { server: 'hot', dropOld: true } })], actual: actualFromDesired([desired({ database: { server: 'hot', dropOld: true } })]) }).map((a) => a.kind)).toEqual(['noop']);
  });

  it('renders a move and a drop of the old copy in bold, with their own symbols', () => {
    const actions = planFleet({ desired: [desired({ database: { server: 'hot' } })], actual: [actual()], driver: PROCESS_LAYOUT, instances: new Map([['blog', { running: true, specHash: '' }]]) });
    expect(formatPlanText(actions)).toBe(`⇄ blog  ${MOVE.replace('move_database: ', '')}`);
    expect(formatPlanMarkdown(actions)).toContain(`| \`⇄\` | blog | **${MOVE.replace('move_database: ', '')} (needs care)** |`);
    expect(summary(actions)).toBe('Plan: 0 to create, 0 to start, 0 to update, 0 to stop, 0 to delete, 1 database to move.');
    const drop = planFleet({ desired: [desired({ database: { server: 'hot', dropOld: true } })], actual: [actual({ databaseServer: 'hot', oldDatabaseServer: 'main' })], driver: PROCESS_LAYOUT, instances: new Map([['blog', { running: true, specHash: '' }]]) });
    expect(formatPlanMarkdown(drop)).toContain(`| \`!\` | blog | **${DROP.replace('drop_old_database: ', '')} (needs care)** |`);
    expect(summary(drop)).toBe('Plan: 0 to create, 0 to start, 0 to update, 0 to stop, 0 to delete, 1 old database copy to drop.');
  });

  it('a refused move is not counted as a move: it is its own line, not bold, and the summary says it is refused', () => {
    const actions = planFleet({
      desired: [desired({ database: { server: 'cold' }, env: { A: '1' } })], actual: [actual({ databaseServer: 'hot', oldDatabaseServer: 'main' })],
      driver: PROCESS_LAYOUT, instances: new Map([['blog', { running: true, specHash: '' }]]),
    });
    const refusal = 'database move hot → cold refused: main still holds the old copy from the last move; set database.dropOld: true to drop it (after a backup), then move';
    expect(formatPlanText(actions).split('\n')).toEqual([expect.stringMatching(/^~ blog  changed: env/), `✗ blog  ${refusal}`]);
    expect(formatPlanMarkdown(actions)).toContain(`| \`✗\` | blog | ${refusal} |`);
    expect(formatPlanMarkdown(actions)).not.toContain(`**${refusal}`);
    expect(summary(actions)).toBe('Plan: 0 to create, 0 to start, 1 to update, 0 to stop, 0 to delete, 1 database move refused.');
  });
});

describe('pacing: the drop of an old copy', () => {
  it('a failed drop waits for its backoff; another old server, or none, does not', () => {
    const retries = new Backoff({ baseMs: 1000, capMs: 60_000, stallAfter: 3, stableMs: 10_000 });
    const deps = { backoff: new Backoff(), retries, layout: PROCESS_LAYOUT, lastExit: new Map(), now: () => 10_000 };
    const input = (old: string | null): PlanInput => ({
      desired: [desired({ database: { server: 'hot', dropOld: true } })], actual: [actual({ databaseServer: 'hot', oldDatabaseServer: old })], invalid: [],
      driver: PROCESS_LAYOUT, instances: new Map([['blog', { running: true, specHash: '' }]]),
    });
    expect(pacing(deps, input('main'), 'c0ffee1').get('blog')?.dropWaitMs).toBeUndefined();
    retries.failedStart(dropKey('blog', 'main'), 9_000);
    // Tried at 9 s, failed: the next try is due at 10 s, now.
    expect(pacing(deps, input('main'), 'c0ffee1').get('blog')?.dropWaitMs).toBeUndefined();
    // Failed again at 9.5 s: 2 s later.
    retries.failedStart(dropKey('blog', 'main'), 9_500);
    expect(pacing(deps, input('main'), 'c0ffee1').get('blog')?.dropWaitMs).toBe(1500);
    expect(pacing(deps, input('cold'), 'c0ffee1').get('blog')?.dropWaitMs).toBeUndefined();
    expect(pacing(deps, input(null), 'c0ffee1').get('blog')?.dropWaitMs).toBeUndefined();
  });
});
