// One reconcile pass: read the registry and the running instances afresh, plan against the desired fleet, and
// converge every project. A failing project records its error and the others go on.
import type { Logger } from 'pino';
import type { Backoff } from './backoff.ts';
import { createServer } from 'node:net';
import { FleetError, describe, isFleetError } from './errors.ts';
import { plan } from './plan.ts';
import { canonicalJson } from './canonical.ts';
import type { Action, ActualProject, DesiredFleet, DesiredProject, Instance, InvalidProject } from './types.ts';
import { Registry, lastManifest, withCondition, type NewEvent, type ProjectRecord } from './registry/registry.ts';
import { DEFAULT_CONNECTION_LIMIT, databaseNames } from './provision/database.ts';
import { materializeSchema, secretRefsOf } from './provision/project.ts';
import { ensureInstance, stopInstance, type InstanceDeps } from './instance.ts';
import { deleteProject } from './provision/delete.ts';
import { formatIssue } from './manifest/parse.ts';

export interface ReconcileDeps extends InstanceDeps {
  registry: Registry;
  repoUrl: string;
  /** First port handed to process-driver instances. */
  portBase: number;
  backupDir: string;
  /** Pacing of operations that failed and must not be retried every pass (a guarded delete's backup). */
  retries: Backoff;
}

export interface Observed {
  desired: DesiredFleet;
  /** Author of the observed commit: the actor of the events it causes. */
  author: string;
}

export function toActual(rec: ProjectRecord): ActualProject {
  return {
    id: rec.id, status: rec.status, desiredState: rec.desiredState, manifest: lastManifest(rec)!,
    schemaDigest: rec.schemaDigest, schemaVersion: rec.schemaVersion, schemaHistory: rec.schemaHistory, present: rec.present,
  };
}

export async function reconcile(deps: ReconcileDeps, observed: Observed): Promise<{ actions: Action[]; failed: string[] }> {
  const { desired } = observed;
  // 1. What the registry says is deployed, and what actually runs (found afresh, not remembered).
  const records = await deps.registry.list();
  const instances = await listInstances(deps);
  // 2. The plan: pure, from git vs registry.
  const invalid = new Map(desired.invalid.map((p) => [p.id, p]));
  const actions = plan(desired.projects, records.map(toActual), [...invalid.keys()]);
  const wanted = new Map(desired.projects.map((p) => [p.id, p]));
  const byId = new Map(records.map((r) => [r.id, r]));
  const ids = [...new Set([...wanted.keys(), ...byId.keys(), ...invalid.keys()])].sort();
  const failed: string[] = [];
  // 3. Converge each project on its own: one failure never blocks the others.
  for (const id of ids) {
    const log = deps.log.child({ project: id, commit: desired.commit });
    const ctx = { deps, log, instances, commit: desired.commit, actor: observed.author, actions: actions.filter((a) => a.id === id) };
    try {
      if (invalid.has(id)) await keepLastApplied(ctx, byId.get(id), invalid.get(id)!);
      else if (wanted.has(id)) await converge(ctx, byId.get(id), wanted.get(id)!);
      else await removed(ctx, byId.get(id)!);
    } catch (err) {
      failed.push(id);
      log.error({ err: { code: (err as FleetError).code, message: describe(err) } }, 'project did not converge');
      await recordFailure(deps.registry, id, err).catch(() => {});
      if (isFleetError(err, 'POSTGRES_UNREACHABLE') && !byId.has(id)) throw err;
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

type Ctx = {
  deps: ReconcileDeps;
  log: Logger;
  instances: Map<string, Instance> | null;
  commit: string;
  actor: string;
  actions: Action[];
};

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

/** Events for the plan's actions, recorded with the registry change that applies them. */
function actionEvents(ctx: Ctx, kinds: Action['kind'][]): NewEvent[] {
  return ctx.actions
    .filter((a) => kinds.includes(a.kind))
    .map((a) => ({ action: a.kind, actor: ctx.actor, commit: ctx.commit, detail: { reason: a.reason, ...('changes' in a ? { changes: a.changes } : {}) } }));
}

async function converge(ctx: Ctx, rec: ProjectRecord | undefined, d: DesiredProject): Promise<void> {
  const { deps } = ctx;
  const m = d.manifest;
  // 1. Register a new project (status provisioning): the row is the record that creation began.
  if (!rec) rec = await register(ctx, d);
  // 2. A confirmed deletion is its own path (backup first, database dropped only when asked).
  if (m.state === 'deleted') return deleteProject(ctx, rec, d);
  // 3. Secrets, role and database: checked once per daemon run (and when the connection limit changes), then trusted.
  const connectionLimit = m.resources.connections ?? DEFAULT_CONNECTION_LIMIT;
  if (deps.provisioned.get(rec.id) !== connectionLimit) {
    const { databaseCreated } = await deps.provisionProject(rec.id, { connectionLimit });
    deps.provisioned.set(rec.id, connectionLimit);
    if (databaseCreated) await deps.registry.event(rec.id, 'database_created', { actor: ctx.actor, commit: ctx.commit, detail: { database: rec.databaseName } });
  }
  // 4. schema.ts at the pinned commit, written only when its content changed.
  materializeSchema(deps.stateDir, rec.id, d.schema.content);
  const schemaChanged = rec.schemaDigest !== d.schema.digest;
  // 5. Apply the manifest to the registry, with the events of the plan's actions.
  const patch: Partial<ProjectRecord> = {
    displayName: m.displayName, hostname: m.hostname, aliases: m.aliases, manifest: m, env: m.env,
    secretRefs: secretRefsOf(deps, m), present: true, desiredState: m.state === 'stopped' ? 'stopped' : 'running',
    observedCommit: ctx.commit,
    conditions: rec.conditions.filter((c) => c.type !== 'Invalid'),
  };
  if (schemaChanged) {
    patch.schemaDigest = d.schema.digest;
    patch.schemaRef = { type: 'git', repo: deps.repoUrl, path: `projects/${rec.id}/${m.schema}`, ref: ctx.commit };
    patch.schemaHistory = [...rec.schemaHistory.filter((h) => h !== rec!.schemaDigest), ...(rec.schemaDigest ? [rec.schemaDigest] : [])].slice(-20);
  }
  // A `start` for a failed instance is the backoff's business (its restarts are events of their own); only a
  // change of desired state is recorded here, once.
  const wasDown = rec.desiredState === 'stopped' || !rec.present || rec.status === 'deleted';
  const kinds: Action['kind'][] = ['update', 'schema_update', 'stop', ...(wasDown ? ['start' as const] : [])];
  const events = actionEvents(ctx, kinds);
  // Most passes change nothing here: write only what differs, so a quiet fleet does not rewrite every row.
  const current: Record<string, unknown> = { ...rec, manifest: lastManifest(rec) };
  const changed = Object.entries(patch).some(([k, v]) => canonicalJson(v) !== canonicalJson(current[k]));
  if (changed || events.length) await deps.registry.updateWithEvents(rec.id, patch, events);
  rec = { ...rec, ...patch, manifest: m } as ProjectRecord;
  // 6. Run or stop the instance to match.
  if (rec.desiredState === 'running') await ensureInstance(ctx, rec, m, d.schema.digest);
  else await stopInstance(ctx, rec, 'stopped');
}

async function register(ctx: Ctx, d: DesiredProject): Promise<ProjectRecord> {
  const { deps } = ctx;
  const db = databaseNames(d.id);
  const port = deps.driverName === 'process' ? await allocatePort(deps) : null;
  const secretRefs = secretRefsOf(deps, d.manifest);
  await deps.registry.insert({
    id: d.id, manifest: d.manifest, displayName: d.manifest.displayName, hostname: d.manifest.hostname,
    aliases: d.manifest.aliases, databaseUrlRef: secretRefs.DATABASE_URL,
    databaseName: db.database, roleName: db.role, status: 'provisioning', port,
    schemaRef: { type: 'git', repo: deps.repoUrl, path: `projects/${d.id}/${d.manifest.schema}`, ref: ctx.commit },
    observedCommit: ctx.commit, secretRefs, env: d.manifest.env,
  }, [{ action: 'create', actor: ctx.actor, commit: ctx.commit, detail: { reason: 'new project folder' } }]);
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
async function keepLastApplied(ctx: Ctx, rec: ProjectRecord | undefined, bad: InvalidProject): Promise<void> {
  const message = bad.errors.slice(0, 5).map(formatIssue).join('; ');
  if (!rec) return; // never applied: nothing runs, nothing to keep (the fleet's `invalid` state names it)
  const prev = rec.conditions.find((c) => c.type === 'Invalid');
  const fresh = !prev || prev.message !== message || rec.observedCommit !== ctx.commit;
  if (fresh) ctx.log.warn({ issues: bad.errors.length }, `invalid manifest, keeping the last applied one: ${message}`);
  const conditions = withCondition(rec.conditions, { type: 'Invalid', status: true, reason: 'InvalidManifest', message });
  await ctx.deps.registry.updateWithEvents(rec.id, { conditions, observedCommit: ctx.commit },
    fresh ? [{ action: 'invalid', actor: ctx.actor, commit: ctx.commit, detail: { issues: bad.errors.slice(0, 20) } }] : []);
  rec = { ...rec, conditions };
  const m = lastManifest(rec);
  // It runs what was last applied: its events and appliedCommit stay on that commit, not on the invalid one.
  const applied = { ...ctx, commit: rec.appliedCommit ?? ctx.commit };
  if (rec.present && rec.desiredState === 'running' && m && rec.schemaDigest) await ensureInstance(applied, rec, m, rec.schemaDigest);
}

/** The folder is gone: stop the instance, keep the database and the row (a revert brings it back). */
async function removed(ctx: Ctx, rec: ProjectRecord): Promise<void> {
  if (rec.status === 'deleted') return;
  if (rec.present) {
    await ctx.deps.registry.updateWithEvents(rec.id, { present: false, desiredState: 'stopped', observedCommit: ctx.commit },
      actionEvents(ctx, ['stop']));
  }
  await stopInstance(ctx, { ...rec, present: false }, 'removed');
}

async function recordFailure(registry: Registry, id: string, err: unknown): Promise<void> {
  const rec = await registry.get(id);
  if (!rec) return;
  const code = err instanceof FleetError ? err.code : 'ERROR';
  const message = describe(err);
  const conditions = withCondition(rec.conditions, { type: 'Reconciling', status: false, reason: code, message });
  // One event per distinct failure, not one per retry: the Reconciling condition remembers the last one.
  const prev = rec.conditions.find((c) => c.type === 'Reconciling');
  const repeated = prev?.status === false && prev.reason === code && prev.message === message;
  await registry.updateWithEvents(id, { conditions, lastError: message }, repeated ? [] : [{ action: 'error', actor: 'fleet-daemon', detail: { code, message } }]);
}

export type { Ctx as ReconcileContext };
