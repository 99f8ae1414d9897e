// The plan: desired projects (git) vs actual projects (registry) → actions. Pure and deterministic.
import type { Action, ActualProject, DesiredProject, Manifest, ObservedInstance, PlanInput, DriverLayout, Placement, RestoreRequest } from './types.ts';
import { canonicalJson } from './canonical.ts';
import { instancePort, instanceSpecHash } from './instance-spec.ts';
import { databaseServerOf } from './servers.ts';

/** Manifest fields whose change is an `update`, in the order they are listed. */
export const UPDATE_FIELDS = [
  'displayName', 'hostname', 'aliases', 'runtime', 'env', 'secrets', 'resources', 'edge', 'backup', 'tenancy', 'placement',
] as const satisfies readonly (keyof Manifest)[];

const KIND_ORDER: Record<Action['kind'], number> = {
  create: 0, provision: 1, start: 2, update: 3, schema_update: 4, drop_old_database: 5, move_database: 6, restore: 7, restart: 8, stop: 9,
  delete: 10, wait: 11, suspended: 12, noop: 13,
};

/**
 * Sort order of a plan, which is also the order the daemon executes a project's actions in: by project id, then
 * create, provision, start, update, schema_update, restart, stop, delete, wait, noop.
 */
export function compareActions(a: Action, b: Action): number {
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return KIND_ORDER[a.kind] - KIND_ORDER[b.kind];
}

function short(commit: string): string {
  return /^[0-9a-f]{40}$/.test(commit) ? commit.slice(0, 7) : commit;
}

export function changedFields(before: Manifest, after: Manifest): string[] {
  return UPDATE_FIELDS.filter((f) => canonicalJson(before[f] ?? null) !== canonicalJson(after[f] ?? null));
}

/** A Swarm placement in one line, as the plan prints it: `node.labels.tier==hot, spread=node.labels.zone`, or `(any node)`. */
export function describePlacement(p: Placement | undefined): string {
  const parts = [...(p?.constraints ?? []).map((c) => c.replace(/ ?([=!]=) ?/, '$1')), ...(p?.preferences ?? []).map((x) => `spread=${x.spread}`)];
  return parts.length ? parts.join(', ') : '(any node)';
}

function describeChanges(before: Manifest, after: Manifest, changes: string[]): string {
  const parts = changes.map((f) =>
    f === 'hostname' ? `hostname ${before.hostname} → ${after.hostname}`
      // Where the task may run (swarm): a plain line, the data stays where it is.
      : f === 'placement' ? `placement: ${describePlacement(before.placement)} -> ${describePlacement(after.placement)}` : f,
  );
  return `changed: ${parts.join(', ')}`;
}

/** Manifest fields that are part of the instance spec: their change restarts the instance. */
const SPEC_FIELDS = new Set(['runtime', 'env', 'secrets', 'resources', 'tenancy', 'placement']);

/** What an instance should run for a project: the manifest and schema, or null when nothing should run. */
export interface Target { manifest: Manifest; schemaDigest: string }

/** The spec hash the instance of `a` should have for `t` (null when unknown: no row, no driver). */
export function targetSpecHash(a: ActualProject | undefined, t: Target, driver: DriverLayout | undefined): string | null {
  if (!a || !driver) return null;
  const port = instancePort(driver, a.port, t.manifest);
  return instanceSpecHash({ manifest: t.manifest, schemaDigest: t.schemaDigest, port, secretsVersion: a.secretsVersion ?? 0, driver: driver.name, restartGeneration: a.restartGeneration ?? 0 });
}

/** How many earlier restart generations are tried when telling an operator restart from another spec change. */
const OPERATOR_LOOKBACK = 16;

/**
 * Whether the only difference between the running instance and the target is the restart generation: the instance
 * runs the same spec at an earlier generation (several requests before one pass are still one restart).
 */
function operatorRestartOnly(a: ActualProject, t: Target, running: string, driver: DriverLayout | undefined): boolean {
  const gen = a.restartGeneration ?? 0;
  for (let g = gen - 1; g >= Math.max(0, gen - OPERATOR_LOOKBACK); g--) {
    if (targetSpecHash({ ...a, restartGeneration: g }, t, driver) === running) return true;
  }
  return false;
}

/** The instance the plan assumes: observed, or (CLI preview) what the registry says runs. */
function instanceOf(a: ActualProject, input: PlanInput): ObservedInstance | undefined {
  if (input.instances) return input.instances.get(a.id);
  const up = a.status === 'running' || a.status === 'provisioning';
  return up ? { running: true, specHash: a.specHash ?? '' } : undefined;
}

/**
 * The level-based instance check, for a project whose instance should run `t`: start it when it does not run
 * (a crash is a `restart`, paced by the backoff: `wait`), replace it when its spec changed.
 * `starting`: a start is already planned (new, or back from stopped), which covers an instance that does not run.
 */
function planInstance(a: ActualProject, t: Target, input: PlanInput, starting: boolean, why: string): Action[] {
  if (input.instances === null) return [];
  const id = a.id;
  const inst = instanceOf(a, input);
  const pace = input.pacing?.get(id) ?? {};
  if (!inst?.running) {
    if (starting) return [];
    // The engine places it once a node fits (swarm): starting it again would only fail the same way.
    if (inst?.pending) return [{ kind: 'wait', id, on: inst.pendingReason === 'Rescheduling' ? 'reschedule' : 'placement', waitMs: 0, reason: inst.pending }];
    if (pace.waitMs !== undefined) {
      return [{ kind: 'wait', id, on: 'crash', waitMs: pace.waitMs, reason: `backoff: next start in ${Math.ceil(pace.waitMs / 1000)} s` }];
    }
    if ((pace.failures ?? 0) > 0) return [{ kind: 'restart', id, cause: 'crash', reason: `instance exited (${pace.failures} failure(s) in a row)` }];
    const was = input.instances ? 'instance not running' : `state: running (was ${a.status})`;
    return [{ kind: 'start', id, reason: inst?.exitCode === 0 ? 'instance exited with 0; started again' : was }];
  }
  const want = targetSpecHash(a, t, input.driver);
  if (!want || !inst.specHash || inst.specHash === want) return [];
  if (pace.replaceWaitMs !== undefined) {
    return [{ kind: 'wait', id, on: 'replace', waitMs: pace.replaceWaitMs, reason: `replacement not ready; retried in ${Math.ceil(pace.replaceWaitMs / 1000)} s` }];
  }
  if (operatorRestartOnly(a, t, inst.specHash, input.driver)) {
    return [{ kind: 'restart', id, cause: 'operator', reason: `operator restart requested by ${a.restartRequestedBy ?? 'an operator'}` }];
  }
  return [{ kind: 'restart', id, cause: 'spec', reason: `spec changed: ${why}` }];
}

function specChanges(a: ActualProject, t: Target): string {
  const fields = changedFields(a.manifest, t.manifest).filter((f) => SPEC_FIELDS.has(f));
  if (a.schemaDigest !== t.schemaDigest) fields.push('schema');
  return fields.length ? fields.join(', ') : 'secrets or port';
}

/** A project role's Postgres connection limit when the manifest names none. */
export const DEFAULT_CONNECTIONS = 20;

export function connectionsOf(m: Manifest): number {
  return m.resources?.connections ?? DEFAULT_CONNECTIONS;
}

/** Actions for a project that exists in git and (maybe) in the registry. */
function planPresent(d: DesiredProject, a: ActualProject | undefined, input: PlanInput): Action[] {
  const id = d.id;
  const state = d.manifest.state;
  const gone = !a || a.status === 'deleted';
  if (state === 'deleted') {
    if (gone) return [{ kind: 'noop', id, reason: 'state: deleted; nothing runs' }];
    const wait = input.pacing?.get(id)?.deleteWaitMs;
    if (wait !== undefined) {
      return [{ kind: 'wait', id, on: 'delete', waitMs: wait, reason: `delete failed; retried in ${Math.ceil(wait / 1000)} s` }];
    }
    const drop = d.manifest.deletion?.dropDatabase === true;
    return [{
      kind: 'delete', id, dropDatabase: drop,
      reason: drop ? 'state: deleted; instance removed and database DROPPED' : 'state: deleted; instance removed, database kept',
    }];
  }
  if (gone) {
    const how = state === 'stopped' ? ' (state: stopped: database only, not started)' : '';
    // A new project's first start is part of its create: one action, one event.
    return [{ kind: 'create', id, reason: `new project at ${d.manifest.hostname}${how}` }];
  }
  const actions: Action[] = [];
  const wantsRunning = state === 'running';
  // Role, database and secrets: done once and recorded (a daemon restart does not redo them); again when the
  // connection limit changes. A new project's provisioning is part of its create.
  const connections = connectionsOf(d.manifest);
  if (a.provisioned !== undefined && a.provisioned !== connections) {
    const reason = a.provisioned === null ? 'role, database and secrets' : `connection limit ${a.provisioned} → ${connections}`;
    actions.push({ kind: 'provision', id, connections, reason });
  }
  // Back from stopped or from a removed folder: a change of desired state, recorded once as `start`.
  const wasDown = !a.present || a.desiredState === 'stopped';
  if (wantsRunning && wasDown) {
    const why = !a.present ? 'folder is back in git' : `state: running (was ${a.status})`;
    actions.push({ kind: 'start', id, reason: why });
  }
  const changes = changedFields(a.manifest, d.manifest);
  if (changes.length) {
    actions.push({ kind: 'update', id, changes, reason: describeChanges(a.manifest, d.manifest, changes) });
  }
  if (a.schemaDigest !== d.schema.digest) {
    const revert = a.schemaHistory.includes(d.schema.digest);
    const file = d.schema.path.split('/').pop() ?? 'schema.ts';
    const reason = revert
      ? `${file} reverted to earlier content (${short(d.commit)})`
      : `${file} changed (${short(d.commit)})`;
    actions.push({ kind: 'schema_update', id, revert, reason });
  }
  if (wantsRunning) {
    const t = { manifest: d.manifest, schemaDigest: d.schema.digest };
    actions.push(...planInstance(a, t, input, wasDown, specChanges(a, t)));
  } else if (a.present && (a.desiredState === 'running' || a.status === 'running')) {
    actions.push({ kind: 'stop', id, removed: false, reason: 'state: stopped; database kept' });
  } else if (input.instances?.get(id)?.running) {
    actions.push({ kind: 'stop', id, removed: false, reason: 'state: stopped; an instance still runs' });
  }
  // A database move stops and starts the instance itself (like a restore): the pass's own start, restart and
  // backoff waits give way to it.
  const db = planDatabase(d, a, input);
  const moving = db.some((x) => x.kind === 'move_database' && !x.refused);
  const out = moving ? actions.filter((x) => !(x.kind === 'start' || x.kind === 'restart' || (x.kind === 'wait' && x.on !== 'delete'))) : actions;
  out.push(...db);
  if (!out.length) out.push({ kind: 'noop', id, reason: 'up to date' });
  return out;
}

/**
 * The database's server: the manifest's (default main) against the registry's. A move is refused while the copy an
 * earlier move left is kept (one kept copy at a time, so nothing is ever overwritten); `dropOld: true` drops that
 * copy first, after a backup. A failed move waits for its backoff; with the driver out of reach it waits too.
 */
function planDatabase(d: DesiredProject, a: ActualProject, input: PlanInput): Action[] {
  const id = d.id;
  if (a.status === 'deleted' || a.provisioned === null || d.manifest.state === 'deleted') return [];
  const want = databaseServerOf(d.manifest);
  const dropOld = d.manifest.database?.dropOld === true;
  const old = a.oldDatabaseServer;
  const out: Action[] = [];
  const tail = '(database.dropOld: true)';
  // A failed drop waits for its backoff (each try takes a backup); a move waits with it: one kept copy at a time.
  const dropWait = dropOld && old ? input.pacing?.get(id)?.dropWaitMs : undefined;
  if (dropWait !== undefined) {
    return [{ kind: 'wait', id, on: 'drop', waitMs: dropWait, reason: `drop of the old copy of atomo_${id} on ${old} failed; retried in ${Math.ceil(dropWait / 1000)} s` }];
  }
  // The copy is kept until a commit after the move's says dropOld (issue: "until dropOld: true in a later commit"):
  // a commit that moves and says dropOld at once still leaves one commit's time to look at the moved data.
  const keptByMove = dropOld && old && a.oldDatabaseCommit && a.oldDatabaseCommit === d.commit;
  if (keptByMove) out.push({ kind: 'noop', id, reason: `the old copy of atomo_${id} on ${old} is kept: database.dropOld drops it from a commit after the move's (${d.commit.slice(0, 7)})` });
  else if (dropOld && old) out.push({ kind: 'drop_old_database', id, server: old, reason: `the old copy of atomo_${id} on ${old} is DROPPED after a backup ${tail}` });
  // A preview between two commits: only the registry knows whether a move left a copy; shown when dropOld is new.
  if (dropOld && old === undefined && a.manifest.database?.dropOld !== true) {
    out.push({ kind: 'drop_old_database', id, server: null, reason: `the old copy of atomo_${id} a move left behind (if any) is DROPPED after a backup ${tail}` });
  }
  const from = a.databaseServer;
  if (from === undefined || from === want) return out;
  if (old && !dropOld) {
    const refused = `${old} still holds the old copy from the last move; set database.dropOld: true to drop it (after a backup), then move`;
    return [...out, { kind: 'move_database', id, from, to: want, refused, reason: `database move ${from} → ${want} refused: ${refused}` }];
  }
  if (input.instances === null) return out;
  const wait = input.pacing?.get(id)?.moveWaitMs;
  if (wait !== undefined) {
    return [...out, { kind: 'wait', id, on: 'move', waitMs: wait, reason: `database move ${from} → ${want} failed; retried in ${Math.ceil(wait / 1000)} s` }];
  }
  const after = dropOld ? `database.dropOld: true drops the copy on ${from} at the next pass` : `the copy on ${from} is kept`;
  const reason = `database moves ${from} → ${want}: instance stopped, fresh backup restored on ${want}, DATABASE_URL switched, instance started again; ${after}`;
  return [...out, { kind: 'move_database', id, from, to: want, reason }];
}

function planAbsent(a: ActualProject, input: PlanInput): Action {
  if (a.status !== 'deleted' && (a.present || input.instances?.get(a.id)?.running)) {
    return { kind: 'stop', id: a.id, removed: true, reason: `folder projects/${a.id} removed from git; instance stopped, database kept` };
  }
  return { kind: 'noop', id: a.id, reason: a.status === 'deleted' ? 'deleted' : 'folder removed earlier; database kept' };
}

/** An invalid manifest: nothing changes, but the last applied instance is still kept running (level-based). */
function planInvalid(id: string, a: ActualProject | undefined, input: PlanInput): Action[] {
  const keep: Action = { kind: 'noop', id, reason: 'manifest invalid; keeping what was last applied' };
  if (!a || a.status === 'deleted' || !a.present || a.desiredState !== 'running' || !a.schemaDigest) return [keep];
  const more = planInstance(a, { manifest: a.manifest, schemaDigest: a.schemaDigest }, input, false, 'last applied');
  // Never a spec restart for an invalid project: what runs is what was last applied.
  return [...more.filter((x) => !(x.kind === 'restart' && x.cause === 'spec') && !(x.kind === 'wait' && x.on === 'replace')), keep];
}

/** A suspended project: one line saying so, instead of whatever the pass would do. */
function planSuspended(a: ActualProject & { suspended: { by: string; at: string } }): Action {
  const { by, at } = a.suspended;
  return { kind: 'suspended', id: a.id, by, at, reason: `suspended by ${by} at ${at.replace(/\.\d+Z$/, 'Z')}: left as it is` };
}

/**
 * An operator's restore request: one `restore` action, which stops the instance, replaces the database and starts
 * the instance when it should run, so the pass's own start, restart and backoff wait give way to it. A request that
 * cannot be carried out is refused (closed as failed, nothing touched); with the driver out of reach it waits.
 */
function planRestore(id: string, own: Action[], a: ActualProject | undefined, d: DesiredProject | undefined, r: RestoreRequest, input: PlanInput): Action[] {
  const base = { kind: 'restore' as const, id, request: r.request, backup: r.backup, file: r.file, by: r.by };
  const refuse = (why: string): Action[] => [...own, { ...base, refused: why, reason: `restore from ${r.backup} refused: ${why}` }];
  if (!a) return refuse(`project ${id} is not registered`);
  if (a.suspended) return refuse(`project ${id} is suspended; resume it first`);
  if (a.status === 'deleted') return refuse(`project ${id} is deleted`);
  if (d?.manifest.state === 'deleted') return refuse(`project ${id} is being deleted (state: deleted)`);
  if (a.provisioned === null) return refuse(`the database of ${id} is not provisioned yet`);
  if (input.instances === null) return own;
  const kept = own.filter((x) => !(x.kind === 'start' || x.kind === 'restart' || x.kind === 'noop' || (x.kind === 'wait' && x.on !== 'delete')));
  return [...kept, { ...base, reason: `restore from ${r.backup} (requested by ${r.by})` }];
}

/**
 * Git vs registry vs instances → actions, sorted by id then kind: every lifecycle step the daemon takes, and
 * nothing it does not. `invalid` projects keep whatever was last applied.
 */
export function planFleet(input: PlanInput): Action[] {
  const want = new Map(input.desired.map((d) => [d.id, d]));
  const have = new Map(input.actual.map((a) => [a.id, a]));
  const bad = new Set(input.invalid ?? []);
  // Stryker disable next-line MethodExpression: equivalent, the actions are sorted by id again on return.
  const ids = [...new Set([...want.keys(), ...have.keys(), ...bad])].sort();
  const actions: Action[] = [];
  for (const id of ids) {
    const d = want.get(id);
    const a = have.get(id);
    // Suspended by an operator: left exactly as it is, whatever git, the registry or the instance say.
    const own: Action[] = [];
    if (a?.suspended) own.push(planSuspended({ ...a, suspended: a.suspended }));
    else if (bad.has(id)) own.push(...planInvalid(id, a, input));
    else if (d) own.push(...planPresent(d, a, input));
    else if (a) own.push(planAbsent(a, input));
    const restore = input.restores?.get(id);
    actions.push(...(restore ? planRestore(id, own, a, bad.has(id) ? undefined : d, restore, input) : own));
  }
  // Stryker disable next-line MethodExpression: equivalent, ids are walked in order and planPresent emits kinds in KIND_ORDER.
  return actions.sort(compareActions);
}

/** `planFleet` for git vs registry alone, instances assumed to match the registry. */
export function plan(desired: DesiredProject[], actual: ActualProject[], invalid: string[] = []): Action[] {
  return planFleet({ desired, actual, invalid });
}

/**
 * The registry view a fleet at some commit would leave behind, as if it had been applied exactly: used by
 * `fleet plan` to plan commit against commit. `history` optionally gives earlier schema digests per id.
 */
export function actualFromDesired(desired: DesiredProject[], history: Record<string, string[]> = {}): ActualProject[] {
  return desired.map((d) => {
    const state = d.manifest.state;
    return {
      id: d.id,
      status: state === 'deleted' ? 'deleted' : state === 'stopped' ? 'stopped' : 'running',
      desiredState: state === 'running' ? 'running' : 'stopped',
      manifest: d.manifest,
      schemaDigest: d.schema.digest,
      schemaVersion: d.commit,
      schemaHistory: history[d.id] ?? [],
      present: true,
      provisioned: connectionsOf(d.manifest),
      databaseServer: databaseServerOf(d.manifest),
    };
  });
}

/**
 * The action a plan in the opposite direction (B → A instead of A → B) gives for the same project:
 * create ⇄ stop(removed), start ⇄ stop(not removed), update ⇄ update (same fields), schema_update ⇄
 * schema_update. Undoing a schema update always goes back to content deployed before, so the inverse has
 * `revert: true` (this holds when the actual side knows its history, as `fleet plan` gives it).
 * A delete's inverse is a create (the data may be gone); a noop stays a noop.
 * Reasons are not inverted: they describe the direction they were made for.
 */
export function inverse(action: Action): Action {
  const { id } = action;
  switch (action.kind) {
    case 'create': return { kind: 'stop', id, removed: true, reason: `inverse of: ${action.reason}` };
    case 'start': return { kind: 'stop', id, removed: false, reason: `inverse of: ${action.reason}` };
    case 'provision': return { ...action, reason: `inverse of: ${action.reason}` };
    case 'stop':
      return action.removed
        ? { kind: 'create', id, reason: `inverse of: ${action.reason}` }
        : { kind: 'start', id, reason: `inverse of: ${action.reason}` };
    case 'update': return { ...action, changes: [...action.changes], reason: `inverse of: ${action.reason}` };
    // A restart undoes itself: the spec goes back, or a crashed instance is started again.
    case 'restart': return { ...action, reason: `inverse of: ${action.reason}` };
    case 'schema_update': return { ...action, revert: true, reason: `inverse of: ${action.reason}` };
    case 'delete': return { kind: 'create', id, reason: `inverse of: ${action.reason}` };
    case 'move_database': return { ...action, from: action.to, to: action.from, reason: `inverse of: ${action.reason}` };
    // A dropped copy does not come back with the opposite commit.
    case 'drop_old_database': return { ...action };
    // A restore is not undone by the opposite commit: it is an operator's act, not git's.
    case 'wait': case 'suspended': case 'restore': case 'noop': return { ...action };
  }
}
