// A fleet on a real two-node swarm, as the daemon's swarm tests use it: the cluster (swarm-cluster.ts) with each
// worker holding its bind network, the stand-in image imported on both nodes (no registry), a real Caddy, and a test
// fleet whose fleet.yaml says `driver: swarm` with the manager's socket, placement by node.labels.tier, and
// postgres.instanceHost at the manager's veth address (tasks on either node reach the test Postgres through it).
import http from 'node:http';
import type Docker from 'dockerode';
import { checkFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { bindNetworkBody, DEFAULT_BIND_NETWORK } from '../../daemon/drivers/swarm-network.ts';
import { startCaddy, type TestCaddy } from './caddy.ts';
import { createFleet, type TestFleet } from './fleet.ts';
import { buildTestImage } from './image.ts';
import { freePort } from './ports.ts';
import { startSwarmCluster, type SwarmCluster } from './swarm-cluster.ts';

export interface SwarmFleet {
  cluster: SwarmCluster;
  caddy: TestCaddy;
  fleet: TestFleet;
  /** The stand-in image, on both nodes. */
  image: string;
  /** GET through Caddy with `host`: the status and the JSON body (null for a static page or an error). */
  through(host: string, path?: string): Promise<{ status: number; json: any }>;
  /** Who answered for project `id` through the gateway: its id, or the HTTP status. */
  who(id: string): Promise<string>;
  stop(): Promise<void>;
}

/** A worker's config-only network binding its tasks' ports to its own address (README, Swarm: set-up). */
export async function createBindNetwork(engine: { docker: Docker; addr: string }): Promise<void> {
  await engine.docker.createNetwork(bindNetworkBody(DEFAULT_BIND_NETWORK, engine.addr) as Docker.NetworkCreateOptions)
    .catch((e: { statusCode?: number }) => { if (e.statusCode !== 409) throw e; });
}

/**
 * Start everything and boot the daemon on the commit `commit(fleet, image)` makes (it writes the projects).
 * A failure halfway stops what was started.
 */
export async function startSwarmFleet(opts: { heartbeatSeconds: number; commit: (f: TestFleet, image: string) => void }): Promise<SwarmFleet> {
  let cluster: SwarmCluster | undefined;
  let caddy: TestCaddy | undefined;
  let fleet: TestFleet | undefined;
  const stop = async () => {
    await fleet?.destroy();
    await caddy?.stop();
    await cluster?.stop();
  };
  try {
    cluster = await startSwarmCluster({ workerLabels: { tier: 'hot' }, heartbeatSeconds: opts.heartbeatSeconds });
    await createBindNetwork(cluster.worker);
    const image = await buildTestImage(cluster.manager, 'standin');
    await buildTestImage(cluster.worker, 'standin');
    caddy = await startCaddy();
    fleet = await createFleet();
    const pgAt = await cluster.expose(fleet.pg.port);
    const yaml = [
      'branch: main', 'pollInterval: 30', 'driver: swarm', 'swarm:', `  socketPath: ${cluster.manager.socketPath}`, '  placement:', '    allowedLabels: [tier]',
      'postgres:', '  admin: embedded', `  instanceHost: ${pgAt.host}`, 'secretStore:', '  type: local',
      'gateway:', '  admin: http://127.0.0.1:2019', '  listen: ":8080"', '  tls: off', '',
    ].join('\n');
    fleet.repo.write('fleet.yaml', yaml);
    opts.commit(fleet, image);
    await fleet.boot({
      fleet: checkFleetConfig(yaml).config!, caddyAdmin: caddy.adminUrl, healthIntervalMs: 1000,
      gatewayOverride: { listen: `127.0.0.1:${caddy.httpPort}`, admin: caddy.adminListen }, portBase: await freePort(),
    });
    const port = caddy.httpPort;
    const through = (host: string, path = '/probe') => get(port, host, path);
    const who = async (id: string) => {
      const a = await through(`${id}.localhost`);
      return a.status === 200 && a.json?.project ? String(a.json.project) : String(a.status);
    };
    return { cluster, caddy, fleet, image, through, who, stop };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

function get(port: number, host: string, path: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host }, setHost: false, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let json: any = null;
        try { json = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { /* a static page */ }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, json: null }));
    req.end();
  });
}
