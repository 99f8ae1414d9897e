// A real two-node Docker Swarm for tests (MACHINE-NOTES.md): a manager dockerd on the host, advertising a host-side
// veth address, and a worker dockerd in a network namespace of its own at the other end of the veth pair, joined
// and labelled. Killing the worker kills every process of that "machine" (engine, containerd, shims, proxies and the
// containers), a real node loss; `startWorker()` brings the same node back from its data dir.
// Names and addresses carry a random suffix so test files running side by side never share one; `stop()` removes
// engines, namespace, veth, bridges, cgroups and dirs even after a failed start.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { ping } from './podman.ts';

const execFileP = promisify(execFile);

export interface SwarmEngine {
  socketPath: string;
  dir: string;
  docker: Docker;
  /** The node's address: the manager's host-side veth address, or the worker's address in its namespace. */
  addr: string;
  nodeId: string;
  cli(args: string[]): Promise<string>;
}

export interface SwarmCluster {
  manager: SwarmEngine;
  worker: SwarmEngine;
  /** Kill the worker "machine": SIGKILL to its engine, containerd, shims and containers. */
  killWorker(): Promise<void>;
  /** Start the worker's engine again from its data dir; resolves once the manager sees the node ready. */
  startWorker(): Promise<void>;
  /** Make a loopback-only TCP port (e.g. Postgres) reachable at the manager's address from tasks on every node. */
  expose(port: number): Promise<{ host: string; port: number }>;
  /** Node label on a node, as `docker node update --label-add` does. */
  label(node: SwarmEngine, key: string, value: string): Promise<void>;
  stop(): Promise<void>;
}

export interface SwarmClusterOptions {
  /** Labels on the worker node (e.g. `{ tier: 'hot' }`). */
  workerLabels?: Record<string, string>;
  /** Swarm's dispatcher heartbeat: a node is marked down a few heartbeats after its engine died. Default 5 s. */
  heartbeatSeconds?: number;
}

const sh = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error}`);
};
const quiet = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A /24 in 10.231.0.0/16 no interface of this host uses yet (other test files pick theirs the same way). */
function freeSubnet(): number {
  const used = spawnSync('ip', ['-o', '-4', 'addr'], { encoding: 'utf8' }).stdout;
  for (;;) {
    const n = 1 + Math.floor(Math.random() * 250);
    if (!used.includes(`10.231.${n}.`)) return n;
  }
}

export async function startSwarmCluster(opts: SwarmClusterOptions = {}): Promise<SwarmCluster> {
  if (spawnSync('dockerd', ['--version']).status !== 0) throw new Error('dockerd not found: apt-get install -y docker.io (or run .ci/install)');
  const s = Math.random().toString(36).slice(2, 8);
  const net = freeSubnet();
  const ns = `fsw-${s}`;
  const hostIf = `fswh${s}`;
  const nodeIf = `fsww${s}`;
  const managerAddr = `10.231.${net}.1`;
  const workerAddr = `10.231.${net}.2`;
  // The worker's containers get a cgroup parent of their own: a node loss kills them, stop() removes it.
  const cgroup = `fsw-${s}`;
  const proxies: Server[] = [];
  const engines: Engine[] = [];
  let stopped = false;

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    for (const p of proxies) p.close();
    for (const e of [...engines].reverse()) await e.stop();
    killNamespace(ns, cgroup);
    quiet('ip', ['netns', 'delete', ns]);
    quiet('ip', ['link', 'delete', hostIf]);
    removeCgroup(cgroup);
    for (const e of engines) rmSync(e.dir, { recursive: true, force: true });
  }

  try {
    // 1. The wire: a veth pair, one end in the worker's namespace; the worker's containers leave through it NATed.
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nodeIf, 'netns', ns]);
    sh('ip', ['addr', 'add', `${managerAddr}/24`, 'dev', hostIf]);
    sh('ip', ['link', 'set', hostIf, 'up']);
    const inNs = (args: string[]) => sh('nsenter', [`--net=/var/run/netns/${ns}`, ...args]);
    inNs(['ip', 'addr', 'add', `${workerAddr}/24`, 'dev', nodeIf]);
    inNs(['ip', 'link', 'set', nodeIf, 'up']);
    inNs(['ip', 'link', 'set', 'lo', 'up']);
    inNs(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    inNs(['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', nodeIf, '-j', 'MASQUERADE']);

    // 2. The manager: a swarm listening on the veth address (the worker's way in), without the ingress network.
    const manager = new Engine('m', managerAddr);
    engines.push(manager);
    await manager.start();
    await manager.docker.createNetwork({
      Name: 'docker_gwbridge', Driver: 'bridge',
      Options: { 'com.docker.network.bridge.name': `fswg${s}`, 'com.docker.network.bridge.enable_icc': 'false', 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
    });
    const heartbeat = (opts.heartbeatSeconds ?? 5) * 1e9;
    await manager.docker.swarmInit({ ListenAddr: `${managerAddr}:2377`, AdvertiseAddr: `${managerAddr}:2377`, Spec: { Dispatcher: { HeartbeatPeriod: heartbeat } } });
    const ingress = (await manager.docker.listNetworks({ filters: { name: ['ingress'] } })).find((n) => n.Ingress);
    if (ingress) await manager.docker.getNetwork(ingress.Id).remove();

    // 3. The worker: its engine in the namespace, joined with the manager's worker token.
    const worker = new Engine('w', workerAddr, ns, cgroup);
    engines.push(worker);
    await worker.start();
    const token = ((await manager.docker.swarmInspect()) as { JoinTokens: { Worker: string } }).JoinTokens.Worker;
    await worker.docker.swarmJoin({ ListenAddr: `${workerAddr}:2377`, AdvertiseAddr: workerAddr, RemoteAddrs: [`${managerAddr}:2377`], JoinToken: token });
    manager.nodeId = ((await manager.docker.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID;
    worker.nodeId = ((await worker.docker.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID;
    await nodeReady(manager.docker, worker.nodeId);

    const cluster: SwarmCluster = {
      manager, worker, stop,
      async label(node, key, value) {
        const n = (await manager.docker.getNode(node.nodeId).inspect()) as { Version: { Index: number }; Spec: { Labels?: Record<string, string> } };
        await manager.docker.getNode(node.nodeId).update({ version: n.Version.Index, ...n.Spec, Labels: { ...n.Spec.Labels, [key]: value } });
      },
      async killWorker() {
        killNamespace(ns, cgroup);
        await worker.exited();
      },
      async startWorker() {
        await worker.start();
        await nodeReady(manager.docker, worker.nodeId);
      },
      async expose(port) {
        // A plain TCP relay: Postgres sees connections from loopback, as its pg_hba allows.
        const server = createServer((client) => {
          const upstream = connect(port, '127.0.0.1');
          client.pipe(upstream).pipe(client);
          const end = () => { client.destroy(); upstream.destroy(); };
          client.on('error', end);
          upstream.on('error', end);
        });
        await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, managerAddr, resolve));
        proxies.push(server);
        return { host: managerAddr, port };
      },
    };
    for (const [k, v] of Object.entries(opts.workerLabels ?? {})) await cluster.label(worker, k, v);
    return cluster;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** One engine of the cluster: its own socket and dirs, started on the host or in the worker's namespace. */
class Engine implements SwarmEngine {
  readonly dir = mkdtempSync('/tmp/fsw-');
  readonly socketPath = join(this.dir, 'd.sock');
  readonly docker = new Docker({ socketPath: this.socketPath });
  nodeId = '';
  private child: ChildProcess | null = null;
  private output = '';

  constructor(private readonly role: 'm' | 'w', readonly addr: string, private readonly ns?: string, private readonly cgroup?: string) {}

  async cli(args: string[]): Promise<string> {
    return (await execFileP('docker', ['-H', `unix://${this.socketPath}`, ...args], { maxBuffer: 16 * 1024 * 1024 })).stdout;
  }

  async start(): Promise<void> {
    const args = [
      '-H', `unix://${this.socketPath}`, '--data-root', join(this.dir, 'data'), '--exec-root', join(this.dir, 'x'),
      '--pidfile', join(this.dir, 'd.pid'), '--iptables=false', '--ip6tables=false', '--bridge=none',
      '--storage-driver=vfs', '--log-level=warn', ...(this.cgroup ? ['--cgroup-parent', `/${this.cgroup}`] : []),
    ];
    // nsenter, not `ip netns exec`: that remounts /sys and hides the cgroup mounts dockerd needs.
    this.child = this.ns ? spawn('nsenter', [`--net=/var/run/netns/${this.ns}`, 'dockerd', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('dockerd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.output = '';
    for (const s of [this.child.stdout, this.child.stderr]) s?.on('data', (b) => (this.output = (this.output + b).slice(-8000)));
    const deadline = Date.now() + 30_000;
    while (!(await ping(this.socketPath))) {
      if (this.child.exitCode !== null) throw new Error(`dockerd (${this.role}) exited (${this.child.exitCode}): ${this.output}`);
      if (Date.now() > deadline) throw new Error(`dockerd (${this.role}) did not answer /_ping within 30 s: ${this.output}`);
      await sleep(50);
    }
  }

  exited(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => c.once('exit', () => resolve()));
  }

  /** Remove what the engine made (services, containers, networks, swarm), stop it, and undo what it left on the host. */
  async stop(): Promise<void> {
    const c = this.child;
    const bridges: string[] = [];
    if (c && c.exitCode === null && c.signalCode === null && (await ping(this.socketPath))) {
      const d = this.docker;
      if (this.role === 'm') await d.listServices().then((ss) => Promise.all(ss.map((x) => d.getService(x.ID).remove().catch(() => {})))).catch(() => {});
      const containers = await d.listContainers({ all: true }).catch(() => []);
      await Promise.all(containers.map((x) => d.getContainer(x.Id).remove({ force: true }).catch(() => {})));
      const nets = (await d.listNetworks().catch(() => [])).filter((n) => !['host', 'none'].includes(n.Name));
      for (const n of nets) bridges.push(n.Options?.['com.docker.network.bridge.name'] ?? `br-${n.Id.slice(0, 12)}`);
      for (const n of nets) await d.getNetwork(n.Id).remove().catch(() => {});
      await d.swarmLeave({ force: true }).catch(() => {});
      const timer = setTimeout(() => c.kill('SIGKILL'), 20_000);
      c.kill('SIGTERM');
      await this.exited();
      clearTimeout(timer);
    } else if (c && c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await this.exited();
    }
    // Bridges of the worker live in its namespace and go with it; the manager's are on the host.
    if (!this.ns) for (const b of bridges) quiet('ip', ['link', 'delete', b]);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m?.startsWith(`${this.dir}/`));
    for (const m of mounts.reverse()) quiet('umount', ['-l', m]);
  }
}

/** SIGKILL every process in the namespace (engine, containerd, shims, port proxies) and in the worker's cgroup. */
function killNamespace(ns: string, cgroup: string): void {
  let inode: number;
  try {
    inode = statSync(`/var/run/netns/${ns}`).ino;
  } catch {
    return; // never made
  }
  const pids = new Set<number>(cgroupPids(cgroup));
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (readlinkSync(`/proc/${p}/ns/net`) === `net:[${inode}]`) pids.add(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
  }
}

const CGROUP_ROOTS = ['pids', 'memory', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'blkio', 'systemd', 'unified'].map((c) => `/sys/fs/cgroup/${c}`);

function cgroupDirs(cgroup: string): string[] {
  const dirs: string[] = [];
  const walk = (d: string) => {
    try {
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
      dirs.push(d); // children first
    } catch {
      // not there in this hierarchy
    }
  };
  for (const root of CGROUP_ROOTS) walk(join(root, cgroup));
  return dirs;
}

function cgroupPids(cgroup: string): number[] {
  return cgroupDirs(cgroup).flatMap((d) => {
    try { return readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number); } catch { return []; }
  });
}

function removeCgroup(cgroup: string): void {
  for (const d of cgroupDirs(cgroup)) {
    try { rmdirSync(d); } catch { /* a process still in it: the kernel keeps it until it exits */ }
  }
}

async function nodeReady(docker: Docker, nodeId: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const n = (await docker.getNode(nodeId).inspect().catch(() => null)) as { Status?: { State?: string } } | null;
    if (n?.Status?.State === 'ready') return;
    if (Date.now() > deadline) throw new Error(`swarm node ${nodeId} not ready within 60 s (state ${n?.Status?.State})`);
    await sleep(200);
  }
}
