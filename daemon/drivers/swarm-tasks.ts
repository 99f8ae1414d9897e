// Pure readings of Swarm's service and task objects: which task is the project's instance now, where it answers,
// and why a new one failed. No I/O: swarm.ts fetches, these functions decide.
import type { Instance } from '../core/types.ts';
import { LABEL_COMMIT, LABEL_PROJECT, LABEL_SPEC_HASH } from './container-spec.ts';

/** The parts of a service (GET /services) the driver reads. */
export interface Service {
  ID: string;
  Version: { Index: number };
  Spec: ServiceSpecSeen;
  PreviousSpec?: ServiceSpecSeen;
  UpdateStatus?: { State?: string; StartedAt?: string; Message?: string };
}

interface ServiceSpecSeen {
  Name?: string;
  Labels?: Record<string, string>;
  Mode?: { Replicated?: { Replicas?: number } };
  TaskTemplate?: { ContainerSpec?: { Configs?: { ConfigID: string }[] } };
  [key: string]: unknown;
}

/** The parts of a task (GET /tasks) the driver reads. */
export interface Task {
  ID: string;
  ServiceID: string;
  NodeID?: string;
  CreatedAt: string;
  DesiredState: string;
  Status: {
    State: string;
    Err?: string;
    ContainerStatus?: { ContainerID?: string; ExitCode?: number };
    PortStatus?: { Ports?: { PublishedPort?: number; PublishMode?: string }[] };
  };
  Spec?: { ContainerSpec?: { Labels?: Record<string, string> } };
}

const byCreated = (a: Task, b: Task) => Date.parse(a.CreatedAt) - Date.parse(b.CreatedAt);

/**
 * A task whose container runs: Swarm's `running`, or `starting` while its healthcheck has not passed yet (the
 * daemon's own /ready probe may already have found it ready).
 */
export function isUp(t: Task): boolean {
  return t.DesiredState === 'running' && (t.Status.State === 'running' || t.Status.State === 'starting');
}

/**
 * The task that serves the project. `promoted`: the task the driver handed to the daemon during an update, once
 * the daemon's probe found it ready; the gateway routes to it before Swarm stops the old one, so it serves while
 * it runs. Otherwise a running one: while an update (or its rollback) is under way the older running task still
 * serves; otherwise the newest one does.
 */
export function currentTask(svc: Service, tasks: Task[], promoted?: string): Task | undefined {
  const chosen = promoted ? tasks.find((t) => t.ID === promoted && t.ServiceID === svc.ID && isUp(t)) : undefined;
  if (chosen) return chosen;
  const running = tasks.filter((t) => t.ServiceID === svc.ID && t.Status.State === 'running' && t.DesiredState === 'running').sort(byCreated);
  const moving = svc.UpdateStatus?.State === 'updating' || svc.UpdateStatus?.State === 'rollback_started';
  return moving ? running[0] : running.at(-1);
}

/** The newest task of `specHash` whose container runs (healthy for Swarm or not yet): a start's candidate. */
export function newestUp(tasks: Task[], specHash: string): Task | undefined {
  return tasks.filter((t) => isUp(t) && t.Spec?.ContainerSpec?.Labels?.[LABEL_SPEC_HASH] === specHash).sort(byCreated).at(-1);
}

/** The project's instance: its current task on its node's address and published port, or the service stopped. */
export function toInstance(svc: Service, task: Task | undefined, tasks: Task[], nodes: Map<string, string>): Instance {
  const labels = { ...svc.Spec.Labels, ...task?.Spec?.ContainerSpec?.Labels };
  const base = { id: labels[LABEL_PROJECT], specHash: labels[LABEL_SPEC_HASH], commit: labels[LABEL_COMMIT] };
  const port = task?.Status.PortStatus?.Ports?.find((p) => p.PublishMode === 'host')?.PublishedPort;
  const addr = task?.NodeID ? nodes.get(task.NodeID) : undefined;
  if (task && port && addr) return { ...base, running: true, upstream: `${addr}:${port}`, exitCode: null, ref: task.ID };
  // Not running: the exit code of the newest task when it ended on its own (not shut down by the swarm).
  const last = tasks.filter((t) => t.ServiceID === svc.ID).sort(byCreated).at(-1);
  const ended = last && (last.Status.State === 'failed' || last.Status.State === 'complete');
  return { ...base, running: false, upstream: '', exitCode: ended ? exitCodeOf(last) : null, ref: svc.ID };
}

/**
 * Why tasks of `specHash` do not run: `blocked` when the scheduler finds no node for them (Swarm retries that
 * forever, so it is reported at once), `error` from the newest task that ended with one.
 */
export function taskFailure(tasks: Task[], specHash: string): { blocked?: string; error?: string } {
  const mine = tasks.filter((t) => t.Spec?.ContainerSpec?.Labels?.[LABEL_SPEC_HASH] === specHash).sort(byCreated).reverse();
  const blocked = mine.find((t) => t.Status.State === 'pending' && /no suitable node/i.test(t.Status.Err ?? ''))?.Status.Err;
  // A task the rollback shut down keeps the error that ended it (e.g. "dockerexec: unhealthy container").
  const failed = mine.find((t) => t.Status.State !== 'pending' && t.Status.Err);
  return { blocked, error: failed?.Status.Err };
}

/** States of a task Swarm is bringing up: from creation until its container runs and its healthcheck passes. */
const BRINGING_UP = new Set(['new', 'allocated', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting']);

/**
 * The newest task of `specHash` Swarm is bringing up, when none runs: after a node is lost (or drained) Swarm
 * starts a replacement elsewhere, which is neither a crash nor a placement no node can meet (taskFailure's
 * `blocked`): the daemon waits for it instead of counting a restart. Before the replacement exists (Swarm waits out
 * the restart delay first) the lost task itself says so: shut down by Swarm on a node that is `down` (`downNodes`),
 * its last reported state never an end.
 */
export function reschedulingTask(tasks: Task[], specHash: string, downNodes: ReadonlySet<string> = new Set()): Task | undefined {
  return tasks
    .filter((t) => t.Spec?.ContainerSpec?.Labels?.[LABEL_SPEC_HASH] === specHash && (
      (t.DesiredState === 'running' && BRINGING_UP.has(t.Status.State) && !/no suitable node/i.test(t.Status.Err ?? ''))
      || (t.DesiredState !== 'running' && !!t.NodeID && downNodes.has(t.NodeID) && !hasEnded(t))))
    .sort(byCreated).at(-1);
}

/** Swarm's states of a task that ended on its own: its container exited (or could not start). Not a shutdown. */
const ENDED = new Set(['failed', 'complete', 'rejected']);

export function hasEnded(t: Task): boolean {
  return ENDED.has(t.Status.State);
}

/** Tasks Swarm wants running whose container has not ended: the ones whose end is an exit of their project. */
export function liveTasks(tasks: Task[]): Set<string> {
  return new Set(tasks.filter((t) => t.DesiredState === 'running' && !hasEnded(t)).map((t) => t.ID));
}

/** The exit code of an ended task: its container's, else the one in Swarm's error ("task: non-zero exit (137)"). */
export function exitCodeOf(t: Task): number | null {
  if (t.Status.State === 'rejected') return null;
  if (typeof t.Status.ContainerStatus?.ExitCode === 'number') return t.Status.ContainerStatus.ExitCode;
  const m = /non-zero exit \((\d+)\)/.exec(t.Status.Err ?? '');
  return m ? Number(m[1]) : t.Status.State === 'complete' ? 0 : null;
}

/** An exit to report: the project's task ended on its own, and Swarm starts another one (restart policy `any`). */
export interface TaskExit {
  serviceId: string;
  project: string;
  taskId: string;
  exitCode: number | null;
}

/**
 * The tasks in `live` (Swarm wanted them running when last seen) that have ended since, as exits of their projects.
 * A task Swarm had already replaced (its node was lost; it reports back later) is not in `live`. Only a task of the
 * spec its service runs now, while no update or rollback is under way and the service should run: a task of a
 * deploy that failed is that deploy's story (`start` reports it), a scale to 0 is a stop.
 */
export function newExits(svcs: Service[], tasks: Task[], live: ReadonlySet<string>): TaskExit[] {
  const out: TaskExit[] = [];
  for (const s of svcs) {
    const settled = !/^(updating|rollback_started|paused|rollback_paused)$/.test(s.UpdateStatus?.State ?? '');
    if (!settled || (s.Spec.Mode?.Replicated?.Replicas ?? 0) === 0) continue;
    const hash = s.Spec.Labels?.[LABEL_SPEC_HASH];
    const ended = tasks.filter((t) => t.ServiceID === s.ID && hasEnded(t) && live.has(t.ID) && t.Spec?.ContainerSpec?.Labels?.[LABEL_SPEC_HASH] === hash);
    for (const t of ended.sort(byCreated)) {
      out.push({ serviceId: s.ID, project: s.Spec.Labels?.[LABEL_PROJECT] ?? '', taskId: t.ID, exitCode: exitCodeOf(t) });
    }
  }
  return out;
}
