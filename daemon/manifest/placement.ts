// Which Swarm placement a project may ask for: fleet.yaml decides. Projects are mutually hostile, so by default a
// manifest may pin itself nowhere: `node.role==manager` would put it on the control plane, `node.hostname==x` or
// `node.id==...` on a node another project (or the operator) reserved. fleet.yaml lists the node labels projects may
// constrain on and spread over (`swarm.placement.allowedLabels`), and any other attribute it opens explicitly
// (`swarm.placement.allowedAttributes`). Pure: the schema has already checked each constraint's shape.
import type { FleetConfig, Manifest } from '../core/types.ts';

/** fleet.yaml `swarm.placement`. */
export interface PlacementPolicy {
  /** Node label names (`tier` for `node.labels.tier`) projects may use in constraints and spread preferences. */
  allowedLabels?: string[];
  /** Other attributes projects may constrain on: node.role, node.hostname, node.id, node.platform.os, node.platform.arch, engine.labels.<name>. */
  allowedAttributes?: string[];
}

export interface PlacementProblem {
  path: string;
  message: string;
}

/** `node.labels.tier == hot` → `node.labels.tier`; the schema's pattern guarantees the shape. */
function attributeOf(constraint: string): string {
  return constraint.split(/ ?[=!]=/)[0];
}

const LABEL = 'node.labels.';

function allowedText(policy: PlacementPolicy): string {
  const labels = (policy.allowedLabels ?? []).map((l) => `${LABEL}${l}`);
  const all = [...labels, ...(policy.allowedAttributes ?? [])];
  return all.length ? `fleet.yaml allows ${all.join(', ')}` : 'fleet.yaml allows no placement (swarm.placement is empty)';
}

/**
 * Constraints and spread preferences of `m` that fleet.yaml does not allow, each with the JSON pointer it sits at.
 * Without a valid fleet.yaml nothing is allowed.
 */
export function placementProblems(m: Manifest, fleet: FleetConfig | null): PlacementProblem[] {
  const policy: PlacementPolicy = fleet?.swarm?.placement ?? {};
  const labels = new Set(policy.allowedLabels ?? []);
  const attributes = new Set(policy.allowedAttributes ?? []);
  const next = 'ask the operator to allow it under swarm.placement in fleet.yaml, or remove it';
  const out: PlacementProblem[] = [];
  (m.placement?.constraints ?? []).forEach((c, i) => {
    const attr = attributeOf(c);
    const ok = attr.startsWith(LABEL) ? labels.has(attr.slice(LABEL.length)) : attributes.has(attr);
    if (!ok) out.push({ path: `/placement/constraints/${i}`, message: `constrains on ${attr}, which projects may not use: ${allowedText(policy)}; ${next}` });
  });
  (m.placement?.preferences ?? []).forEach((p, i) => {
    const ok = p.spread.startsWith(LABEL) ? labels.has(p.spread.slice(LABEL.length)) : attributes.has(p.spread);
    if (!ok) out.push({ path: `/placement/preferences/${i}/spread`, message: `spreads over ${p.spread}, which projects may not use: ${allowedText(policy)}; ${next}` });
  });
  return out;
}
