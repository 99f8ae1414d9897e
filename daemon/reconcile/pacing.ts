// The pass's snapshot of what runs and what must wait, taken just before planning: the observed instances and the
// backoff's answers. The backoff is the daemon's mutable pacing state; the plan only reads this snapshot.
import type { Backoff } from '../core/backoff.ts';
import { replaceKey } from './instance.ts';
import { targetSpecHash, type Target } from '../core/plan.ts';
import { deleteKey } from './delete.ts';
import { dropKey, moveKey } from './move.ts';
import { databaseServerOf } from '../core/servers.ts';
import type { ActualProject, DesiredProject, Instance, ObservedInstance, Pacing, PlanInput, DriverLayout } from '../core/types.ts';

interface PacingDeps {
  backoff: Backoff;
  retries: Backoff;
  layout: DriverLayout;
  lastExit: Map<string, number | null>;
  now(): number;
}

export function observedInstances(deps: Pick<PacingDeps, 'lastExit'>, instances: Map<string, Instance>): Map<string, ObservedInstance> {
  const out = new Map<string, ObservedInstance>();
  for (const [id, i] of instances) out.set(id, { running: i.running, specHash: i.specHash, exitCode: i.exitCode ?? deps.lastExit.get(id), ...(i.pending ? { pending: i.pending, pendingReason: i.pendingReason } : {}) });
  for (const [id, code] of deps.lastExit) if (!out.has(id)) out.set(id, { running: false, specHash: '', exitCode: code });
  return out;
}

/** What an instance should run for a project, when one should run: the plan's own rule. */
export function targetOf(d: DesiredProject | undefined, a: ActualProject | undefined, invalid: boolean): Target | null {
  if (!a || a.status === 'deleted') return null;
  if (invalid) return a.present && a.desiredState === 'running' && a.schemaDigest ? { manifest: a.manifest, schemaDigest: a.schemaDigest } : null;
  return d?.manifest.state === 'running' ? { manifest: d.manifest, schemaDigest: d.schema.digest } : null;
}

/**
 * The backoff's snapshot for this pass: which projects must wait, how long, and how many crashes in a row. The
 * backoff classifies an exit once, here; the plan then decides start, restart or wait from it.
 */
export function pacing(deps: PacingDeps, input: PlanInput, commit: string): Map<string, Pacing> {
  const out = new Map<string, Pacing>();
  const now = deps.now();
  const bad = new Set(input.invalid);
  const want = new Map(input.desired.map((d) => [d.id, d]));
  for (const a of input.actual) {
    // A suspended project is planned as it is: its crashes are not counted, so a resume starts from a clean slate.
    if (a.suspended) continue;
    const d = want.get(a.id);
    const p: Pacing = {};
    if (d && !bad.has(a.id) && d.manifest.state === 'deleted' && a.status !== 'deleted') {
      const decision = deps.retries.decide(deleteKey(a.id, commit), undefined, now);
      if (!decision.start) p.deleteWaitMs = decision.waitMs;
    }
    // A failed database move towards this server waits for its backoff (each try stops the instance and dumps).
    if (d && !bad.has(a.id) && a.databaseServer && databaseServerOf(d.manifest) !== a.databaseServer) {
      const decision = deps.retries.decide(moveKey(a.id, databaseServerOf(d.manifest)), undefined, now);
      if (!decision.start) p.moveWaitMs = decision.waitMs;
    }
    // A failed drop of the copy a move left waits too: each try takes a fresh backup first.
    if (d && !bad.has(a.id) && d.manifest.database?.dropOld && a.oldDatabaseServer) {
      const decision = deps.retries.decide(dropKey(a.id, a.oldDatabaseServer), undefined, now);
      if (!decision.start) p.dropWaitMs = decision.waitMs;
    }
    const t = targetOf(d, a, bad.has(a.id));
    if (t && input.instances) {
      const hash = targetSpecHash(a, t, deps.layout)!;
      // A spec other than the last one tried starts afresh: a fix committed during a crash loop does not wait it out.
      deps.backoff.forSpec(a.id, hash);
      deps.backoff.forSpec(replaceKey(a.id), hash);
      const inst = input.instances.get(a.id);
      const wasDown = !a.present || a.desiredState === 'stopped';
      // An instance the engine cannot place is waited for, not paced: it did not exit.
      if (!inst?.running && !wasDown && !inst?.pending) {
        // Not running but should: an exit with code 0 is the schema watcher's restart signal, anything else a crash.
        const decision = deps.backoff.decide(a.id, inst?.exitCode, now);
        if (!decision.start) p.waitMs = decision.waitMs;
        p.failures = deps.backoff.failures(a.id);
      } else if (inst?.running && inst.specHash !== hash) {
        const decision = deps.backoff.decide(replaceKey(a.id), undefined, now);
        if (!decision.start) p.replaceWaitMs = decision.waitMs;
      }
    }
    if (Object.keys(p).length) out.set(a.id, p);
  }
  return out;
}

