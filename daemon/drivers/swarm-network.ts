// The tasks' network, so that an instance is reachable only through the gateway. Swarm's host-mode port publishing
// has no host address: a task's port listens on every interface of its node (0.0.0.0 and ::), and neither dockerd's
// `--ip` nor a bridge option on a swarm-scoped network changes that (measured on Engine 20.10). What does is a
// config-only network on each node, `com.docker.network.bridge.host_binding_ipv4` set to that node's own address,
// with the swarm network created `--config-from` it: each node binds its tasks' ports to its address only, and a
// node without that network rejects the task instead of opening its ports everywhere.
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { FleetError } from '../core/errors.ts';
import { LABEL_MANAGED } from './container-spec.ts';
import { engineApi, ifStatus } from './engine.ts';

type EngineApi = ReturnType<typeof engineApi>;

export const DEFAULT_BIND_NETWORK = 'fleet-swarm-bind';
export const BIND_OPTION = 'com.docker.network.bridge.host_binding_ipv4';

/** The config-only network a node holds: host-mode ports of tasks on it bind to `addr`. */
export function bindNetworkBody(name: string, addr: string) {
  return { Name: name, ConfigOnly: true, Options: { [BIND_OPTION]: addr }, Labels: { [LABEL_MANAGED]: 'true' } };
}

/**
 * The swarm-scoped bridge network tasks join, taking each node's settings from its config-only network (the engine
 * refuses any setting of its own beside ConfigFrom, labels included).
 */
export function swarmNetworkBody(name: string, bindNetwork: string) {
  return { Name: name, Driver: 'bridge', Scope: 'swarm', ConfigFrom: { Network: bindNetwork } };
}

/** The one command that makes a node bind its tasks' ports to its own address (README, Swarm). */
export function bindCommand(bindNetwork: string, addr = '<node address>'): string {
  return `docker network create --config-only -o ${BIND_OPTION}=${addr} ${bindNetwork}`;
}

interface NetworkSeen { ConfigOnly?: boolean; ConfigFrom?: { Network?: string }; Options?: Record<string, string> }

/** Why an existing network cannot carry the fleet's tasks, or null. */
export function networkProblem(kind: 'swarm' | 'bind', name: string, seen: NetworkSeen, bindNetwork: string): string | null {
  if (kind === 'swarm') {
    if (seen.ConfigFrom?.Network === bindNetwork) return null;
    return `network ${name} exists but is not created from ${bindNetwork}, so its tasks' ports listen on every interface of their node; ` +
      `remove it once no service uses it (docker service rm the fleet-* services, then docker network rm ${name}) or set swarm.network in fleet.yaml to a new name, and the driver creates it`;
  }
  const addr = seen.Options?.[BIND_OPTION];
  if (seen.ConfigOnly && addr && addr !== '0.0.0.0') return null;
  return `network ${name} on the manager must be a config-only network binding ports to the node's own address; ` +
    `remove it and run: ${bindCommand(bindNetwork)}`;
}

/**
 * The manager's config-only network (made with the manager's swarm address when missing) and the swarm network
 * created from it. Workers need their own config-only network: `bindCommand`.
 */
export async function ensureSwarmNetworks(
  docker: Docker, api: EngineApi, o: { network: string; bindNetwork: string; project: string; log: Logger },
): Promise<void> {
  const inspect = (name: string) => api('inspect network', () => docker.getNetwork(name).inspect().catch(ifStatus(404, null)) as Promise<NetworkSeen | null>, o.project);
  const bind = await inspect(o.bindNetwork);
  if (!bind) {
    const info = await api('inspect engine', () => docker.info() as Promise<{ Swarm?: { NodeAddr?: string } }>, o.project);
    const addr = info.Swarm?.NodeAddr;
    if (!addr) throw new FleetError('DRIVER', `swarm: the manager reports no node address; run \`${bindCommand(o.bindNetwork)}\` on it with its private address`, { project: o.project });
    o.log.info({ network: o.bindNetwork, addr }, "creating the manager's config-only network: task ports bind to its address only");
    await api('create network', () => docker.createNetwork(bindNetworkBody(o.bindNetwork, addr) as Docker.NetworkCreateOptions).catch(ifStatus(409, null)), o.project);
  } else {
    const problem = networkProblem('bind', o.bindNetwork, bind, o.bindNetwork);
    if (problem) throw new FleetError('DRIVER', `swarm: ${problem}`, { project: o.project });
  }
  const net = await inspect(o.network);
  if (!net) {
    o.log.info({ network: o.network, from: o.bindNetwork }, 'creating swarm-scoped network');
    await api('create network', () => docker.createNetwork(swarmNetworkBody(o.network, o.bindNetwork) as Docker.NetworkCreateOptions).catch(ifStatus(409, null)), o.project);
    return;
  }
  const problem = networkProblem('swarm', o.network, net, o.bindNetwork);
  if (problem) throw new FleetError('DRIVER', `swarm: ${problem}`, { project: o.project });
}
