// Keep one project's instance matching its spec: start it, replace it when its spec changed (new one first; the old
// one serves on until the driver retires it after the gateway switched), restart it after a crash (with backoff),
// probe it, and record what happened as status, conditions and events.
import type { Logger } from 'pino';
import type { Backoff } from '../core/backoff.ts';
import { describe } from '../core/errors.ts';
import type { Health } from '../health.ts';
import { instancePort, instanceSpecHash, renderInstanceEnv } from '../core/instance-spec.ts';
import { logDirOf, schemaFilePath, secretRefsOf, type ProvisionContext } from '../provision/project.ts';
import type { Registry, ProjectRecord, NewEvent } from '../registry/registry.ts';
import { withCondition } from '../registry/registry.ts';
import type { Condition, Driver, Instance, InstanceSpec, Manifest, DriverLayout, PendingReason } from '../core/types.ts';
import type { HealthMonitor } from './health.ts';

export interface InstanceDeps extends ProvisionContext {
  registry: Registry;
  driver: Driver;
  /** Where the driver's instances listen and read their schema (declared by the driver). */
  layout: DriverLayout;
  log: Logger;
  backoff: Backoff;
  probe: (upstream: string) => Promise<Health>;
  /** Instances' health, probed on its own interval; a pass reads it and probes only what it just started. */
  health: HealthMonitor;
  /** Last exit code per project, as the driver reported it. */
  lastExit: Map<string, number | null>;
  /** Projects whose database and secrets were checked during this daemon run. */
  provisionProject(id: string, opts?: { connectionLimit?: number; server?: { adminUrl: string; instanceHost?: string } }): Promise<{ databaseCreated: boolean }>;
  /** How long one pass waits for a just-started instance to answer /ready before moving on. */
  readyWaitMs: number;
  now(): number;
}

interface Ctx {
  deps: InstanceDeps;
  log: Logger;
  instances: Map<string, Instance> | null;
  commit: string;
  actor: string;
}

function portOf(deps: InstanceDeps, rec: ProjectRecord, m: Manifest): number {
  return instancePort(deps.layout, rec.port, m);
}

async function buildSpec(ctx: Ctx, rec: ProjectRecord, m: Manifest, specHash: string): Promise<InstanceSpec> {
  const { deps } = ctx;
  const port = portOf(deps, rec, m);
  // Secret values are read only now, at start, and live only in the instance's environment.
  // Resolved and scope-checked from the manifest now, not taken from the row: a row written by an older daemon
  // must not hand out another project's secret.
  const refs = secretRefsOf(deps, m);
  const values = await deps.secrets.getMany(Object.values(refs));
  const secrets = Object.fromEntries(Object.entries(refs).map(([name, ref]) => [name, values[ref]]));
  const env = renderInstanceEnv({
    manifest: m, secrets, port,
    schemaPath: deps.layout.schemaMount ?? schemaFilePath(deps.stateDir, rec.id),
    host: deps.layout.host,
  });
  return {
    id: rec.id, commit: ctx.commit, image: m.runtime.image, command: m.runtime.command, env,
    schemaPath: schemaFilePath(deps.stateDir, rec.id), port, resources: m.resources ?? {}, specHash,
    logDir: logDirOf(deps.stateDir, rec.id), ...(m.placement ? { placement: m.placement } : {}),
  };
}

/** What a step changed: the row patch and the events, committed by the reconciler once per project per pass. */
export interface Step {
  patch: Partial<ProjectRecord>;
  events: NewEvent[];
}

/** The spec hash an instance of `rec` running `m` with `schemaDigest` has. */
export function specHashOf(deps: InstanceDeps, rec: ProjectRecord, m: Manifest, schemaDigest: string): string {
  return instanceSpecHash({ manifest: m, schemaDigest, port: portOf(deps, rec, m), secretsVersion: rec.secretsVersion, driver: deps.layout.name, restartGeneration: rec.restartGeneration });
}

/** Start the instance that does not run (new, back from stopped, exited, crashed): the driver call only. */
export async function startInstance(ctx: Ctx, rec: ProjectRecord, m: Manifest, specHash: string): Promise<Instance> {
  ctx.deps.lastExit.delete(rec.id);
  const inst = await startWithBackoff(ctx, rec, m, specHash);
  ctx.log.info({ upstream: inst.upstream, specHash }, 'instance started');
  return inst;
}

/** Status of an instance that should run and runs: its /ready probe, as conditions. */
export async function instanceStatus(ctx: Ctx, rec: ProjectRecord, inst: Instance, specHash: string, justStarted: boolean): Promise<Step> {
  const { deps } = ctx;
  // A just-started instance is waited for (its own start-to-ready time, bounded); any other's health is the
  // monitor's, probed now only when it never was at this upstream (the first pass after a daemon start).
  const health = justStarted
    ? await deps.health.waitReady(rec.id, inst.upstream, deps.readyWaitMs, () => deps.lastExit.has(rec.id))
    : deps.health.get(rec.id, inst.upstream) ?? await deps.health.probe(rec.id, inst.upstream);
  if (health.ok) deps.backoff.healthy(rec.id, deps.now());
  const converged = health.ok && inst.specHash === specHash;
  // A crash loop stays reported as stalled between attempts, until an attempt answers /ready.
  const crashLooping = !health.ok && deps.backoff.stalled(rec.id);
  const status = health.ok ? 'running' : crashLooping ? 'failed' : rec.status === 'running' ? 'running' : 'provisioning';
  const conditions: Omit<Condition, 'at'>[] = [
    { type: 'Healthy' as const, status: health.ok, reason: health.ok ? 'Ready' : 'NotReady', message: health.ok ? '/ready answered 200' : `/ready: ${health.status ?? health.error}` },
    { type: 'Ready' as const, status: converged, reason: converged ? 'Converged' : 'Progressing', message: converged ? `running ${ctx.commit.slice(0, 7)}` : 'waiting for /ready' },
    crashLooping
      ? { type: 'Stalled' as const, status: true, reason: 'CrashLoopBackOff', message: rec.conditions.find((c) => c.type === 'Stalled')?.message ?? 'instance keeps exiting' }
      : { type: 'Stalled' as const, status: false, reason: 'Running', message: '' },
    { type: 'Reconciling' as const, status: true, reason: 'Ok', message: '' },
    // The desired spec runs: a replacement that failed before is no longer the story.
    ...(rec.conditions.some((c) => c.type === 'Degraded' && c.status) && inst.specHash === specHash ? [{ type: 'Degraded' as const, status: false, reason: 'Replaced', message: '' }] : []),
  ];
  return {
    patch: {
      upstream: inst.upstream, specHash: inst.specHash, status, lastHealth: health,
      conditions: conditions.reduce((cs, c) => withCondition(cs, c), rec.conditions),
      ...(converged ? { appliedCommit: ctx.commit, schemaVersion: rec.schemaRef.ref, lastError: null } : {}),
    },
    events: [],
  };
}

/** The instance is paced by the backoff: nothing starts; the status says when it will. */
export function waitStatus(ctx: Ctx, rec: ProjectRecord, waitMs: number): Step {
  const { deps } = ctx;
  const failures = deps.backoff.failures(rec.id);
  const isStalled = deps.backoff.stalled(rec.id);
  // A start that threw (missing image, unreadable secret) left its error on Reconciling: that is the cause to show.
  const startError = rec.conditions.find((c) => c.type === 'Reconciling' && !c.status && c.reason !== 'DriverUnreachable');
  const next = `next start in ${Math.ceil(waitMs / 1000)} s`;
  const message = startError
    ? `${startError.message} (${failures} failed start(s) in a row; ${next})`
    : `instance exited ${failures} time(s) in a row; ${next}; see ${logDirOf(deps.stateDir, rec.id)}/instance.log`;
  return {
    patch: {
      // A crash loop is failed whether or not the project ran before; the gateway then shows the maintenance page.
      status: isStalled ? 'failed' : rec.status,
      lastHealth: { ok: false, error: 'not running', at: new Date(deps.now()).toISOString() },
      lastError: message,
      conditions: [
        { type: 'Stalled' as const, status: isStalled, reason: isStalled ? 'CrashLoopBackOff' : 'BackOff', message },
        { type: 'Healthy' as const, status: false, reason: 'NotRunning', message },
        { type: 'Ready' as const, status: false, reason: 'BackOff', message },
      ].reduce((cs, c) => withCondition(cs, c), rec.conditions),
    },
    events: [],
  };
}

/**
 * The instance does not run though nothing crashed: the engine cannot place it (swarm: no node satisfies its
 * placement), or it is starting a replacement for a task lost with its node. No restart and no backoff: the
 * project waits for the engine. The gateway shows the maintenance page (the last upstream is on a node that is
 * gone); one event when this starts, not one per pass: an `error` when no node fits, a `rescheduled` otherwise.
 */
export function pendingStatus(ctx: Ctx, rec: ProjectRecord, message: string, reason: PendingReason = 'Unschedulable'): Step {
  const was = rec.conditions.find((c) => c.type === 'Ready');
  const known = was && !was.status && was.reason === reason && was.message === message;
  const conditions: Omit<Condition, 'at'>[] = [
    { type: 'Ready', status: false, reason, message },
    { type: 'Healthy', status: false, reason: 'NotRunning', message: reason === 'Unschedulable' ? 'no task runs: the engine cannot place it' : 'no task runs yet: the engine is starting one' },
    { type: 'Stalled', status: false, reason, message: '' },
  ];
  const event = reason === 'Unschedulable'
    ? { action: 'error', actor: 'fleet-daemon', commit: ctx.commit, detail: { code: 'UNSCHEDULABLE', message } }
    : { action: 'rescheduled', actor: 'fleet-daemon', commit: ctx.commit, detail: { message } };
  return {
    patch: {
      lastHealth: { ok: false, error: reason === 'Unschedulable' ? 'not placed' : 'starting elsewhere', at: new Date(ctx.deps.now()).toISOString() },
      lastError: reason === 'Unschedulable' ? message : null,
      conditions: conditions.reduce((cs, c) => withCondition(cs, c), rec.conditions),
    },
    events: known ? [] : [event],
  };
}

/** The backoff key of a project's replacements: their pacing is not the crash pacing of the running instance. */
export const replaceKey = (id: string) => `replace:${id}`;

async function startWithBackoff(ctx: Ctx, rec: ProjectRecord, m: Manifest, specHash: string): Promise<Instance> {
  const { deps } = ctx;
  try {
    const spec = await buildSpec(ctx, rec, m, specHash);
    deps.backoff.started(rec.id, deps.now(), specHash);
    return await deps.driver.start(spec, { ready: async (up) => (await deps.probe(up)).ok });
  } catch (err) {
    deps.backoff.failedStart(rec.id, deps.now(), specHash);
    throw err;
  }
}

/**
 * Replace the running `old` instance with one for `specHash`. A Step instead when the old one keeps serving: the
 * replacement did not get ready (Degraded recorded; the same spec is tried again with backoff, a new one at once).
 */
export async function replaceInstance(ctx: Ctx, rec: ProjectRecord, m: Manifest, old: Instance, specHash: string): Promise<Instance | Step> {
  const { deps } = ctx;
  const key = replaceKey(rec.id);
  const spec = await buildSpec(ctx, rec, m, specHash);
  deps.lastExit.delete(rec.id);
  try {
    const inst = await deps.driver.start(spec, { ready: async (up) => (await deps.probe(up)).ok });
    deps.backoff.forget(key);
    deps.backoff.started(rec.id, deps.now(), specHash);
    ctx.log.info({ upstream: inst.upstream, specHash }, 'instance replaced');
    return inst;
  } catch (err) {
    deps.backoff.failedStart(key, deps.now(), specHash);
    // Whether the old one still serves is what the driver reports, not what the error says.
    const now = (await deps.driver.list()).find((i) => i.id === rec.id);
    if (!now?.running || now.ref !== old.ref) throw err;
    const message = describe(err);
    ctx.log.warn({ err: { message } }, 'replacement not ready: the running instance keeps serving');
    return keepServing(ctx, rec, old, message, [
      { action: 'error', actor: 'fleet-daemon', commit: ctx.commit, detail: { code: 'REPLACEMENT_NOT_READY', specHash, message } },
    ]);
  }
}

/** The old instance serves on: its health, with Degraded saying why the commit is not applied. */
export async function keepServing(ctx: Ctx, rec: ProjectRecord, old: Instance, failure: string | null, events: NewEvent[]): Promise<Step> {
  const { deps } = ctx;
  const health = deps.health.get(rec.id, old.upstream) ?? await deps.health.probe(rec.id, old.upstream);
  const message = failure ?? rec.conditions.find((c) => c.type === 'Degraded' && c.status)?.message ?? 'the replacement did not become ready';
  const conditions: Omit<Condition, 'at'>[] = [
    { type: 'Degraded', status: true, reason: 'ReplacementNotReady', message },
    { type: 'Healthy', status: health.ok, reason: health.ok ? 'Ready' : 'NotReady', message: health.ok ? '/ready answered 200' : `/ready: ${health.status ?? health.error}` },
    { type: 'Ready', status: false, reason: 'ReplacementNotReady', message: `running ${old.commit.slice(0, 7)}: the replacement for ${ctx.commit.slice(0, 7)} did not become ready; it is retried with backoff, a new commit tries at once` },
    { type: 'Reconciling', status: true, reason: 'Ok', message: '' },
  ];
  return {
    patch: {
      upstream: old.upstream, lastHealth: health, lastError: message,
      ...(health.ok ? { status: 'running' as const } : {}),
      conditions: conditions.reduce((cs, c) => withCondition(cs, c), rec.conditions),
    },
    events,
  };
}

/** Conditions of a project whose instance does not run on purpose: nothing healthy left over, Ready says why. */
export function downConditions(conds: Condition[], why: 'stopped' | 'removed' | 'deleted', message: string): Condition[] {
  const reason = why === 'stopped' ? 'Stopped' : why === 'removed' ? 'FolderRemoved' : 'Deleted';
  const next: Omit<Condition, 'at'>[] = [
    { type: 'Ready', status: false, reason, message },
    { type: 'Healthy', status: false, reason: 'NotRunning', message: `instance ${why === 'removed' ? 'stopped' : why}` },
    ...conds.filter((c) => (c.type === 'Stalled' || c.type === 'Degraded') && c.status).map((c) => ({ type: c.type, status: false, reason, message: '' })),
  ];
  return next.reduce((cs, c) => withCondition(cs, c), conds);
}

/** Stop the instance (the driver call; stopping one that does not run is fine) and forget its pacing. */
export async function stopInstance(ctx: Ctx, id: string, why: string): Promise<void> {
  const { deps } = ctx;
  await deps.driver.stop(id);
  ctx.log.info({ why }, 'instance stopped');
  deps.backoff.forget(id);
  deps.backoff.forget(replaceKey(id));
}

/** Status of a project whose instance does not run on purpose: stopped, nothing healthy left over. */
export function downStatus(ctx: Ctx, rec: ProjectRecord, why: 'stopped' | 'removed', stopped: boolean): Step {
  const healthLeft = rec.conditions.some((c) => c.type === 'Healthy' && c.status);
  const applied = why !== 'removed' ? ctx.commit : rec.appliedCommit;
  if (rec.status === 'stopped' && !stopped && rec.appliedCommit === applied && !healthLeft && rec.upstream === null) return { patch: {}, events: [] };
  const message = why === 'stopped'
    ? `state: stopped; instance stopped, database ${rec.databaseName} kept`
    : `project folder removed; instance stopped, database ${rec.databaseName} kept (a revert brings it back)`;
  return {
    patch: {
      status: 'stopped', upstream: null, lastHealth: null,
      ...(why !== 'removed' ? { appliedCommit: ctx.commit } : {}),
      conditions: downConditions(rec.conditions, why, message),
    },
    events: [],
  };
}

/** The driver is out of reach: instances are left as they are, and the status says so. */
export function driverUnreachable(ctx: Ctx, rec: ProjectRecord): Step {
  const c = { type: 'Reconciling' as const, status: false, reason: 'DriverUnreachable', message: `the ${ctx.deps.layout.name} driver is unreachable; instances are left as they are` };
  return { patch: { conditions: withCondition(rec.conditions, c) }, events: [] };
}
