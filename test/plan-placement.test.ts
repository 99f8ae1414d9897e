// `fleet plan` shows where a project may run when that changes: a plain line "placement: A -> B" (not in bold: the
// data stays where it is), in the commit-vs-commit plan and against the registry, where a swarm driver also
// replaces the task (start-first) because of it.
import { describe, expect, it } from 'vitest';
import { actualFromDesired, describePlacement } from '../daemon/core/plan.ts';
import type { DesiredFleet, DesiredProject, Manifest, Placement } from '../daemon/core/types.ts';
import { SWARM_LAYOUT } from '../daemon/drivers/swarm-spec.ts';
import { sha256 } from '../daemon/manifest/project.ts';
import { runPlan } from '../scripts/commands/plan.ts';

const SCHEMA = 'export interface Widget { id: string; name: string; }\n';
const COMMIT = '3f2c1a9b8e7d6c5b4a3928170615f4e3d2c1b0a9';

function desired(id: string, placement?: Placement, more: Partial<Manifest> = {}): DesiredProject {
  const manifest: Manifest = {
    id, displayName: id, hostname: `${id}.localhost`, aliases: [], state: 'running', schema: 'schema.ts',
    runtime: { image: 'img:1' }, env: {}, secrets: {}, resources: {}, ...(placement ? { placement } : {}), ...more,
  };
  return { id, manifest, commit: COMMIT, schema: { path: `projects/${id}/schema.ts`, content: SCHEMA, digest: sha256(SCHEMA) } };
}
const fleetOf = (...projects: DesiredProject[]): DesiredFleet => ({ commit: COMMIT, projects, invalid: [] });
const HOT: Placement = { constraints: ['node.labels.tier==hot'] };

describe('describePlacement', () => {
  it.each<[Placement | undefined, string]>([
    [undefined, '(any node)'],
    [{}, '(any node)'],
    [{ constraints: [], preferences: [] }, '(any node)'],
    [HOT, 'node.labels.tier==hot'],
    [{ constraints: ['node.labels.tier == hot', 'node.labels.zone!=b'], preferences: [{ spread: 'node.labels.zone' }] }, 'node.labels.tier==hot, node.labels.zone!=b, spread=node.labels.zone'],
  ])('%j → %s', (p, text) => expect(describePlacement(p)).toBe(text));
});

describe('fleet plan shows placement changes', () => {
  it('between two commits: a plain update line naming the old and the new placement', () => {
    const { actions, output } = runPlan(fleetOf(desired('blog')), actualFromDesired([desired('blog', HOT)]), 'text');
    expect(actions.map((a) => a.kind)).toEqual(['update']);
    expect(output).toBe('~ blog  changed: placement: node.labels.tier==hot -> (any node)');
    const md = runPlan(fleetOf(desired('blog', HOT)), actualFromDesired([desired('blog')]), 'markdown').output;
    expect(md).toContain('| `~` | blog | changed: placement: (any node) -> node.labels.tier==hot |');
    expect(md).not.toContain('**');
  });

  it('against the registry with driver: swarm: the update line and the task replaced because of it', () => {
    const registry = actualFromDesired([desired('blog', HOT)]).map((a) => ({ ...a, specHash: 'running-spec' }));
    const moved: Placement = { constraints: ['node.labels.tier==cold'], preferences: [{ spread: 'node.labels.zone' }] };
    const { output } = runPlan(fleetOf(desired('blog', moved)), registry, 'text', undefined, SWARM_LAYOUT);
    expect(output).toBe('~ blog  changed: placement: node.labels.tier==hot -> node.labels.tier==cold, spread=node.labels.zone; spec changed: placement');
  });

  it('next to other changes, in field order; nothing when the placement is the same', () => {
    const before = desired('blog', HOT);
    const after = desired('blog', { constraints: ['node.labels.tier==cold'] }, { env: { A: '1' } });
    expect(runPlan(fleetOf(after), actualFromDesired([before]), 'text').output).toBe('~ blog  changed: env, placement: node.labels.tier==hot -> node.labels.tier==cold');
    expect(runPlan(fleetOf(desired('blog', HOT)), actualFromDesired([desired('blog', HOT)]), 'text').output).toBe('No changes.');
  });
});
