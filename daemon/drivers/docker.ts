// The Docker driver: one container per project, found by label on every call (level-based, no memory of
// its own). Thin executor over the Docker Engine API; what a container looks like is container-spec.ts.
// A changed spec starts a new container next to the old one; the old one serves on ("retiring") until `retire`
// sees that nothing routes to it any more. On the host's network (`network: host`, the one network an engine
// without iptables or a bridge offers) the old container goes first: old and new would share the project's port
// and schema file. A port held by anything else gives the instance a fresh one.
import { freshPort, portFree } from '../ports.ts';
import Docker from 'dockerode';
import type { Logger } from 'pino';
import { DEFAULT_DOCKER_NETWORK } from '../config/defaults.ts';
import { FleetError, describe } from '../core/errors.ts';
import type { Driver, Instance, InstanceSpec } from '../core/types.ts';
import {
  DEFAULT_SCHEMA_MOUNT, LABEL_COMMIT, LABEL_MANAGED, LABEL_PORT, LABEL_PROJECT, LABEL_SPEC_HASH, renderContainer,
} from './container-spec.ts';
import { containerLogLines } from './docker-logs.ts';
import { engineApi, ifStatus, isUnreachable } from './engine.ts';

export interface DockerDriverOptions {
  /** Default `/var/run/docker.sock`. */
  socketPath?: string;
  /** Network instances join; created when missing. Default DEFAULT_DOCKER_NETWORK, compose.yaml's project network. */
  network?: string;
  /** Tests only: publish each instance's port on this loopback address and use it as the upstream. */
  publishHost?: string;
  log: Logger;
  /** Bound on an image pull. Default 5 minutes. */
  pullTimeoutMs?: number;
  /** Bound on the new container answering `ready` before the old one is kept instead. Default 60 s. */
  readyTimeoutMs?: number;
  /** How long a replaced container serves on after the switch, for requests already on their way. Default 2 s. */
  drainMs?: number;
  schemaMount?: string;
}

const MANAGED = `${LABEL_MANAGED}=true`;
const LABEL_CREATED_MS = 'atomo.fleet.created-ms';
// Networks the engine owns: never inspected or created by the driver.
const BUILTIN_NETWORKS = new Set(['bridge', 'host', 'none', 'default']);

interface Seen {
  containerId: string;
  name: string;
  labels: Record<string, string>;
  running: boolean;
  exitCode: number | null;
  publishedPort?: string;
  created: number;
}

/** The network instances join: the option, else the default. */
export function dockerNetwork(opts: Pick<DockerDriverOptions, 'network'>): string {
  return opts.network || DEFAULT_DOCKER_NETWORK;
}

export function createDockerDriver(opts: DockerDriverOptions): Driver {
  const socketPath = opts.socketPath ?? '/var/run/docker.sock';
  const docker = new Docker({ socketPath });
  const log = opts.log.child({ driver: 'docker' });
  const network = dockerNetwork(opts);
  const schemaMount = opts.schemaMount ?? DEFAULT_SCHEMA_MOUNT;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  const drainMs = opts.drainMs ?? 2_000;
  // Containers the driver stops on purpose: their `die` events are not crashes to report.
  const stopping = new Set<string>();
  // Host ports handed out by starts still in flight (not listening yet): two starts never get the same one.
  const claimed = new Set<number>();
  const exits = createExitWatcher();

  /** Every engine call goes through here: an unreachable API and engine failures become FleetErrors. */
  const api = engineApi('docker', socketPath);

  async function seenContainers(labels: string[]): Promise<Seen[]> {
    const infos = await api('list containers', () => docker.listContainers({ all: true, filters: { label: labels } }));
    return Promise.all(infos.map(async (c): Promise<Seen> => {
      const running = c.State === 'running';
      const port = Number(c.Labels[LABEL_PORT]);
      // Only a stopped container needs an inspect, for its exit code.
      const exitCode = running ? null : await inspect(c.Id).then((i) => i?.State.ExitCode ?? null);
      const published = c.Ports?.find((p) => p.PrivatePort === port && p.PublicPort)?.PublicPort;
      return {
        containerId: c.Id, name: (c.Names[0] ?? '').replace(/^\//, ''), labels: c.Labels, running, exitCode,
        publishedPort: published ? String(published) : undefined, created: Number(c.Labels[LABEL_CREATED_MS]) / 1000 || c.Created,
      };
    }));
  }

  function inspect(containerId: string) {
    return api('inspect container', () => docker.getContainer(containerId).inspect().catch(ifStatus(404, null)));
  }

  function toInstance(c: Seen): Instance {
    const port = c.labels[LABEL_PORT];
    let upstream = `${c.name}:${port}`;
    if (network === 'host') upstream = `127.0.0.1:${port}`;
    else if (opts.publishHost) upstream = c.publishedPort ? `${opts.publishHost}:${c.publishedPort}` : '';
    return {
      id: c.labels[LABEL_PROJECT], running: c.running, upstream, specHash: c.labels[LABEL_SPEC_HASH],
      commit: c.labels[LABEL_COMMIT], exitCode: c.exitCode, ref: c.containerId,
    };
  }

  async function removeContainers(containers: Seen[], project: string): Promise<void> {
    for (const c of containers) {
      stopping.add(c.containerId);
      setTimeout(() => stopping.delete(c.containerId), 120_000).unref();
      const container = docker.getContainer(c.containerId);
      // 304: already stopped; 404: already gone. Both are the state we want.
      await api('stop container', () => container.stop({ t: 10 }).catch(ifStatus([304, 404], null)), project);
      await api('remove container', () => container.remove({ force: true }).catch(ifStatus([404, 409], null)), project);
      log.info({ project, container: c.name }, 'container removed');
    }
  }

  async function ensureImage(image: string, project: string): Promise<void> {
    const present = () => api('inspect image', () => docker.getImage(image).inspect().then(() => true, ifStatus(404, false)), project);
    if (await present()) return;
    log.info({ project, image }, 'image not present; pulling');
    let reason: string | null;
    try {
      reason = await pull(image);
    } catch (err) {
      if (isUnreachable(err)) await api('pull image', () => Promise.reject(err), project);
      reason = describe(err);
    }
    if (reason === null && (await present())) return;
    throw new FleetError('IMAGE_MISSING', `image ${image} is not available: ${reason ?? 'the pull ended without it'}; build or push it, or fix runtime.image in projects/${project}/project.yaml`, { project });
  }

  /** Resolves to the failure reason, or null. Podman reports a failed pull only inside the progress stream. */
  async function pull(image: string): Promise<string | null> {
    const stream = (await docker.pull(image)) as NodeJS.ReadableStream & { destroy?: () => void };
    const timeoutMs = opts.pullTimeoutMs ?? 300_000;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        stream.destroy?.();
        resolve(`the pull did not finish within ${Math.round(timeoutMs / 1000)} s`);
      }, timeoutMs);
      docker.modem.followProgress(stream, (err: Error | null, output: PullEvent[]) => {
        clearTimeout(timer);
        const failed = (output ?? []).find((e) => e.error || e.errorDetail);
        resolve(err ? describe(err) : failed ? failed.errorDetail?.message ?? failed.error ?? 'unknown error' : null);
      });
    });
  }

  async function ensureNetwork(project: string): Promise<void> {
    if (BUILTIN_NETWORKS.has(network)) return;
    const net = docker.getNetwork(network);
    if (await api('inspect network', () => net.inspect().then(() => true, ifStatus(404, false)), project)) return;
    log.info({ network }, 'creating network');
    // 409: another start created it meanwhile.
    await api('create network', () => docker.createNetwork({ Name: network, Driver: 'bridge', Labels: { [LABEL_MANAGED]: 'true' } }).catch(ifStatus(409, null)), project);
  }

  /** Polls `ready` until true; false when the time is up or the container stopped running. */
  async function waitReady(containerId: string, upstream: string, ready: (u: string) => Promise<boolean>): Promise<string | null> {
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (await ready(upstream).catch(() => false)) return null;
      const state = (await inspect(containerId))?.State;
      if (!state?.Running && !state?.Restarting) return `it exited with code ${state?.ExitCode ?? 'unknown'}`;
      await new Promise((r) => setTimeout(r, 250));
    }
    return `it did not answer within ${Math.round(readyTimeoutMs / 1000)} s`;
  }

  /**
   * On the host's network: the port the spec asks for when no instance of ours holds it and nothing listens on
   * it, else a fresh one (a replacement next to the old instance, or two projects asking for the same port).
   */
  async function hostPort(wanted: number): Promise<number> {
    const held = new Set((await seenContainers([MANAGED])).filter((c) => c.running).map((c) => Number(c.labels[LABEL_PORT])));
    const taken = (p: number) => held.has(p) || claimed.has(p);
    let port = wanted;
    while (taken(port) || !(await portFree(port))) port = await freshPort();
    claimed.add(port); // until its container runs and holds it (start releases it)
    return port;
  }

  async function start(spec: InstanceSpec, startOpts: { ready?: (upstream: string) => Promise<boolean> } = {}): Promise<Instance> {
    const plog = log.child({ project: spec.id, specHash: spec.specHash.slice(0, 8) });
    renderContainer(spec, { network, publishHost: opts.publishHost, schemaMount }); // a spec it refuses fails first
    // 1. What runs for this project now, by label.
    const existing = await seenContainers([MANAGED, `${LABEL_PROJECT}=${spec.id}`]);
    const same = existing.find((c) => c.labels[LABEL_SPEC_HASH] === spec.specHash);
    let others = existing.filter((c) => c !== same);
    // 2. The same spec already runs: nothing to do (older containers are `retire`'s, once nothing routes to them).
    if (same?.running) return toInstance(same);
    // 3. A stopped container with this spec holds the name: a fresh one replaces it.
    if (same) await removeContainers([same], spec.id);
    // 4. The image and the network must exist before create.
    await ensureImage(spec.image!, spec.id);
    await ensureNetwork(spec.id);
    // 5. On the host's network old and new would bind the same port, and the old one would answer the new one's
    //    ready probe: retire the old one first (a short gap instead of a false "ready"). A port held by anything
    //    else (another project's container, another process) gives the new instance a fresh one.
    if (network === 'host') {
      await removeContainers(others, spec.id);
      others = [];
    }
    const port = network === 'host' ? await hostPort(spec.port) : spec.port;
    const body = renderContainer({ ...spec, port }, { network, publishHost: opts.publishHost, schemaMount });
    // Create and start the new container next to the old one.
    // Docker's own `Created` has whole seconds: old and new made within one second would tie, so the driver
    // labels each container with its creation time in milliseconds.
    body.Labels = { ...body.Labels, [LABEL_CREATED_MS]: String(Date.now()) };
    let container: Docker.Container;
    try {
      container = await api('create container', () => docker.createContainer(body), spec.id);
    } catch (err) {
      claimed.delete(port);
      throw err;
    }
    const seenNew = (): Seen => ({ containerId: container.id, name: body.name, labels: body.Labels, running: true, exitCode: null, created: 0 });
    try {
      await api('start container', () => container.start(), spec.id);
    } catch (err) {
      await removeContainers([seenNew()], spec.id).catch(() => {});
      throw err;
    } finally {
      claimed.delete(port); // a running container holds it now (hostPort sees it), or none will
    }
    const info = await inspect(container.id);
    const published = info?.NetworkSettings.Ports?.[`${port}/tcp`]?.[0]?.HostPort;
    const instance = toInstance({ ...seenNew(), publishedPort: published || undefined });
    plog.info({ container: body.name, upstream: instance.upstream }, 'container started');
    // 6. Only a ready new instance replaces the old one; otherwise the old one keeps serving.
    if (startOpts.ready) {
      const failure = await waitReady(container.id, instance.upstream, startOpts.ready);
      if (failure) {
        await removeContainers([seenNew()], spec.id);
        const kept = others.some((c) => c.running) ? '; the previous instance keeps running' : '';
        throw new FleetError('DRIVER', `new instance ${body.name} of project ${spec.id} did not become ready: ${failure}${kept}`, { project: spec.id });
      }
    }
    // 7. The old containers serve on until the gateway routes away from them (`retire`); stopped ones go now.
    await removeContainers(others.filter((c) => !c.running), spec.id);
    return instance;
  }

  /** One instance per project: a running one first, then the newest (a replacement may be in flight). */
  function currentOf(seen: Seen[]): Map<string, Seen> {
    const best = new Map<string, Seen>();
    for (const c of [...seen].sort((a, b) => Number(a.running) - Number(b.running) || a.created - b.created)) {
      best.set(c.labels[LABEL_PROJECT], c);
    }
    return best;
  }

  async function retire(routed: ReadonlySet<string>): Promise<void> {
    const seen = await seenContainers([MANAGED]);
    const current = currentOf(seen);
    for (const c of seen) {
      const project = c.labels[LABEL_PROJECT];
      const cur = current.get(project)!;
      if (c === cur) continue;
      // Still routed (the gateway has not switched), or requests sent just before the switch may still arrive.
      const draining = Date.now() - cur.created * 1000 < drainMs;
      if (c.running && (routed.has(toInstance(c).upstream) || draining)) continue;
      await removeContainers([c], project);
    }
  }

  function createExitWatcher() {
    const listeners: ((id: string, code: number | null) => void)[] = [];
    let stream: NodeJS.ReadableStream & { destroy?: () => void } | null = null;
    let timer: NodeJS.Timeout | null = null;
    let closed = false;
    let since = Math.floor(Date.now() / 1000);

    function onEvent(e: EngineEvent): void {
      if (e.time) since = e.time;
      if ((e.Action ?? e.status) !== 'die') return;
      const containerId = e.id ?? e.Actor?.ID ?? '';
      const attrs = e.Actor?.Attributes ?? {};
      const project = attrs[LABEL_PROJECT];
      if (!project || stopping.has(containerId)) return;
      const code = Number(attrs.exitCode);
      log.info({ project, exitCode: code }, 'container exited');
      for (const l of listeners) l(project, Number.isFinite(code) ? code : null);
    }

    function reconnectLater(): void {
      if (closed || timer) return;
      stream = null;
      timer = setTimeout(() => {
        timer = null;
        void connect();
      }, 1000);
    }

    async function connect(): Promise<void> {
      if (closed) return;
      try {
        // Podman ignores an `event` filter: filter die events here.
        const s = (await docker.getEvents({ since, filters: { type: ['container'], label: [MANAGED] } })) as typeof stream;
        if (closed) return s?.destroy?.();
        stream = s;
      } catch (err) {
        log.warn({ err: describe(err) }, 'docker event stream unavailable; retrying');
        return reconnectLater();
      }
      let buf = '';
      stream!.on('data', (chunk: Buffer) => {
        buf += chunk.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) {
            try {
              onEvent(JSON.parse(line) as EngineEvent);
            } catch {
              log.warn('unreadable docker event skipped');
            }
          }
        }
      });
      stream!.on('error', reconnectLater);
      stream!.on('end', reconnectLater);
      stream!.on('close', reconnectLater);
    }

    return {
      add(listener: (id: string, code: number | null) => void) {
        listeners.push(listener);
        if (listeners.length === 1) void connect();
      },
      close() {
        closed = true;
        if (timer) clearTimeout(timer);
        stream?.destroy?.();
      },
    };
  }

  return {
    name: 'docker',
    async list() {
      return [...currentOf(await seenContainers([MANAGED])).values()].map(toInstance);
    },
    start,
    retire,
    async stop(id) {
      await removeContainers(await seenContainers([MANAGED, `${LABEL_PROJECT}=${id}`]), id);
    },
    onExit(listener) {
      exits.add(listener);
    },
    async *logs(id, logOpts) {
      // The current container (running, else the newest): a stopped project's last container still has its output.
      const current = currentOf(await seenContainers([MANAGED, `${LABEL_PROJECT}=${id}`])).get(id);
      if (!current) return;
      yield* containerLogLines(docker.getContainer(current.containerId), logOpts);
    },
    async close() {
      exits.close();
    },
  };
}

interface PullEvent {
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

interface EngineEvent {
  id?: string;
  status?: string;
  Action?: string;
  time?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}


