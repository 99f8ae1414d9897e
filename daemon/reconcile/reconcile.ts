// One reconcile pass: read the registry and the running instances afresh, plan against the desired fleet, and
// converge every project. A failing project records its error and the others go on.
import { portFree } from '../ports.ts';
import { FleetError, describe, isFleetError } from '../core/errors.ts';
import { connectionsOf, planFleet, type Target } from '../core/plan.ts';
import { mapLimit } from '../core/concurrency.ts';
import { observedInstances, pacing, targetOf } from './pacing.ts';
import { canonicalJson } from '../core/canonical.ts';
import type { Action, DesiredFleet, DesiredProject, Instance, InvalidProject, Manifest, PlanInput } from '../core/types.ts';
import { Registry, lastManifest, toActual, withCondition, type NewEvent, type ProjectRecord } from '../registry/registry.ts';
import { databaseNames } from '../provision/database.ts';
import { materializeSchema, secretRefsOf } from '../provision/project.ts';
import {
  downStatus, driverUnreachable, instanceStatus, keepServing, pendingStatus, replaceInstance, specHashOf, startInstance,
  stopInstance, waitStatus, type InstanceDeps, type Step,
} from './instance.ts';
import { deleteProject } from './delete.ts';
import { dropOldDatabase, moveDatabase, serverOfRecord } from './move.ts';
import { databaseServerOf } from '../core/servers.ts';
import { pendingRestores } from '../backup/requests.ts';
import { closeRestore, runRestore } from '../backup/step.ts';
import { formatIssue } from '../manifest/parse.ts';
import type { ReconcileContext as Ctx, ReconcileDeps } from './context.ts';

export type { ReconcileContext, ReconcileDeps } from './context.ts';

export interface Observed {
  desired: DesiredFleet;
  /** Author of the observed commit: the actor of the events it causes. */
  author: string;
}

/**
 * What the reconciler remembers between passes: the projects that are settled (their last pass planned nothing and
 * changed nothing), with the inputs that pass saw. A settled project is looked at again only when one of its inputs
 * changes (its folder at the commit, its row, its instance, its health) or on a full pass, so a pass costs what
 * changed, not the size of the fleet. The plan of what is looked at is still made from everything it depends on.
 */
export interface ReconcileState {
  settled: Map<string, Inputs>;
  /** The invalid-folder list last recorded (fleet state `invalid`), to write it only when it changes. */
  invalid?: string;
  /** Lookups by id, kept while git's read and the registry's rows are the same objects (see indexOf). */
  index?: Index;
  /** What the last pass that found every project settled saw: the same again means nothing to look at. */
  quiet?: { index: Index; instances: string; health: number };
}

/** The fleet by id: the desired, invalid and registered projects, and every id any of them names. */
interface Index {
  desired: DesiredFleet;
  records: ProjectRecord[];
  wanted: Map<string, DesiredProject>;
  invalid: Map<string, InvalidProject>;
  byId: Map<string, ProjectRecord>;
  ids: string[];
}

/**
 * The lookups of this pass. The reader hands back the same read for the same trees and the registry the same rows
 * while nobody writes, so a pass with nothing new builds nothing per project: it costs what changed.
 */
function indexOf(state: ReconcileState, desired: DesiredFleet, records: ProjectRecord[]): Index {
  const known = state.index;
  if (known && known.desired === desired && known.records === records) return known;
  const wanted = new Map(desired.projects.map((p) => [p.id, p]));
  const invalid = new Map(desired.invalid.map((p) => [p.id, p]));
  const byId = new Map(records.map((r) => [r.id, r]));
  const ids = [...new Set([...wanted.keys(), ...byId.keys(), ...invalid.keys()])];
  return (state.index = { desired, records, wanted, invalid, byId, ids });
}

/** What a pass reads besides git: the registry's rows, the instances that run, the operators' restore requests. */
export interface Surroundings {
  records: ProjectRecord[];
  /** Null: the driver is unreachable (instance steps pause). */
  instances: Map<string, Instance> | null;
  restores: Awaited<ReturnType<typeof pendingRestores>>;
}

/**
 * Read the surroundings, all at once (none waits for another). The daemon starts this beside its git read, so a
 * webhook's pass waits for the slower of them, not for their sum.
 */
export async function survey(deps: ReconcileDeps): Promise<Surroundings> {
  const [records, instances, restores] = await Promise.all([deps.registry.list(), listInstances(deps), pendingRestores(deps.registry)]);
  return { records, instances, restores };
}

export function reconcileState(): ReconcileState {
  return { settled: new Map() };
}

/** Everything one project's plan depends on, compared by identity (the reader, registry and monitor keep objects). */
interface Inputs {
  manifest: unknown;
  schema: unknown;
  invalid: string | undefined;
  row: ProjectRecord | undefined;
  instance: string;
  health: unknown;
}

export async function reconcile(deps: ReconcileDeps, observed: Observed, state: ReconcileState = reconcileState(), opts: { full?: boolean; surroundings?: Surroundings } = {}): Promise<{ actions: Action[]; failed: string[]; looked: number }> {
  const { desired } = observed;
  // 1. What the registry says is deployed (cached while nobody writes), what actually runs (found afresh), and the
  //    operators' restore requests (a project with one is looked at whatever else changed; one small query a
  //    pass): read by the daemon beside its git read, or here.
  const { records, instances, restores } = opts.surroundings ?? await survey(deps);
  const seen = instances && observedInstances(deps, instances);
  const { wanted, invalid, byId, ids: all } = indexOf(state, desired, records);
  const instanceOf = (id: string): string => {
    if (!seen) return 'unreachable';
    const o = seen.get(id);
    const i = instances?.get(id);
    return o ? `${o.running}|${o.specHash}|${o.exitCode}|${i?.upstream}|${i?.ref}` : '';
  };
  const healthOf = (id: string): unknown => {
    const i = instances?.get(id);
    return i && deps.health.get(id, i.upstream);
  };
  const invalidOf = (id: string): string | undefined => (invalid.has(id) ? JSON.stringify(invalid.get(id)!.errors) : undefined);
  // Compared field by field, nothing built: a settled project costs a few lookups.
  const settled = (id: string): boolean => {
    const was = state.settled.get(id);
    const d = wanted.get(id);
    return !!was && !restores.has(id) && was.manifest === d?.manifest && was.schema === d?.schema && was.row === byId.get(id)
      && was.instance === instanceOf(id) && was.health === healthOf(id) && was.invalid === invalidOf(id);
  };
  if (opts.full) state.settled.clear();
  // The instances as this pass found them, in one string (the running ones: none in a stopped fleet).
  const instancesNow = seen ? [...seen.keys()].map((id) => `${id}=${instanceOf(id)}`).join('\n') : 'unreachable';
  const quiet = state.quiet;
  const unchanged = !opts.full && restores.size === 0 && !!quiet && quiet.index === state.index
    && quiet.instances === instancesNow && quiet.health === deps.health.version;
  const ids = unchanged ? [] : all.filter((id) => !settled(id)).sort();
  if (ids.length === 0) {
    state.quiet = { index: state.index!, instances: instancesNow, health: deps.health.version };
    await recordInvalid(deps, desired, state);
    return { actions: [], failed: [], looked: 0 };
  }
  state.quiet = undefined;
  const inputs = new Map<string, Inputs>(ids.map((id) => {
    const d = wanted.get(id);
    return [id, { manifest: d?.manifest, schema: d?.schema, row: byId.get(id), invalid: invalidOf(id), instance: instanceOf(id), health: healthOf(id) }];
  }));
  // 2. The plan of the projects to look at: pure, from git, the registry, the instances and the backoff's pacing.
  const look = new Set(ids);
  const input: PlanInput = {
    desired: desired.projects.filter((p) => look.has(p.id)), invalid: [...invalid.keys()].filter((id) => look.has(id)),
    actual: ids.flatMap((id) => (byId.has(id) ? [toActual(byId.get(id)!)] : [])), driver: deps.layout, instances: seen,
  };
  input.pacing = pacing(deps, input, desired.commit);
  input.restores = new Map([...restores].filter(([id]) => look.has(id)));
  const actions = planFleet(input);
  const byProject = new Map<string, Action[]>();
  for (const a of actions) byProject.set(a.id, [...(byProject.get(a.id) ?? []), a]);
  const failed: string[] = [];
  const ports = new Set(records.flatMap((r) => (r.port === null ? [] : [r.port])));
  let lost: unknown = null;
  // 3. Each project's actions on its own, `concurrency` projects side by side: one failure never blocks the others.
  await mapLimit(ids, deps.concurrency, async (id) => {
    const log = deps.log.child({ project: id, commit: desired.commit });
    const rec = byId.get(id);
    const at = observedAt(rec, wanted.get(id), invalid.get(id), desired.commit);
    const ctx: Ctx = { deps, log, instances, commit: at, actor: observed.author, actions: byProject.get(id) ?? [], ports };
    const w: Work = { rec: rec ?? null, orig: rec ?? null, patch: {}, events: [], started: null, statusDone: false };
    let error: unknown = null;
    try {
      await execute(ctx, w, wanted.get(id), invalid.get(id));
    } catch (err) {
      error = err;
      log.error({ err: { code: (err as FleetError).code, message: describe(err) } }, 'project did not converge');
      if (w.rec) apply(w, failureStep(w.rec, err));
    }
    // 4. What the steps changed, committed once for the project, in one transaction.
    let wrote = false;
    try {
      wrote = await commit(deps.registry, w);
    } catch (err) {
      error ??= err;
    }
    // Settled: nothing planned, nothing changed, nothing failed. Its inputs are what this pass saw.
    const quiet = !error && !wrote && !w.started && ctx.actions.every((a) => a.kind === 'noop' || a.kind === 'suspended');
    if (quiet) state.settled.set(id, inputs.get(id)!);
    else state.settled.delete(id);
    if (error) {
      failed.push(id);
      if (isFleetError(error, 'POSTGRES_UNREACHABLE') && !byId.has(id)) lost ??= error;
    }
  });
  if (lost) throw lost;
  await recordInvalid(deps, desired, state);
  return { actions, failed: failed.sort(), looked: ids.length };
}

/**
 * The commit a project's desired state was observed at: the fleet's commit when its folder says something the row
 * does not hold yet, else the one the row already names. A project looked at again for another reason (its row or
 * instance changed, a daemon restart, a full pass) at a later commit that did not touch its folder keeps its
 * observed and applied commits, so commits that do not touch a project never write its row.
 */
function observedAt(rec: ProjectRecord | undefined, d: DesiredProject | undefined, bad: InvalidProject | undefined, commit: string): string {
  if (!rec?.observedCommit || rec.status === 'deleted') return commit;
  if (bad) {
    const prev = rec.conditions.find((c) => c.type === 'Invalid' && c.status);
    return prev?.message === bad.errors.slice(0, 5).map(formatIssue).join('; ') ? rec.observedCommit : commit;
  }
  if (!d) return rec.present ? commit : rec.observedCommit;
  const m = lastManifest(rec);
  const same = rec.present && !rec.conditions.some((c) => c.type === 'Invalid' && c.status)
    && rec.schemaDigest === d.schema.digest && !!m && canonicalJson(m) === canonicalJson(d.manifest);
  return same ? rec.observedCommit : commit;
}

/** The fleet-wide list of invalid project folders at this commit, also those never registered (no row to hold it). */
async function recordInvalid(deps: ReconcileDeps, desired: DesiredFleet, state: ReconcileState): Promise<void> {
  const now = desired.invalid.map((p) => ({ id: p.id, issues: p.errors.slice(0, 5).map(formatIssue) }));
  const text = JSON.stringify(now);
  if (state.invalid === text) return;
  const prev = await deps.registry.getState<{ commit: string; projects: typeof now }>('invalid');
  if (!prev || JSON.stringify(prev.projects) !== text) {
    for (const p of now) deps.log.warn({ project: p.id, commit: desired.commit }, `invalid manifest: ${p.issues.join('; ')}`);
    await deps.registry.setState('invalid', { commit: desired.commit, projects: now });
  }
  state.invalid = text;
}

/** One project's pass: the row as the steps left it, and what they changed (committed once, at the end). */
interface Work {
  rec: ProjectRecord | null;
  orig: ProjectRecord | null;
  patch: Partial<ProjectRecord>;
  events: NewEvent[];
  /** The instance started this pass. */
  started: Instance | null;
  /** A step already wrote the instance's status (backoff, replacement not ready, stopped). */
  statusDone: boolean;
}

function apply(w: Work, step: Step): void {
  Object.assign(w.patch, step.patch);
  w.events.push(...step.events);
  if (w.rec) {
    w.rec = { ...w.rec, ...step.patch };
    if ('manifest' in step.patch) (w.rec as ProjectRecord & { _manifest?: Manifest })._manifest = step.patch.manifest!;
  }
}

/** Write what the steps changed; whether anything was written. */
async function commit(registry: Registry, w: Work): Promise<boolean> {
  if (!w.orig && !w.rec) return false;
  const base = w.orig ?? w.rec!;
  // Most passes change nothing: write only what differs, so a quiet fleet does not rewrite every row.
  const current: Record<string, unknown> = { ...base, manifest: lastManifest(base) };
  const patch = Object.fromEntries(Object.entries(w.patch).filter(([k, v]) => canonicalJson(v) !== canonicalJson(current[k])));
  if (!Object.keys(patch).length && !w.events.length) return false;
  await registry.updateWithEvents(base.id, patch, w.events);
  return true;
}

async function listInstances(deps: ReconcileDeps): Promise<Map<string, Instance> | null> {
  try {
    return new Map((await deps.driver.list()).map((i) => [i.id, i]));
  } catch (err) {
    // Docker down: instance steps pause, provisioning and the registry go on; nothing is torn down.
    if (isFleetError(err, 'DRIVER_UNREACHABLE')) {
      deps.log.warn({ err: { message: describe(err) } }, 'driver unreachable: instance steps paused');
      return null;
    }
    throw err;
  }
}

/** Run one project's planned actions in order, then read its status. Nothing here decides a lifecycle step. */
async function execute(ctx: Ctx, w: Work, d: DesiredProject | undefined, bad: InvalidProject | undefined): Promise<void> {
  // 0. Suspended by an operator: the plan's only action for it. Its row, instance and route stay exactly as they are.
  //    A restore the plan refused for it is still answered (closed as failed), or `fleet restore` would wait on it.
  if (ctx.actions.some((a) => a.kind === 'suspended')) {
    for (const a of ctx.actions) if (a.kind === 'restore' && a.refused) await HANDLERS.restore({ ctx, w, d, target: null }, a);
    return;
  }
  // 1. An invalid manifest is a condition and an event; what was last applied runs on.
  if (bad) {
    if (w.rec) apply(w, invalidStep(ctx, w.rec, bad));
    ctx = { ...ctx, commit: w.rec?.appliedCommit ?? ctx.commit };
  }
  // 2. A new project is registered first: the row is the record that creation began.
  const create = ctx.actions.find((a) => a.kind === 'create');
  if (create && d && w.rec?.status === 'deleted') {
    // A deleted project whose folder says running again: the same row, created anew.
    // Its database is made on the manifest's server, unless the old one was kept (then a later pass moves it).
    const server = w.rec.provisionedConnections === null ? databaseServerOf(d.manifest) : w.rec.databaseServer;
    apply(w, { patch: { status: 'provisioning', databaseServer: server }, events: [{ action: 'create', actor: ctx.actor, commit: ctx.commit, detail: { reason: create.reason } }] });
  } else if (create && d) w.rec = w.orig = await register(ctx, d, create.reason);
  if (!w.rec) return;
  // 3. The row follows git: database, schema file and manifest (not for a delete: that is its own path).
  if (d && !bad && d.manifest.state !== 'deleted') apply(w, await prepare(ctx, w.rec, d));
  const target = targetOf(d, toActual(w.rec), !!bad) ?? (create && d?.manifest.state === 'running' ? { manifest: d.manifest, schemaDigest: d.schema.digest } : null);
  // 4. The plan's actions, in plan order.
  for (const action of ctx.actions) await HANDLERS[action.kind]({ ctx, w, d, target }, action as never);
  // 5. Status: what the instance reports now (health probe), or why nothing runs.
  if (w.statusDone || w.rec.status === 'deleted' || d?.manifest.state === 'deleted') return;
  if (target) {
    if (!ctx.instances) return apply(w, driverUnreachable(ctx, w.rec));
    const inst = w.started ?? ctx.instances.get(w.rec.id);
    if (inst?.running) apply(w, await instanceStatus(ctx, w.rec, inst, specHashOf(ctx.deps, w.rec, target.manifest, target.schemaDigest), !!w.started));
  } else if (!bad && ctx.instances) {
    apply(w, downStatus(ctx, w.rec, d ? 'stopped' : 'removed', false));
  }
}

type Exec = { ctx: Ctx; w: Work; d: DesiredProject | undefined; target: Target | null };
type Handler<K extends Action['kind']> = (x: Exec, a: Extract<Action, { kind: K }>) => Promise<void>;

const event = (x: Exec, a: Action, extra: object = {}): NewEvent =>
  ({ action: a.kind, actor: x.ctx.actor, commit: x.ctx.commit, detail: { reason: a.reason, ...('changes' in a ? { changes: a.changes } : {}), ...extra } });

/** Start the target instance when the driver answers; the instance it started, else null. */
async function startTarget(x: Exec): Promise<Instance | null> {
  const { ctx, w, target } = x;
  if (!ctx.instances || !target || !w.rec) return null;
  const rec = w.rec;
  const specHash = specHashOf(ctx.deps, rec, target.manifest, target.schemaDigest);
  const running = ctx.instances.get(rec.id);
  if (running?.running && running.specHash === specHash) return null;
  w.started = await startInstance(ctx, rec, target.manifest, specHash);
  return w.started;
}

/** One handler per action kind: the executor of the plan. */
const HANDLERS: { [K in Action['kind']]: Handler<K> } = {
  // Registered already (step 2); a running project's first instance starts with it.
  // Registered already (step 2); its role, database and secrets, then its first instance.
  create: async (x) => {
    if (x.d && x.d.manifest.state !== 'deleted') await provision(x, connectionsOf(x.d.manifest));
    await startTarget(x);
  },
  provision: async (x, a) => {
    await provision(x, a.connections);
    x.w.events.push(event(x, a));
  },
  start: async (x, a) => {
    const inst = await startTarget(x);
    x.w.events.push(event(x, a, inst ? { specHash: inst.specHash, upstream: inst.upstream } : {}));
  },
  update: async (x, a) => { x.w.events.push(event(x, a)); },
  schema_update: async (x, a) => { x.w.events.push(event(x, a)); },
  restart: async (x, a) => {
    const { ctx, w, target } = x;
    if (!ctx.instances || !target || !w.rec) return;
    const rec = w.rec;
    const specHash = specHashOf(ctx.deps, rec, target.manifest, target.schemaDigest);
    if (a.cause === 'crash') {
      const exitCode = ctx.instances.get(rec.id)?.exitCode ?? ctx.deps.lastExit.get(rec.id) ?? null;
      const failures = ctx.deps.backoff.failures(rec.id);
      const inst = (w.started = await startInstance(ctx, rec, target.manifest, specHash));
      w.events.push({ action: 'restart', actor: 'fleet-daemon', commit: ctx.commit, detail: { reason: 'instance exited', cause: 'crash', exitCode, failures, specHash, upstream: inst.upstream } });
      apply(w, { patch: { restarts: rec.restarts + 1 }, events: [] });
      return;
    }
    // The new instance starts next to the running one; the driver retires the old one after the gateway switched.
    const replaced = await replaceInstance(ctx, rec, target.manifest, ctx.instances.get(rec.id)!, specHash);
    if ('patch' in replaced) {
      apply(w, replaced);
      w.statusDone = true;
      return;
    }
    w.started = replaced;
    // An operator restart is that operator's act, not the commit author's.
    const actor = a.cause === 'operator' ? rec.restartRequestedBy ?? ctx.actor : ctx.actor;
    w.events.push({ ...event(x, a, { cause: a.cause, specHash, upstream: replaced.upstream }), actor });
  },
  stop: async (x, a) => {
    const { ctx, w } = x;
    const rec = w.rec!;
    if (a.removed) apply(w, { patch: { present: false, desiredState: 'stopped', observedCommit: ctx.commit }, events: [] });
    w.events.push(event(x, a));
    if (!ctx.instances) return;
    await stopInstance(ctx, rec.id, a.removed ? 'removed' : 'stopped');
    apply(w, downStatus(ctx, w.rec!, a.removed ? 'removed' : 'stopped', true));
    w.statusDone = true;
  },
  delete: async (x) => {
    const { ctx, w } = x;
    apply(w, { patch: { observedCommit: ctx.commit }, events: [] });
    // Stop the instance first: nothing may write while the backup runs.
    if (ctx.instances) {
      await stopInstance(ctx, w.rec!.id, 'deleted');
      // What the driver keeps after a stop (a swarm service at 0 replicas, its schema configs) goes too; a failure
      // fails this delete, which is retried like any other.
      await ctx.deps.driver.remove?.(w.rec!.id);
      apply(w, downStatus(ctx, w.rec!, 'stopped', true));
    }
    apply(w, await deleteProject(ctx, w.rec!, x.d!));
  },
  wait: async (x, a) => {
    const { ctx, w } = x;
    if (a.on === 'crash') apply(w, waitStatus(ctx, w.rec!, a.waitMs));
    else if (a.on === 'placement') apply(w, pendingStatus(ctx, w.rec!, a.reason));
    else if (a.on === 'reschedule') apply(w, pendingStatus(ctx, w.rec!, a.reason, 'Rescheduling'));
    else if (a.on === 'replace' && ctx.instances?.get(w.rec!.id)) apply(w, await keepServing(ctx, w.rec!, ctx.instances.get(w.rec!.id)!, null, []));
    // A failed drop of an old copy keeps its Reconciling condition while it waits, unless an instance started.
    w.statusDone = a.on !== 'delete' && !(a.on === 'drop' && w.started);
  },
  restore: async (x, a) => {
    const { ctx, w, target } = x;
    const rec = w.rec!;
    // The operator's act, not the commit author's.
    if (a.refused) return closeRestore(ctx.deps.registry, a, { ok: false, backup: a.backup, message: a.refused }, a.by);
    await ctx.deps.registry.markRequest(a.request, { started: true });
    // The instance stops first: nothing may write while the database is replaced.
    if (ctx.instances) await stopInstance(ctx, rec.id, 'restore');
    const outcome = await runRestore({ ...ctx.deps, adminUrl: (await serverOfRecord(ctx, rec)).adminUrl }, rec, a, ctx.log);
    // It comes back whether or not the restore worked: a failed restore changed nothing.
    let startError: unknown = null;
    if (target && ctx.instances) {
      try {
        w.started = await startInstance(ctx, rec, target.manifest, specHashOf(ctx.deps, rec, target.manifest, target.schemaDigest));
        outcome.started = true;
      } catch (err) {
        startError = err;
        outcome.message += `; the instance did not start again: ${describe(err)}`;
      }
    }
    // Its event goes with the request's outcome (one transaction), so `fleet restore` returns with it recorded.
    await closeRestore(ctx.deps.registry, a, outcome, a.by);
    if (startError) throw startError;
  },
  // The plan's guarded database move (move.ts): a failure leaves the project serving on the old server, recorded.
  move_database: async (x, a) => {
    const { ctx, w, target } = x;
    if (a.refused) throw new FleetError('PROVISION', a.reason, { project: a.id });
    const moved = await moveDatabase(ctx, w.rec!, a, target);
    if (moved.started) w.started = moved.started;
    if (!moved.ok) {
      w.events.push(...moved.events);
      throw moved.error;
    }
    // Already written (before the instance started on the new server); kept in the pass's row too.
    apply(w, { patch: moved.patch, events: [] });
    if (moved.startError) throw moved.startError;
  },
  // A failure keeps the copy; it is retried with backoff, and its Reconciling condition stays until then.
  drop_old_database: async (x, a) => {
    const dropped = await dropOldDatabase(x.ctx, x.w.rec!, a);
    if (!dropped.ok) {
      x.w.events.push(...dropped.events);
      throw dropped.error;
    }
    apply(x.w, dropped.step);
  },
  suspended: async () => {},
  noop: async () => {},
};

/** Secrets, role and database made to match, and recorded: the plan provisions only what the row says is not. */
async function provision(x: Exec, connections: number): Promise<void> {
  const { ctx, w } = x;
  const server = await serverOfRecord(ctx, w.rec!);
  const { databaseCreated } = await ctx.deps.provisionProject(w.rec!.id, { connectionLimit: connections, server });
  const events: NewEvent[] = databaseCreated
    ? [{ action: 'database_created', actor: ctx.actor, commit: ctx.commit, detail: { database: w.rec!.databaseName } }] : [];
  apply(w, { patch: { provisionedConnections: connections }, events });
}

/** Database, schema file and the manifest as the row's desired state: what git says, every pass. */
async function prepare(ctx: Ctx, rec: ProjectRecord, d: DesiredProject): Promise<Step> {
  const { deps } = ctx;
  const m = d.manifest;
  const events: NewEvent[] = [];
  // schema.ts at the pinned commit, written only when its content changed.
  materializeSchema(deps.stateDir, rec.id, d.schema.content);
  const patch: Partial<ProjectRecord> = {
    displayName: m.displayName, hostname: m.hostname, aliases: m.aliases, manifest: m, env: m.env,
    secretRefs: secretRefsOf(deps, m), present: true, desiredState: m.state === 'stopped' ? 'stopped' : 'running',
    observedCommit: ctx.commit,
    conditions: rec.conditions.filter((c) => c.type !== 'Invalid'),
  };
  if (rec.schemaDigest !== d.schema.digest) {
    patch.schemaDigest = d.schema.digest;
    patch.schemaRef = { type: 'git', repo: deps.repoUrl, path: `projects/${rec.id}/${m.schema}`, ref: ctx.commit };
    patch.schemaHistory = [...rec.schemaHistory.filter((h) => h !== rec.schemaDigest), ...(rec.schemaDigest ? [rec.schemaDigest] : [])].slice(-20);
  }
  return { patch, events };
}

async function register(ctx: Ctx, d: DesiredProject, reason: string): Promise<ProjectRecord> {
  const { deps } = ctx;
  const db = databaseNames(d.id);
  const port = deps.layout.hostPorts ? await allocatePort(deps, ctx.ports) : null;
  const secretRefs = secretRefsOf(deps, d.manifest);
  await deps.registry.insert({
    id: d.id, manifest: d.manifest, displayName: d.manifest.displayName, hostname: d.manifest.hostname,
    aliases: d.manifest.aliases, databaseUrlRef: secretRefs.DATABASE_URL,
    databaseName: db.database, roleName: db.role, status: 'provisioning', port,
    schemaRef: { type: 'git', repo: deps.repoUrl, path: `projects/${d.id}/${d.manifest.schema}`, ref: ctx.commit },
    observedCommit: ctx.commit, secretRefs, env: d.manifest.env, databaseServer: databaseServerOf(d.manifest),
  }, [{ action: 'create', actor: ctx.actor, commit: ctx.commit, detail: { reason } }]);
  return (await deps.registry.get(d.id))!;
}

/**
 * A stable port: the first from portBase that no project holds and nothing on this host listens on. `used` is the
 * pass's set (read once from the registry): a port is taken in it before the check, so side-by-side registrations
 * never pick the same one.
 */
async function allocatePort(deps: ReconcileDeps, used: Set<number>): Promise<number> {
  for (let port = deps.portBase; ; port++) {
    if (used.has(port)) continue;
    used.add(port);
    if (await portFree(port)) return port;
  }
}

/** An invalid manifest: the project keeps running as last applied; the error is a condition and an event. */
function invalidStep(ctx: Ctx, rec: ProjectRecord, bad: InvalidProject): Step {
  const message = bad.errors.slice(0, 5).map(formatIssue).join('; ');
  const prev = rec.conditions.find((c) => c.type === 'Invalid');
  const fresh = !prev || prev.message !== message || rec.observedCommit !== ctx.commit;
  if (fresh) ctx.log.warn({ issues: bad.errors.length }, `invalid manifest, keeping the last applied one: ${message}`);
  const conditions = withCondition(rec.conditions, { type: 'Invalid', status: true, reason: 'InvalidManifest', message });
  return {
    patch: { conditions, observedCommit: ctx.commit },
    events: fresh ? [{ action: 'invalid', actor: ctx.actor, commit: ctx.commit, detail: { issues: bad.errors.slice(0, 20) } }] : [],
  };
}

function failureStep(rec: ProjectRecord, err: unknown): Step {
  const code = err instanceof FleetError ? err.code : 'ERROR';
  const message = describe(err);
  const conditions = withCondition(rec.conditions, { type: 'Reconciling', status: false, reason: code, message });
  // One event per distinct failure, not one per retry: the Reconciling condition remembers the last one.
  const prev = rec.conditions.find((c) => c.type === 'Reconciling');
  const repeated = prev?.status === false && prev.reason === code && prev.message === message;
  return { patch: { conditions, lastError: message }, events: repeated ? [] : [{ action: 'error', actor: 'fleet-daemon', detail: { code, message } }] };
}

