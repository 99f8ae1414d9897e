// The plan: desired projects (git) vs actual projects (registry) → actions. Pure and deterministic.
import type { Action, ActualProject, DesiredProject, Manifest } from './types.ts';
import { canonicalJson } from './canonical.ts';

/** Manifest fields whose change is an `update`, in the order they are listed. */
export const UPDATE_FIELDS = [
  'displayName', 'hostname', 'aliases', 'runtime', 'env', 'secrets', 'resources', 'edge', 'backup', 'tenancy',
] as const satisfies readonly (keyof Manifest)[];

const KIND_ORDER: Record<Action['kind'], number> = {
  create: 0, start: 1, update: 2, schema_update: 3, stop: 4, delete: 5, noop: 6,
};

/** Sort order of a plan: by project id, then create, start, update, schema_update, stop, delete, noop. */
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

function describeChanges(before: Manifest, after: Manifest, changes: string[]): string {
  const parts = changes.map((f) =>
    f === 'hostname' ? `hostname ${before.hostname} → ${after.hostname}` : f,
  );
  return `changed: ${parts.join(', ')}`;
}

/** Actions for a project that exists in git and (maybe) in the registry. */
function planPresent(d: DesiredProject, a: ActualProject | undefined): Action[] {
  const id = d.id;
  const state = d.manifest.state;
  const gone = !a || a.status === 'deleted';
  if (state === 'deleted') {
    if (gone) return [{ kind: 'noop', id, reason: 'state: deleted; nothing runs' }];
    const drop = d.manifest.deletion?.dropDatabase === true;
    return [{
      kind: 'delete', id, dropDatabase: drop,
      reason: drop ? 'state: deleted; instance removed and database DROPPED' : 'state: deleted; instance removed, database kept',
    }];
  }
  if (gone) {
    const how = state === 'stopped' ? ' (state: stopped: database only, not started)' : '';
    return [{ kind: 'create', id, reason: `new project at ${d.manifest.hostname}${how}` }];
  }
  const actions: Action[] = [];
  const wantsRunning = state === 'running';
  // A failed instance gets `start` again: the plan says what should run; the daemon paces retries (backoff).
  const isUp = a.present && a.desiredState === 'running' && (a.status === 'running' || a.status === 'provisioning');
  if (wantsRunning && !isUp) {
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
  if (!wantsRunning && a.present && (a.desiredState === 'running' || a.status === 'running')) {
    actions.push({ kind: 'stop', id, removed: false, reason: 'state: stopped; database kept' });
  }
  if (!actions.length) actions.push({ kind: 'noop', id, reason: 'up to date' });
  return actions;
}

function planAbsent(a: ActualProject): Action {
  if (a.present && a.status !== 'deleted') {
    return { kind: 'stop', id: a.id, removed: true, reason: `folder projects/${a.id} removed from git; instance stopped, database kept` };
  }
  return { kind: 'noop', id: a.id, reason: a.status === 'deleted' ? 'deleted' : 'folder removed earlier; database kept' };
}

/**
 * Desired vs actual → actions, sorted by id then kind. `invalid` lists project ids whose manifest is invalid at
 * the commit: they get a noop, so whatever was last applied keeps running.
 */
export function plan(desired: DesiredProject[], actual: ActualProject[], invalid: string[] = []): Action[] {
  const want = new Map(desired.map((d) => [d.id, d]));
  const have = new Map(actual.map((a) => [a.id, a]));
  const bad = new Set(invalid);
  // Stryker disable next-line MethodExpression: equivalent, the actions are sorted by id again on return.
  const ids = [...new Set([...want.keys(), ...have.keys(), ...bad])].sort();
  const actions: Action[] = [];
  for (const id of ids) {
    if (bad.has(id)) {
      actions.push({ kind: 'noop', id, reason: 'manifest invalid; keeping what was last applied' });
      continue;
    }
    const d = want.get(id);
    const a = have.get(id);
    if (d) actions.push(...planPresent(d, a));
    else if (a) actions.push(planAbsent(a));
  }
  // Stryker disable next-line MethodExpression: equivalent, ids are walked in order and planPresent emits kinds in KIND_ORDER.
  return actions.sort(compareActions);
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
    case 'stop':
      return action.removed
        ? { kind: 'create', id, reason: `inverse of: ${action.reason}` }
        : { kind: 'start', id, reason: `inverse of: ${action.reason}` };
    case 'update': return { ...action, changes: [...action.changes], reason: `inverse of: ${action.reason}` };
    case 'schema_update': return { ...action, revert: true, reason: `inverse of: ${action.reason}` };
    case 'delete': return { kind: 'create', id, reason: `inverse of: ${action.reason}` };
    case 'noop': return { ...action };
  }
}
