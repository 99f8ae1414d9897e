// The plan for operator requests: a restart asked through the API (level-based: the restart generation is part of the
// instance's spec hash) and a suspended project (one line, nothing else, whatever git, the registry or the instances say).
import { describe, expect, it } from 'vitest';
import { sha256 } from '../daemon/manifest/project.ts';
import { inverse, planFleet, targetSpecHash } from '../daemon/core/plan.ts';
import { instanceSpecHash } from '../daemon/core/instance-spec.ts';
import type { ActualProject, DesiredProject, Manifest, ObservedInstance, PlanInput } from '../daemon/core/types.ts';
import { PROCESS_LAYOUT as PROCESS } from '../daemon/drivers/process.ts';
import { formatPlanText, summary } from '../scripts/plan-format.ts';

const COMMIT = '3f2c1a9b8e7d6c5b4a3928170615f4e3d2c1b0a9';
const SCHEMA = 'export interface Widget { id: string; }\n';

function manifest(id: string, fields: Partial<Manifest> = {}): Manifest {
  return { id, displayName: id, hostname: `${id}.localhost`, aliases: [], state: 'running', schema: 'schema.ts', runtime: {}, env: {}, secrets: {}, resources: {}, ...fields };
}
function desired(id: string, fields: Partial<Manifest> = {}): DesiredProject {
  return { id, manifest: manifest(id, fields), commit: COMMIT, schema: { path: `projects/${id}/schema.ts`, content: SCHEMA, digest: sha256(SCHEMA) } };
}
function actual(id: string, fields: Partial<ActualProject> = {}): ActualProject {
  return { id, status: 'running', desiredState: 'running', manifest: manifest(id), schemaDigest: sha256(SCHEMA), schemaVersion: COMMIT, schemaHistory: [], present: true, port: 4100, secretsVersion: 0, provisioned: 20, ...fields };
}
const target = (id: string) => ({ manifest: manifest(id), schemaDigest: sha256(SCHEMA) });
/** The instance as it runs after generation `g` (or before any restart: 0). */
const runningAt = (id: string, g: number, over: Partial<ActualProject> = {}): ObservedInstance =>
  ({ running: true, specHash: targetSpecHash(actual(id, { ...over, restartGeneration: g }), target(id), PROCESS)! });
const lines = (input: PlanInput) => planFleet({ driver: PROCESS, ...input }).map((a) => `${a.kind}${'cause' in a ? `(${a.cause})` : ''}: ${a.reason}`);

describe('operator restart in the plan', () => {
  it('generation 0 hashes as before the restart generation existed (no instance restarts on upgrade)', () => {
    const m = manifest('blog');
    const base = { manifest: m, schemaDigest: 'd', port: 4100, secretsVersion: 0, driver: 'process' };
    expect(instanceSpecHash({ ...base, restartGeneration: 0 })).toBe(instanceSpecHash(base));
    expect(instanceSpecHash({ ...base, restartGeneration: 1 })).not.toBe(instanceSpecHash(base));
  });

  it.each<[string, Partial<ActualProject>, ObservedInstance, string[]]>([
    ['requested, the instance runs the previous generation: restart, naming who asked',
      { restartGeneration: 1, restartRequestedBy: 'alice' }, runningAt('blog', 0), ['restart(operator): operator restart requested by alice']],
    ['requested twice before a pass: still one restart by the operator',
      { restartGeneration: 3, restartRequestedBy: 'bob' }, runningAt('blog', 1), ['restart(operator): operator restart requested by bob']],
    ['the instance runs the new generation: nothing', { restartGeneration: 2, restartRequestedBy: 'alice' }, runningAt('blog', 2), ['noop: up to date']],
    ['a secret rotation is not mistaken for an operator restart',
      { restartGeneration: 1, restartRequestedBy: 'alice', secretsVersion: 1 }, runningAt('blog', 1), ['restart(spec): spec changed: secrets or port']],
    ['requested, no actor recorded', { restartGeneration: 1 }, runningAt('blog', 0), ['restart(operator): operator restart requested by an operator']],
  ])('%s', (_name, a, inst, want) => {
    expect(lines({ desired: [desired('blog')], actual: [actual('blog', a)], instances: new Map([['blog', inst]]) })).toEqual(want);
  });

  it('restarts exactly the project asked for', () => {
    const input: PlanInput = {
      desired: [desired('blog'), desired('shop')],
      actual: [actual('blog', { restartGeneration: 1, restartRequestedBy: 'alice' }), actual('shop', { port: 4101 })],
      instances: new Map([['blog', runningAt('blog', 0)], ['shop', runningAt('shop', 0, { port: 4101 })]]),
    };
    expect(lines(input)).toEqual(['restart(operator): operator restart requested by alice', 'noop: up to date']);
  });

  it('an invalid manifest keeps the last applied spec, but an operator restart of it still happens', () => {
    const got = lines({ desired: [], invalid: ['blog'], actual: [actual('blog', { restartGeneration: 1, restartRequestedBy: 'alice' })], instances: new Map([['blog', runningAt('blog', 0)]]) });
    expect(got).toEqual(['restart(operator): operator restart requested by alice', 'noop: manifest invalid; keeping what was last applied']);
  });

  it('the CLI preview (registry spec hash) shows the pending restart too', () => {
    const a = actual('blog', { restartGeneration: 1, restartRequestedBy: 'alice', specHash: runningAt('blog', 0).specHash });
    expect(planFleet({ desired: [desired('blog')], actual: [a], driver: PROCESS }).map((x) => x.reason)).toEqual(['operator restart requested by alice']);
  });
});

describe('a suspended project in the plan', () => {
  const suspended = { by: 'alice', at: '2026-05-01T10:00:00.000Z' };
  const one = 'suspended: suspended by alice at 2026-05-01T10:00:00Z: left as it is';
  it.each<[string, Partial<PlanInput>]>([
    ['its env changed in git', { desired: [desired('blog', { env: { A: '1' } })] }],
    ['its state is stopped in git', { desired: [desired('blog', { state: 'stopped' })] }],
    ['its state is deleted in git', { desired: [desired('blog', { state: 'deleted', deletion: { confirm: 'blog', dropDatabase: true } })] }],
    ['its folder is removed', { desired: [] }],
    ['its manifest is invalid', { desired: [], invalid: ['blog'] }],
    ['its instance crashed', { instances: new Map([['blog', { running: false, specHash: '', exitCode: 1 }]]), pacing: new Map([['blog', { failures: 2 }]]) }],
    ['its instance is gone', { instances: new Map() }],
    ['a restart was requested', { actual: [actual('blog', { suspended, restartGeneration: 1, restartRequestedBy: 'bob' })] }],
    ['the driver is unreachable', { instances: null }],
  ])('%s: one line, nothing done', (_name, over) => {
    const input: PlanInput = { desired: [desired('blog')], actual: [actual('blog', { suspended })], instances: new Map([['blog', runningAt('blog', 0)]]), ...over };
    expect(lines(input)).toEqual([one]);
  });

  it('only that project: the others converge as usual', () => {
    const input: PlanInput = {
      desired: [desired('blog', { env: { A: '1' } }), desired('shop', { env: { A: '1' } })],
      actual: [actual('blog', { suspended }), actual('shop', { port: 4101 })],
      instances: new Map([['blog', runningAt('blog', 0)], ['shop', runningAt('shop', 0, { port: 4101 })]]),
    };
    expect(lines(input)).toEqual([one, 'update: changed: env', 'restart(spec): spec changed: env']);
  });

  it('is printed by fleet plan with its own symbol and counted in the summary; its inverse is itself', () => {
    const actions = planFleet({ desired: [desired('blog')], actual: [actual('blog', { suspended })], driver: PROCESS });
    expect(formatPlanText(actions)).toBe('‖ blog  suspended by alice at 2026-05-01T10:00:00Z: left as it is');
    expect(summary(actions)).toBe('Plan: 0 to create, 0 to start, 0 to update, 0 to stop, 0 to delete, 1 suspended (left as it is).');
    expect(inverse(actions[0])).toEqual(actions[0]);
  });
});
