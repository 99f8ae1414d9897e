// The plan's `restore` action: an open restore request becomes one action (the backup name in its reason); the
// instance actions of the same pass give way to it (the restore stops and starts the instance itself); a request
// that cannot be carried out is refused, so it is closed instead of waiting forever.
import { describe, expect, it } from 'vitest';
import { sha256 } from '../daemon/manifest/project.ts';
import { planFleet } from '../daemon/core/plan.ts';
import type { ActualProject, DesiredProject, Manifest, ObservedInstance, PlanInput, RestoreRequest } from '../daemon/core/types.ts';
import { PROCESS_LAYOUT } from '../daemon/drivers/process.ts';
import { formatPlanText } from '../scripts/plan-format.ts';

const SCHEMA = 'export interface Widget { id: string; }\n';
const NAME = '2026-05-01T03-00-00.123Z-manual.dump';
const REQ: RestoreRequest = { request: 7, backup: NAME, file: `/b/blog/${NAME}`, by: 'alice' };

const manifest = (fields: Partial<Manifest> = {}): Manifest => ({
  id: 'blog', displayName: 'Blog', hostname: 'blog.localhost', aliases: [], state: 'running', schema: 'schema.ts',
  runtime: {}, env: {}, secrets: {}, resources: {}, ...fields,
});
const desired = (fields: Partial<Manifest> = {}): DesiredProject =>
  ({ id: 'blog', manifest: manifest(fields), commit: 'c0ffee1', schema: { path: 'projects/blog/schema.ts', content: SCHEMA, digest: sha256(SCHEMA) } });
const actual = (fields: Partial<ActualProject> = {}): ActualProject => ({
  id: 'blog', status: 'running', desiredState: 'running', manifest: manifest(), schemaDigest: sha256(SCHEMA), schemaVersion: 'c0ffee1',
  schemaHistory: [], present: true, provisioned: 20, ...fields,
});

function run(o: { d?: DesiredProject | null; a?: Partial<ActualProject> | null; instances?: Map<string, ObservedInstance> | null; invalid?: boolean; restore?: boolean }): string[] {
  const input: PlanInput = {
    desired: o.d === null ? [] : [o.d ?? desired()], actual: o.a === null ? [] : [actual(o.a ?? {})], invalid: o.invalid ? ['blog'] : [],
    instances: o.instances === undefined ? new Map([['blog', { running: true, specHash: '' }]]) : o.instances, driver: PROCESS_LAYOUT,
    restores: o.restore === false ? undefined : new Map([['blog', REQ]]),
  };
  return planFleet(input).map((a) => `${a.kind}: ${a.reason}${a.kind === 'restore' && a.refused ? ' [refused]' : ''}`);
}

describe('plan: restore', () => {
  it('an open request is one restore action naming the backup and who asked', () => {
    const [action] = planFleet({ desired: [desired()], actual: [actual()], instances: null, driver: PROCESS_LAYOUT, restores: new Map([['blog', REQ]]) });
    expect(action.kind).toBe('noop'); // the driver is out of reach: the request waits
    expect(run({})).toEqual([`restore: restore from ${NAME} (requested by alice)`]);
  });

  it.each<[string, Parameters<typeof run>[0], string[]]>([
    ['no request: nothing', { restore: false }, ['noop: up to date']],
    ['a crashed instance: the restore starts it, no separate restart', { instances: new Map([['blog', { running: false, specHash: '', exitCode: 1 }]]) },
      [`restore: restore from ${NAME} (requested by alice)`]],
    ['back from stopped: the restore starts it', { a: { status: 'stopped', desiredState: 'stopped' }, instances: new Map() },
      [`restore: restore from ${NAME} (requested by alice)`]],
    ['an update in the same pass stays, before the restore', { d: desired({ env: { A: '1' } }) },
      ['update: changed: env', `restore: restore from ${NAME} (requested by alice)`]],
    ['state: stopped: restored, the stop stays after it', { d: desired({ state: 'stopped' }) },
      [`restore: restore from ${NAME} (requested by alice)`, 'stop: state: stopped; database kept']],
    ['an invalid manifest: restored, what was last applied runs on', { invalid: true },
      [`restore: restore from ${NAME} (requested by alice)`]],
    ['folder removed: restored, the database is still there', { d: null },
      [`restore: restore from ${NAME} (requested by alice)`, 'stop: folder projects/blog removed from git; instance stopped, database kept']],
    ['deleted: refused', { a: { status: 'deleted' }, d: desired({ state: 'deleted', deletion: { confirm: 'blog' } }) },
      ['restore: restore from 2026-05-01T03-00-00.123Z-manual.dump refused: project blog is deleted [refused]', 'noop: state: deleted; nothing runs']],
    ['being deleted in this pass: refused, the delete goes on', { d: desired({ state: 'deleted', deletion: { confirm: 'blog' } }) },
      ['restore: restore from 2026-05-01T03-00-00.123Z-manual.dump refused: project blog is being deleted (state: deleted) [refused]', 'delete: state: deleted; instance removed, database kept']],
    ['never provisioned: refused', { a: { provisioned: null } },
      ['provision: role, database and secrets', 'restore: restore from 2026-05-01T03-00-00.123Z-manual.dump refused: the database of blog is not provisioned yet [refused]']],
    ['driver unreachable: nothing yet, the request waits', { instances: null }, ['noop: up to date']],
  ])('%s', (_name, o, want) => {
    expect(run(o)).toEqual(want);
  });

  it('fleet plan shows it with its own symbol', () => {
    const actions = planFleet({ desired: [desired()], actual: [actual()], driver: PROCESS_LAYOUT, restores: new Map([['blog', REQ]]) });
    expect(formatPlanText(actions)).toBe(`↺ blog  restore from ${NAME} (requested by alice)`);
  });
});
