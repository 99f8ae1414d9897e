// One reconcile pass: read the registry and the running instances afresh, plan against the desired fleet, and
// converge every project. A failing project records its error and the others go on.
import { createServer } from 'node:net';
import { FleetError, describe, isFleetError } from '../core/errors.ts';
import { connectionsOf, planFleet, type Target } from '../core/plan.ts';
import { observedInstances, pacing, targetOf } from './pacing.ts';
import { canonicalJson } from '../core/canonical.ts';
import type { Action, DesiredFleet, DesiredProject, Instance, InvalidProject, Manifest, PlanInput } from '../core/types.ts';
import { Registry, lastManifest, toActual, withCondition, type NewEvent, type ProjectRecord } from '../registry/registry.ts';
import { databaseNames } from '../provision/database.ts';
import { materializeSchema, secretRefsOf } from '../provision/project.ts';
import {
  downStatus, driverUnreachable, instanceStatus, keepServing, replaceInstance, specHashOf, startInstance,
  stopInstance, waitStatus, type InstanceDeps, type Step,
} from './instance.ts';
import { deleteProject } from './delete.ts';
import { formatIssue } from '../manifest/parse.ts';
import type { ReconcileContext as Ctx, ReconcileDeps } from './context.ts';

export type { ReconcileContext, ReconcileDeps } from './context.ts';

export interface Observed {
  desired: DesiredFleet;
  /** Author of the observed commit: the actor of the events it causes. */
  author: string;
}

export async function reconcile(deps: ReconcileDeps, observed: Observed): Promise<{ actions: Action[]; failed: string[] }> {
  const { desired } = observed;
  // 1. What the registry says is deployed, and what actually runs (found afresh, not remembered).
  const records = await deps.registry.list();
  const instances = await listInstances(deps);
  // 2. The plan: pure, from git, the registry, the instances and the backoff's pacing. It decides every step.
  const invalid = new Map(desired.invalid.map((p) => [p.id, p]));
  const actual = records.map(toActual);
  const input: PlanInput = {
    desired: desired.projects, invalid: [...invalid.keys()], actual, driver: deps.layout,
    instances: instances && observedInstances(deps, instances),
  };
  input.pacing = pacing(deps, input, desired.commit);
  const actions = planFleet(input);
  const wanted = new Map(desired.projects.map((p) => [p.id, p]));
  const byId = new Map(records.map((r) => [r.id, r]));
  const ids = [...new Set([...wanted.keys(), ...byId.keys(), ...invalid.keys()])].sort();
  const byProject = new Map<string, Action[]>();
  for (const a of actions) byProject.set(a.id, [...(byProject.get(a.id) ?? []), a]);
  const failed: string[] = [];
  // 3. Execute each project's actions on its own: one failure never blocks the others.
  for (const id of ids) {
    const log = deps.log.child({ project: id, commit: desired.commit });
    const ctx: Ctx = { deps, log, instances, commit: desired.commit, actor: observed.author, actions: byProject.get(id) ?? [] };
    const rec = byId.get(id);
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
    try {
      await commit(deps.registry, w);
    } catch (err) {
      error ??= err;
    }
    if (error) {
      failed.push(id);
      if (isFleetError(error, 'POSTGRES_UNREACHABLE') && !byId.has(id)) throw error;
    }
  }
  await recordInvalid(deps, desired);
  return { actions, failed };
}

/** The fleet-wide list of invalid project folders at this commit, also those never registered (no row to hold it). */
async function recordInvalid(deps: ReconcileDeps, desired: DesiredFleet): Promise<void> {
  const now = desired.invalid.map((p) => ({ id: p.id, issues: p.errors.slice(0, 5).map(formatIssue) }));
  const prev = await deps.registry.getState<{ commit: string; projects: typeof now }>('invalid');
  if (prev && JSON.stringify(prev.projects) === JSON.stringify(now)) return;
  for (const p of now) deps.log.warn({ project: p.id, commit: desired.commit }, `invalid manifest: ${p.issues.join('; ')}`);
  await deps.registry.setState('invalid', { commit: desired.commit, projects: now });
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

async function commit(registry: Registry, w: Work): Promise<void> {
  if (!w.orig && !w.rec) return;
  const base = w.orig ?? w.rec!;
  // Most passes change nothing: write only what differs, so a quiet fleet does not rewrite every row.
  const current: Record<string, unknown> = { ...base, manifest: lastManifest(base) };
  const patch = Object.fromEntries(Object.entries(w.patch).filter(([k, v]) => canonicalJson(v) !== canonicalJson(current[k])));
  if (Object.keys(patch).length || w.events.length) await registry.updateWithEvents(base.id, patch, w.events);
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
  // 1. An invalid manifest is a condition and an event; what was last applied runs on.
  if (bad) {
    if (w.rec) apply(w, invalidStep(ctx, w.rec, bad));
    ctx = { ...ctx, commit: w.rec?.appliedCommit ?? ctx.commit };
  }
  // 2. A new project is registered first: the row is the record that creation began.
  const create = ctx.actions.find((a) => a.kind === 'create');
  if (create && d && w.rec?.status === 'deleted') {
    // A deleted project whose folder says running again: the same row, created anew.
    apply(w, { patch: { status: 'provisioning' }, events: [{ action: 'create', actor: ctx.actor, commit: ctx.commit, detail: { reason: create.reason } }] });
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
    w.events.push(event(x, a, { cause: 'spec', specHash, upstream: replaced.upstream }));
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
      apply(w, downStatus(ctx, w.rec!, 'stopped', true));
    }
    apply(w, await deleteProject(ctx, w.rec!, x.d!));
  },
  wait: async (x, a) => {
    const { ctx, w } = x;
    if (a.on === 'crash') apply(w, waitStatus(ctx, w.rec!, a.waitMs));
    else if (a.on === 'replace' && ctx.instances?.get(w.rec!.id)) apply(w, await keepServing(ctx, w.rec!, ctx.instances.get(w.rec!.id)!, null, []));
    w.statusDone = a.on !== 'delete';
  },
  noop: async () => {},
};

/** Secrets, role and database made to match, and recorded: the plan provisions only what the row says is not. */
async function provision(x: Exec, connections: number): Promise<void> {
  const { ctx, w } = x;
  const { databaseCreated } = await ctx.deps.provisionProject(w.rec!.id, { connectionLimit: connections });
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
  const port = deps.layout.hostPorts ? await allocatePort(deps) : null;
  const secretRefs = secretRefsOf(deps, d.manifest);
  await deps.registry.insert({
    id: d.id, manifest: d.manifest, displayName: d.manifest.displayName, hostname: d.manifest.hostname,
    aliases: d.manifest.aliases, databaseUrlRef: secretRefs.DATABASE_URL,
    databaseName: db.database, roleName: db.role, status: 'provisioning', port,
    schemaRef: { type: 'git', repo: deps.repoUrl, path: `projects/${d.id}/${d.manifest.schema}`, ref: ctx.commit },
    observedCommit: ctx.commit, secretRefs, env: d.manifest.env,
  }, [{ action: 'create', actor: ctx.actor, commit: ctx.commit, detail: { reason } }]);
  return (await deps.registry.get(d.id))!;
}

/** A stable port: the first from portBase that no project holds and nothing on this host listens on. */
async function allocatePort(deps: ReconcileDeps): Promise<number> {
  const used = await deps.registry.usedPorts();
  let port = deps.portBase;
  while (used.has(port) || !(await portFree(port))) port += 1;
  return port;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
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

