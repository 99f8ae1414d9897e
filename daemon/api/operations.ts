// What an operator may ask of one project through the API: restart it, suspend or resume its reconciliation.
// Each is a registry write with its event (who asked, when); the daemon's next pass does the rest, level-based:
// a restart request bumps the restart generation, which is part of the instance's spec hash, so the plan shows a
// `restart` until the instance runs that generation; a suspension makes the plan leave the project as it is.
import type { Suspension } from '../core/types.ts';
import type { ProjectRecord, Registry } from '../registry/registry.ts';
import { ApiError } from './respond.ts';

/** Why a project cannot be restarted now (a sentence saying what to do instead), or null. */
export function restartRefusal(r: ProjectRecord): string | null {
  const file = `projects/${r.id}/project.yaml`;
  if (r.status === 'deleted') return `project ${r.id} is deleted: there is no instance to restart`;
  if (!r.present) return `project ${r.id} is stopped because its folder was removed from git: there is no instance to restart (bring the folder back to start it)`;
  if (r.desiredState === 'stopped') return `project ${r.id} is stopped (state: stopped in ${file}): there is no instance to restart; set state: running to start it`;
  if (r.suspended) return `project ${r.id} is suspended by ${r.suspended.by} since ${r.suspended.at}: nothing is restarted while it is suspended; resume it first (fleet resume ${r.id})`;
  return null;
}

/** Why a project cannot be suspended (a deleted one has nothing left to keep), or null. */
export function suspendRefusal(r: ProjectRecord): string | null {
  return r.status === 'deleted' ? `project ${r.id} is deleted: there is nothing to suspend` : null;
}

async function project(registry: Registry, id: string): Promise<ProjectRecord> {
  const r = await registry.get(id);
  if (!r) throw new ApiError(404, `no project "${id}" in the registry: see GET /api/v1/projects for the ids`);
  return r;
}

export interface RestartAnswer {
  project: string;
  restartGeneration: number;
  message: string;
}

export async function requestRestart(registry: Registry, id: string, actor: string): Promise<RestartAnswer> {
  const refusal = restartRefusal(await project(registry, id));
  if (refusal) throw new ApiError(409, refusal);
  const r = await registry.requestRestart(id, actor);
  if (!r) throw new ApiError(404, `no project "${id}" in the registry`);
  return {
    project: id, restartGeneration: r.restartGeneration ?? 0,
    message: `restart of ${id} requested by ${actor}: the next pass starts a new instance and retires the old one once it is ready`,
  };
}

export interface SuspendAnswer {
  project: string;
  suspended: Suspension | null;
  changed: boolean;
  message: string;
}

export async function suspend(registry: Registry, id: string, actor: string, now = new Date()): Promise<SuspendAnswer> {
  const r = await project(registry, id);
  const refusal = suspendRefusal(r);
  if (refusal) throw new ApiError(409, refusal);
  // Asking twice is not an error, and the first suspension (who, when) is the one that stands.
  if (r.suspended) return { project: id, suspended: r.suspended, changed: false, message: `${id} is already suspended by ${r.suspended.by} since ${r.suspended.at}` };
  const suspended: Suspension = { by: actor, at: now.toISOString() };
  await registry.updateWithEvents(id, { suspended }, [{ action: 'suspended', actor, detail: { at: suspended.at } }]);
  return { project: id, suspended, changed: true, message: `${id} suspended by ${actor}: every pass leaves it exactly as it is until it is resumed (fleet resume ${id})` };
}

export async function resume(registry: Registry, id: string, actor: string): Promise<SuspendAnswer> {
  const r = await project(registry, id);
  if (!r.suspended) return { project: id, suspended: null, changed: false, message: `${id} is not suspended` };
  await registry.updateWithEvents(id, { suspended: null }, [{ action: 'resumed', actor, detail: { suspended: r.suspended } }]);
  return { project: id, suspended: null, changed: true, message: `${id} resumed by ${actor}: the next pass converges it on the tracked branch` };
}
