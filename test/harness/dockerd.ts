// A real Docker Engine for tests: a PRIVATE dockerd (Debian's docker.io) on its own socket, data, exec root and
// pid file in a short temp dir, never the system's engine. No iptables and no default bridge (MACHINE-NOTES.md):
// containers use the host's network, or a swarm-scoped bridge network with host-mode published ports.
// `stop()` removes what the engine made on the host (services, containers, swarm state, bridges) and its dirs.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { ping } from './podman.ts';
import { freePort } from './ports.ts';

const execFileP = promisify(execFile);

export interface TestDockerd {
  socketPath: string;
  /** The engine's own temp dir (socket, data root, exec root, pid file, log). */
  dir: string;
  docker: Docker;
  /** The docker CLI against this engine; resolves to stdout. */
  cli(args: string[]): Promise<string>;
  /** Seconds the engine took to answer /_ping (and, with `swarm`, to become a single-node swarm manager). */
  startSeconds: number;
  /** Seconds the last `stop()` took (0 before). */
  stopSeconds(): number;
  stop(): Promise<void>;
}

export interface DockerdOptions {
  /** Make the engine a single-node swarm manager advertising 127.0.0.1 (`docker swarm init`). */
  swarm?: boolean;
}

export async function startDockerd(opts: DockerdOptions = {}): Promise<TestDockerd> {
  // Fail loudly: a missing engine must never turn into silently skipped tests.
  const probe = spawnSync('dockerd', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) throw new Error('dockerd not found: apt-get install -y docker.io (or run .ci/install)');
  const began = Date.now();
  // A unix socket path is limited to ~107 bytes, containerd's socket lives under the exec root: keep it short.
  const dir = mkdtempSync('/tmp/fd-');
  const socketPath = join(dir, 'd.sock');
  let output = '';
  const child = spawn('dockerd', [
    '-H', `unix://${socketPath}`, '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'x'),
    '--pidfile', join(dir, 'd.pid'), '--iptables=false', '--ip6tables=false', '--bridge=none',
    '--storage-driver=vfs', '--log-level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (b) => (output = (output + b).slice(-8000)));
  child.stderr?.on('data', (b) => (output = (output + b).slice(-8000)));
  const docker = new Docker({ socketPath });
  // Interfaces the engine makes on the host: removed again at stop even when the engine cannot do it itself.
  const gwBridge = `fgw${dir.slice(-6)}`.replace(/[^a-zA-Z0-9]/g, '0');
  const engine: TestDockerd = {
    socketPath, dir, docker, startSeconds: 0,
    async cli(args) {
      const { stdout } = await execFileP('docker', ['-H', `unix://${socketPath}`, ...args], { maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    },
    stopSeconds: () => stopSeconds,
    stop: async () => {
      const t = Date.now();
      await teardown(docker, child, dir, gwBridge);
      stopSeconds = (Date.now() - t) / 1000;
    },
  };
  let stopSeconds = 0;
  try {
    await waitForPing(socketPath, child, () => output);
    if (opts.swarm) await initSwarm(docker, gwBridge);
  } catch (err) {
    await teardown(docker, child, dir, gwBridge);
    throw err;
  }
  engine.startSeconds = (Date.now() - began) / 1000;
  return engine;
}

/**
 * A single-node swarm on 127.0.0.1. Its gateway bridge gets a name of its own (not the fixed `docker_gwbridge`
 * interface two engines on one host would fight over), and the routing mesh's `ingress` network is removed:
 * it needs iptables, and the fleet publishes in host mode.
 */
async function initSwarm(docker: Docker, gwBridge: string): Promise<void> {
  await docker.createNetwork({
    Name: 'docker_gwbridge', Driver: 'bridge',
    Options: {
      'com.docker.network.bridge.name': gwBridge,
      'com.docker.network.bridge.enable_icc': 'false',
      'com.docker.network.bridge.enable_ip_masquerade': 'false',
    },
  });
  // A port of its own, not 2377: another test's swarm may run on this host at the same time.
  const port = await freePort();
  await docker.swarmInit({ ListenAddr: `127.0.0.1:${port}`, AdvertiseAddr: `127.0.0.1:${port}` });
  const ingress = (await docker.listNetworks({ filters: { name: ['ingress'] } })).find((n) => n.Ingress);
  if (ingress) await docker.getNetwork(ingress.Id).remove();
}

async function teardown(docker: Docker, child: ChildProcess, dir: string, gwBridge: string): Promise<void> {
  // Linux bridges of the engine's networks: they outlive the engine (a swarm-scoped one outlives leaving too).
  const bridges = new Set([gwBridge]);
  if (child.exitCode === null && child.signalCode === null && (await ping(join(dir, 'd.sock')))) {
    await docker.listServices().then((ss) => Promise.all(ss.map((s) => docker.getService(s.ID).remove().catch(() => {})))).catch(() => {});
    const containers = await docker.listContainers({ all: true }).catch(() => []);
    await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
    const nets = (await docker.listNetworks().catch(() => [])).filter((n) => !['host', 'none'].includes(n.Name));
    for (const n of nets) bridges.add(n.Options?.['com.docker.network.bridge.name'] ?? `br-${n.Id.slice(0, 12)}`);
    // Networks first (swarm-scoped ones while still in the swarm), then the swarm, then what leaving left.
    await Promise.all(nets.map((n) => docker.getNetwork(n.Id).remove().catch(() => {})));
    await docker.swarmLeave({ force: true }).catch(() => {});
    const left = await docker.listNetworks().catch(() => []);
    await Promise.all(left.filter((n) => !['host', 'none'].includes(n.Name)).map((n) => docker.getNetwork(n.Id).remove().catch(() => {})));
  }
  await stopChild(child);
  // What the engine could not clean: mounts under its dirs, and bridges it left.
  for (const mount of mountsUnder(dir).reverse()) spawnSync('umount', ['-l', mount]);
  for (const bridge of bridges) spawnSync('ip', ['link', 'delete', bridge], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((line) => line.split(' ')[4])
    .filter((m): m is string => !!m && m.startsWith(`${dir}/`));
}

async function waitForPing(socketPath: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`dockerd exited (${child.exitCode}): ${output()}`);
    if (await ping(socketPath)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`dockerd did not answer /_ping on ${socketPath} within 30 s: ${output()}`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    // dockerd stops its containers and its containerd on SIGTERM; 20 s covers a slow vfs teardown.
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
