// The swarm driver: one Swarm service per project, created and updated through the manager's Docker API and found
// by label on every call (level-based). Swarm does the rest the docker driver does by hand: start-first updates
// gated on the task's healthcheck, rollback of a failed one, restarts, and placement on whichever node fits.
// What a service looks like is swarm-spec.ts; this file only sends it and watches the tasks converge.
import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import type { Logger } from 'pino';
import { FleetError, describe } from '../core/errors.ts';
import type { Driver, Instance, InstanceSpec } from '../core/types.ts';
import { LABEL_MANAGED, LABEL_PROJECT, LABEL_SPEC_HASH } from './container-spec.ts';
import { engineApi, ifStatus } from './engine.ts';
import {
  DEFAULT_HEALTH, DEFAULT_HEALTHCHECK, DEFAULT_SWARM_NETWORK, LABEL_SCHEMA_DIGEST, placementHint, renderService,
  schemaConfigName, schemaDigest, serviceName, type HealthTimings, type ServiceSpecBody,
} from './swarm-spec.ts';
import { serviceLogLines } from './swarm-logs.ts';
import { DEFAULT_BIND_NETWORK, ensureSwarmNetworks } from './swarm-network.ts';
import { currentTask, hasEnded, liveTasks, newExits, newestUp, reschedulingTask, taskFailure, toInstance, type Service, type Task } from './swarm-tasks.ts';

export interface SwarmDriverOptions {
  /** A swarm manager's Docker API socket. Default `/var/run/docker.sock`. */
  socketPath?: string;
  /** Swarm-scoped network the tasks join; created (bridge, swarm scope) when missing. Default `fleet-swarm`. */
  network?: string;
  /** The config-only network on every node setting the address task ports bind to. Default `fleet-swarm-bind`. */
  bindNetwork?: string;
  /** The healthcheck argv run inside the image (default: bash probing GET /ready). */
  healthcheck?: string[];
  health?: Partial<HealthTimings>;
  /** How long Swarm watches a new task before an update counts as done. Default 5 s. */
  monitorMs?: number;
  /** Bound on a new task becoming ready (and on a rollback finishing). Default 2 minutes. */
  readyTimeoutMs?: number;
  log: Logger;
}

const MANAGED = `${LABEL_MANAGED}=true`;
const POLL_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Why no task runs when the scheduler finds no node, and what to do about it. */
function unplaceable(id: string, constraints: string[], blocked: string): string {
  return `no swarm node satisfies the placement of project ${id} (${constraints.join(', ') || 'no constraints'}): ${blocked}; ${placementHint(constraints)} or change placement in projects/${id}/project.yaml`;
}

const constraintsOf = (s: Service) => ((s.Spec.TaskTemplate as { Placement?: { Constraints?: string[] } } | undefined)?.Placement?.Constraints ?? []);

export function createSwarmDriver(opts: SwarmDriverOptions): Driver {
  const socketPath = opts.socketPath ?? '/var/run/docker.sock';
  const docker = new Docker({ socketPath });
  const log = opts.log.child({ driver: 'swarm' });
  const network = opts.network || DEFAULT_SWARM_NETWORK;
  const health = { ...DEFAULT_HEALTH, ...opts.health };
  const monitorMs = opts.monitorMs ?? 5000;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 120_000;
  let prepared = false;
  /**
   * Per service, the task `start` handed to the daemon. During a start-first update it is returned once the
   * daemon's probe finds it ready, before Swarm's healthcheck passes, so the gateway switches to it before Swarm
   * stops the old task; `list` reports it from then on (a hint only: after a daemon restart Swarm's states decide).
   */
  const promoted = new Map<string, string>();
  /**
   * Exits, read from the task list `list` makes anyway (no engine call of their own): the tasks Swarm wanted
   * running when last seen, the exit each service's instance last had until the daemon starts it again, and who
   * hears of them. The first `list` only learns what runs (a daemon start is no crash; the docker driver's events
   * start now too).
   */
  let live = new Set<string>();
  const exited = new Map<string, number | null>();
  const exitListeners: ((id: string, code: number | null) => void)[] = [];

  /** Every engine call goes through here: an unreachable API and engine failures become FleetErrors. */
  const api = engineApi('swarm', socketPath);

  /** The engine must be a swarm manager, and the tasks' network must exist. */
  async function prepare(project: string): Promise<void> {
    if (prepared) return;
    const swarm = await api('inspect swarm', () => docker.swarmInspect().catch(ifStatus([406, 503], null)), project);
    if (!swarm) {
      throw new FleetError('DRIVER', `the Docker engine at ${socketPath} is not a swarm manager: run \`docker swarm init\` on it, or point swarm.socketPath in fleet.yaml at a manager`, { project });
    }
    // Task ports bind to their node's own address only (swarm-network.ts), never to every interface.
    await ensureSwarmNetworks(docker, api, { network, bindNetwork: opts.bindNetwork || DEFAULT_BIND_NETWORK, project, log });
    prepared = true;
  }

  const services = (project?: string) => api('list services', () => docker.listServices({
    filters: { label: project ? [MANAGED, `${LABEL_PROJECT}=${project}`] : [MANAGED] },
  }) as unknown as Promise<Service[]>, project);
  /** Tasks of one or more services, in one call (the filter's values are or-ed). */
  const tasksOf = (...serviceIds: string[]) => api('list tasks', () => docker.listTasks({ filters: { service: serviceIds } }).catch(ifStatus(404, [])) as unknown as Promise<Task[]>);
  const inspect = (serviceId: string) => api('inspect service', () => docker.getService(serviceId).inspect().catch(ifStatus(404, null)) as unknown as Promise<Service | null>);

  /** Nodes the manager reports `down` at the last listing: their tasks are being rescheduled, not crashing. */
  let downNodes = new Set<string>();

  async function nodeAddresses(): Promise<Map<string, string>> {
    const nodes = await api('list nodes', () => docker.listNodes());
    downNodes = new Set(nodes.filter((n) => n.Status?.State === 'down').map((n) => n.ID));
    // A manager may report 0.0.0.0 as its own address: its manager address names the host then.
    return new Map(nodes.map((n) => [n.ID, n.Status?.Addr && n.Status.Addr !== '0.0.0.0' ? n.Status.Addr : (n.ManagerStatus?.Addr ?? '').replace(/:\d+$/, '')]));
  }

  async function update(svc: Service, body: ServiceSpecBody | Service['Spec'], query: Record<string, string> = {}, project?: string): Promise<void> {
    await api('update service', () => docker.getService(svc.ID).update({ _query: { version: svc.Version.Index, ...query }, _body: body }), project);
  }

  /** The schema as a config object named by its digest (created once; configs cannot change). */
  async function ensureConfig(spec: InstanceSpec): Promise<{ id: string; name: string }> {
    const content = readFileSync(spec.schemaPath);
    const digest = schemaDigest(content);
    const name = schemaConfigName(spec.id, digest);
    const find = async () => (await api('list configs', () => docker.listConfigs({ filters: { name: [name] } }), spec.id)).find((c) => c.Spec?.Name === name);
    const found = await find();
    if (found) return { id: found.ID, name };
    const labels = { [LABEL_MANAGED]: 'true', [LABEL_PROJECT]: spec.id, [LABEL_SCHEMA_DIGEST]: digest };
    // 409: a concurrent start created it meanwhile.
    const made = await api('create config', () => docker.createConfig({ Name: name, Labels: labels, Data: content.toString('base64') }).catch(ifStatus(409, null)), spec.id);
    const id = (made as { id?: string } | null)?.id ?? (await find())?.ID;
    if (!id) throw new FleetError('DRIVER', `swarm: config ${name} for project ${spec.id} could not be created`, { project: spec.id });
    return { id, name };
  }

  /** Config objects no service's spec (or previous spec, which a rollback returns to) names any more. */
  async function pruneConfigs(): Promise<void> {
    const used = new Set<string>();
    for (const s of await services()) {
      for (const spec of [s.Spec, s.PreviousSpec]) for (const c of spec?.TaskTemplate?.ContainerSpec?.Configs ?? []) used.add(c.ConfigID);
    }
    const configs = await api('list configs', () => docker.listConfigs({ filters: { label: [MANAGED] } }));
    for (const c of configs.filter((x) => !used.has(x.ID))) {
      // 400/409: a task still holds it; the next prune takes it.
      await api('remove config', () => docker.getConfig(c.ID).remove().catch(ifStatus([400, 404, 409], null)));
    }
  }

  /**
   * Waits until a running task of `spec` answers `ready` and (for an update) Swarm calls the update done. Throws,
   * after Swarm rolled back where it did, when the task fails, cannot be placed, or is not ready in time.
   */
  async function converge(svcId: string, spec: InstanceSpec, ready: ((u: string) => Promise<boolean>) | undefined, before?: string): Promise<Instance> {
    const deadline = Date.now() + readyTimeoutMs;
    const constraints = spec.placement?.constraints ?? [];
    let failure: string | null = null;
    let rollbackReason: string | undefined;
    let endedBefore: Set<string> | undefined;
    while (Date.now() < deadline) {
      const svc = await inspect(svcId);
      if (!svc) throw new FleetError('DRIVER', `swarm: service ${serviceName(spec.id)} disappeared while starting; it is created again next pass`, { project: spec.id });
      const tasks = await tasksOf(svc.ID);
      // A start's own failures are its error, not exits for `onExit`.
      for (const t of tasks) if (hasEnded(t)) live.delete(t.ID);
      const earlier = (endedBefore ??= new Set(tasks.filter(hasEnded).map((t) => t.ID)));
      const status = svc.UpdateStatus;
      const ours = before !== undefined && status?.StartedAt !== undefined && status.StartedAt !== before;
      const state = ours ? status!.State : undefined;
      const { blocked, error } = taskFailure(tasks, spec.specHash);
      failure = error ?? failure;
      if (blocked) {
        if (before !== undefined && !state?.startsWith('rollback')) await update(svc, svc.Spec, { rollback: 'previous' }, spec.id).catch(() => {});
        throw new FleetError('DRIVER', unplaceable(spec.id, constraints, blocked), { project: spec.id });
      }
      if (state === 'rollback_started' || state === 'rollback_completed' || state === 'paused' || state === 'rollback_paused') {
        // Swarm's own reason is kept from the start of the rollback: its end says only "rollback completed".
        if (state === 'rollback_started') rollbackReason ??= status?.Message;
        else throw rolledBack(spec, failure ?? rollbackReason ?? status?.Message ?? 'the update failed');
      } else if (before === undefined && failure && /no such image|pull access denied|manifest unknown/i.test(failure)) {
        throw new FleetError('IMAGE_MISSING', `image ${spec.image} is not available on the node: ${failure}; load it on every node or push it, or fix runtime.image in projects/${spec.id}/project.yaml`, { project: spec.id });
      } else if (before === undefined && !newestUp(tasks, spec.specHash) && tasks.some((t) => hasEnded(t) && !earlier.has(t.ID) && t.Spec?.ContainerSpec?.Labels?.[LABEL_SPEC_HASH] === spec.specHash)) {
        // Swarm starts it again on its own; the daemon's backoff paces the next wait instead of one long one.
        throw new FleetError('DRIVER', `task of project ${spec.id} ended before it became ready: ${failure ?? 'no error reported'}; Swarm starts it again (see \`fleet logs ${spec.id}\`), the daemon retries with backoff`, { project: spec.id });
      } else {
        // The new task serves once the daemon's own probe finds it ready, not only once Swarm's healthcheck passed:
        // the gateway switches to it before Swarm (start-first) stops the old task. Without a probe, Swarm decides.
        const task = newestUp(tasks, spec.specHash);
        const swarmDone = task?.Status.State === 'running' && (before === undefined || state === 'completed');
        if (task && (ready || swarmDone)) {
          const inst = toInstance(svc, task, tasks, await nodeAddresses());
          if (inst.running && (!ready || (await ready(inst.upstream).catch(() => false)))) {
            promoted.set(svc.ID, task.ID);
            live.add(task.ID);
            return inst;
          }
        }
      }
      await sleep(POLL_MS);
    }
    const why = `${failure ?? 'it was not ready'} within ${Math.round(readyTimeoutMs / 1000)} s`;
    if (before === undefined) throw new FleetError('DRIVER', `task of project ${spec.id} did not become ready: ${why}`, { project: spec.id });
    const svc = await inspect(svcId);
    if (svc && !svc.UpdateStatus?.State?.startsWith('rollback')) await update(svc, svc.Spec, { rollback: 'previous' }, spec.id).catch(() => {});
    throw rolledBack(spec, why);
  }

  function rolledBack(spec: InstanceSpec, why: string): FleetError {
    // A task that runs but never passes its healthcheck is shut down without an error of its own.
    const hint = /unhealthy|early termination/i.test(why)
      ? ' (a task that fails its healthcheck ends this way: check its GET /ready; the healthcheck runs `bash` in the image, set swarm.healthcheck in fleet.yaml for an image without it)'
      : '';
    return new FleetError('DRIVER', `new task of project ${spec.id} did not become ready: ${why}${hint}; Swarm rolled back, the previous task keeps serving`, { project: spec.id });
  }

  async function start(spec: InstanceSpec, startOpts: { ready?: (upstream: string) => Promise<boolean> } = {}): Promise<Instance> {
    await prepare(spec.id);
    // 1. The service of this project, by label.
    const svc = (await services(spec.id))[0];
    const running = svc && (svc.Spec.Mode?.Replicated?.Replicas ?? 0) > 0;
    if (svc) exited.delete(svc.ID); // the daemon starts it again: its last exit is handled
    // 2. The same spec, scaled up: only wait for (or report) its running task.
    if (svc && running && svc.Spec.Labels?.[LABEL_SPEC_HASH] === spec.specHash) return converge(svc.ID, spec, startOpts.ready);
    // 3. The schema as a config object, then the service spec that mounts it.
    const config = await ensureConfig(spec);
    const body = renderService(spec, { network, config, healthcheck: opts.healthcheck ?? DEFAULT_HEALTHCHECK, health, monitorMs, replicas: 1 });
    let inst: Instance;
    if (!svc) {
      // 4a. New: create it and wait for its first task.
      const made = await api('create service', () => docker.createService(body as unknown as Docker.CreateServiceOptions), spec.id);
      log.info({ project: spec.id, service: body.Name }, 'service created');
      inst = await converge((made as { id: string }).id, spec, startOpts.ready);
    } else if (!running && svc.Spec.Labels?.[LABEL_SPEC_HASH] === spec.specHash) {
      // 4b. Stopped with the same spec: scale back to one (no rolling update).
      await update(svc, body, {}, spec.id);
      inst = await converge(svc.ID, spec, startOpts.ready);
    } else {
      // 4c. A changed spec: Swarm's start-first update; the old task serves until the new one is healthy.
      await update(svc, body, {}, spec.id);
      log.info({ project: spec.id, service: body.Name, specHash: spec.specHash.slice(0, 8) }, 'service update started');
      inst = await converge(svc.ID, spec, startOpts.ready, svc.UpdateStatus?.StartedAt ?? '');
    }
    // 5. Configs the update left unused go (the previous one stays: a rollback returns to it).
    await pruneConfigs().catch((err: unknown) => log.warn({ err: describe(err) }, 'pruning swarm configs failed; retried next start'));
    return inst;
  }

  /** Reports the tasks that were live at the last look and have ended since as exits, then remembers what is live. */
  function noteExits(svcs: Service[], tasks: Task[]): void {
    const fresh = newExits(svcs, tasks, live);
    live = liveTasks(tasks);
    for (const e of fresh) {
      exited.set(e.serviceId, e.exitCode);
      log.info({ project: e.project, task: e.taskId, exitCode: e.exitCode }, 'task exited; Swarm starts another');
      for (const l of exitListeners) l(e.project, e.exitCode);
    }
  }

  /** Waits (bounded) until no task of the service runs any more. */
  async function settled(serviceId: string, project: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await tasksOf(serviceId)).some((t) => t.Status.State === 'running' || t.DesiredState === 'running')) await sleep(POLL_MS);
    log.info({ project }, 'service scaled to 0');
  }

  return {
    name: 'swarm',
    // Three engine calls however many projects: the services, all their tasks, the nodes.
    async list() {
      const svcs = await services();
      if (!svcs.length) return [];
      const [tasks, nodes] = await Promise.all([tasksOf(...svcs.map((s) => s.ID)), nodeAddresses()]);
      noteExits(svcs, tasks);
      return svcs.map((s) => {
        const mine = tasks.filter((t) => t.ServiceID === s.ID);
        const task = currentTask(s, mine, promoted.get(s.ID));
        if (task?.ID !== promoted.get(s.ID)) promoted.delete(s.ID);
        const inst = toInstance(s, task, mine, nodes);
        // No node fits its placement (its only node was lost, say): Swarm places it once one does.
        const blocked = !inst.running && (s.Spec.Mode?.Replicated?.Replicas ?? 0) > 0 ? taskFailure(mine, s.Spec.Labels?.[LABEL_SPEC_HASH] ?? '').blocked : undefined;
        if (blocked) {
          exited.delete(s.ID); // waiting for a node is not a crash to pace
          return { ...inst, pending: unplaceable(inst.id, constraintsOf(s), blocked) };
        }
        // Swarm already runs another task; the daemon sees the exit until it starts the instance again, so its
        // backoff counts the crash and its restart (which returns the new task) records it.
        if (exited.has(s.ID)) return { ...inst, running: false, exitCode: exited.get(s.ID) ?? null };
        // Nothing exited, yet nothing runs: Swarm is starting a replacement for a task lost with its node.
        const replacing = !inst.running && (s.Spec.Mode?.Replicated?.Replicas ?? 0) > 0 && reschedulingTask(mine, s.Spec.Labels?.[LABEL_SPEC_HASH] ?? '', downNodes);
        if (replacing) {
          return { ...inst, pending: `Swarm is starting a new task of project ${inst.id} (the last one is gone, with its node or drained); the gateway routes to it once it answers`, pendingReason: 'Rescheduling' as const };
        }
        return inst;
      });
    },
    onExit(listener) {
      exitListeners.push(listener);
    },
    async *logs(id, logOpts) {
      const svc = (await services(id))[0];
      if (!svc) return;
      const tty = (svc.Spec.TaskTemplate?.ContainerSpec as { TTY?: boolean } | undefined)?.TTY === true;
      yield* serviceLogLines(docker.getService(svc.ID), { ...logOpts, tty });
    },
    start,
    // Stop = scale to 0: the service, its spec and its history stay for a later start.
    async stop(id) {
      const svc = (await services(id))[0];
      if (!svc) return;
      promoted.delete(svc.ID);
      exited.delete(svc.ID);
      if ((svc.Spec.Mode?.Replicated?.Replicas ?? 0) > 0) await update(svc, { ...svc.Spec, Mode: { Replicated: { Replicas: 0 } } }, {}, id);
      await settled(svc.ID, id);
    },
    async remove(id) {
      for (const svc of await services(id)) {
        await api('remove service', () => docker.getService(svc.ID).remove().catch(ifStatus(404, null)), id);
        log.info({ project: id, service: svc.Spec.Name }, 'service removed');
        // Its tasks hold the config until their containers are gone.
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline && (await tasksOf(svc.ID)).length) await sleep(POLL_MS);
      }
      await pruneConfigs();
    },
  };
}

