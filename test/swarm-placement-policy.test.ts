// Placement is the operator's to open, not a project's to take: fleet.yaml `swarm.placement` lists the node labels
// (and any other attribute) projects may use; everything else is refused at validation, with a message naming what
// is allowed. Projects are mutually hostile: by default none may pin itself onto the manager or a chosen node.
import { describe, expect, it } from 'vitest';
import { checkFleetConfig } from '../daemon/manifest/fleet-config.ts';
import { formatIssue } from '../daemon/manifest/parse.ts';
import { checkProject } from '../daemon/manifest/project.ts';
import { combineFleet } from '../daemon/manifest/rules.ts';

const SCHEMA = 'export interface Widget { id: string; name: string; }\n';
const project = (placement: string) => checkProject('acme', {
  readFile: async (rel: string) => (rel === 'project.yaml' ? `id: acme\nhostname: acme.localhost\nplacement:\n${placement}` : SCHEMA),
});
const fleet = (yaml: string) => {
  const r = checkFleetConfig(`driver: swarm\n${yaml}`);
  expect(r.issues.map(formatIssue)).toEqual([]);
  return r.config!;
};
const errors = async (placement: string, fleetYaml: string | null) => {
  const d = combineFleet('c0ffee', [await project(placement)], fleetYaml === null ? null : fleet(fleetYaml));
  return d.invalid.flatMap((p) => p.errors).map(formatIssue);
};
const OPEN = 'swarm:\n  placement:\n    allowedLabels: [tier, zone]\n';

describe('fleet.yaml swarm.placement decides what projects may use', () => {
  it('accepts constraints and spread preferences on the labels fleet.yaml allows', async () => {
    expect(await errors('  constraints: [node.labels.tier==hot, node.labels.zone != b]\n  preferences: [{ spread: node.labels.zone }]\n', OPEN)).toEqual([]);
  });

  it.each([
    ['node.role==manager', '/placement/constraints/0'],
    ['node.hostname==n1', '/placement/constraints/0'],
    ['node.id==abc123', '/placement/constraints/0'],
    ['node.platform.os==linux', '/placement/constraints/0'],
    ['engine.labels.tier==hot', '/placement/constraints/0'],
    ['node.labels.owner==them', '/placement/constraints/0'],
  ])('refuses %s unless fleet.yaml allows it, naming what is allowed', async (constraint, path) => {
    const attr = constraint.split('==')[0];
    expect(await errors(`  constraints: ["${constraint}"]\n`, OPEN)).toEqual([
      `projects/acme/project.yaml:4:17: ${path}: constrains on ${attr}, which projects may not use: fleet.yaml allows node.labels.tier, node.labels.zone; ask the operator to allow it under swarm.placement in fleet.yaml, or remove it`,
    ]);
  });

  it('refuses a spread over a label fleet.yaml does not allow', async () => {
    expect((await errors('  preferences: [{ spread: node.labels.rack }]\n', OPEN)).join('\n'))
      .toContain('/placement/preferences/0/spread: spreads over node.labels.rack, which projects may not use: fleet.yaml allows node.labels.tier, node.labels.zone');
  });

  it('allows nothing by default, nor without a valid fleet.yaml', async () => {
    const none = 'which projects may not use: fleet.yaml allows no placement (swarm.placement is empty)';
    expect((await errors('  constraints: [node.labels.tier==hot]\n', '')).join('\n')).toContain(none);
    expect((await errors('  constraints: [node.labels.tier==hot]\n', null)).join('\n')).toContain(none);
    // No placement at all is always fine.
    expect(await errors('  constraints: []\n', '')).toEqual([]);
  });

  it('opens other attributes only when fleet.yaml lists them', async () => {
    const yaml = 'swarm:\n  placement:\n    allowedAttributes: [node.role, node.platform.arch]\n';
    expect(await errors('  constraints: [node.role != manager, node.platform.arch==x86_64]\n', yaml)).toEqual([]);
    expect((await errors('  constraints: [node.hostname==n1]\n', yaml)).join('\n')).toContain('fleet.yaml allows node.role, node.platform.arch;');
  });

  it.each([
    ['an attribute Swarm does not know', 'allowedAttributes: [node.labels]', '/swarm/placement/allowedAttributes/0'],
    ['a label name with spaces', 'allowedLabels: ["a b"]', '/swarm/placement/allowedLabels/0'],
    ['an unknown key', 'nodes: [n1]', '/swarm/placement/nodes: unknown key'],
  ])('fleet.yaml refuses %s', (_n, line, message) => {
    const r = checkFleetConfig(`driver: swarm\nswarm:\n  placement:\n    ${line}\n`);
    expect(r.config).toBeNull();
    expect(r.issues.map(formatIssue).join('\n')).toContain(message);
  });
});

describe('placement is bounded in the manifest', () => {
  it.each([
    ['more than 10 constraints', `  constraints: [${Array.from({ length: 11 }, (_, i) => `node.labels.tier==v${i}`).join(', ')}]\n`, '/placement/constraints: must NOT have more than 10 items'],
    ['a constraint longer than 128 characters', `  constraints: [node.labels.tier==${'v'.repeat(120)}]\n`, '/placement/constraints/0: must NOT have more than 128 characters'],
    ['the same constraint twice', '  constraints: [node.labels.tier==hot, node.labels.tier==hot]\n', '/placement/constraints: must NOT have duplicate items'],
    ['more than 3 preferences', `  preferences: [${['a', 'b', 'c', 'd'].map((x) => `{ spread: node.labels.${x} }`).join(', ')}]\n`, '/placement/preferences: must NOT have more than 3 items'],
    ['a spread longer than 128 characters', `  preferences: [{ spread: node.labels.${'z'.repeat(120)} }]\n`, '/placement/preferences/0/spread: must NOT have more than 128 characters'],
  ])('refuses %s', async (_n, placement, message) => {
    const c = await project(placement);
    expect(c.issues.map(formatIssue).join('\n')).toContain(message);
  });
});
