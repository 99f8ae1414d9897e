// How CLI commands talk to the running daemon: its address from `<stateDir>/daemon.json`, the operator token from
// the fleet's secret store (the same one the daemon reads), then JSON over HTTP. A daemon that is not there is a
// sentence saying how to start it, never a stack trace.
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from './command.ts';
import { readEnv } from '../daemon/config/env.ts';
import { FleetError, describe } from '../daemon/core/errors.ts';
import { createLogger } from '../daemon/log.ts';
import { loadFleetConfig } from '../daemon/manifest/fleet-config.ts';
import { stateDirFor } from '../daemon/postgres/resolve.ts';
import { createSecretStore } from '../daemon/secrets/index.ts';
import { readDaemonInfo, daemonInfoPath, type DaemonInfo } from '../daemon/api/discovery.ts';
import { operatorTokenRef } from '../daemon/api/token.ts';

export interface DaemonClient {
  info: DaemonInfo;
  /** One API call; a non-2xx answer throws FleetError('API') with the daemon's sentence. */
  call<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: object, opts?: { timeoutMs?: number }): Promise<T>;
}

/** Where the daemon of this repository keeps its state (--state-dir, FLEET_STATE_DIR, `<repo>/.fleet`). */
export function clientStateDir(repo: string, flag?: string): string {
  return stateDirFor(resolve(repo), readEnv(), flag);
}

function notRunning(repo: string, why: string): FleetError {
  return new FleetError('DAEMON_UNREACHABLE', `the daemon is not running: start it with npm start (or npx fleet daemon --repo ${repo}) and try again (${why})`);
}

export async function connectDaemon(repo: string, o: { stateDir?: string } = {}): Promise<DaemonClient> {
  const repoDir = resolve(repo);
  const stateDir = clientStateDir(repoDir, o.stateDir);
  const info = readDaemonInfo(stateDir);
  if (!info) throw notRunning(repoDir, `no ${daemonInfoPath(stateDir)}`);
  // A daemon killed hard leaves its file behind: it counts only when the daemon answers.
  const alive = await fetch(`${info.url}/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.ok, () => false);
  if (!alive) throw notRunning(repoDir, `nothing answers at ${info.url}, named by ${daemonInfoPath(stateDir)} (pid ${info.pid})`);
  const token = await operatorToken(repoDir, stateDir);
  return {
    info,
    async call<T>(method: 'GET' | 'POST', path: string, body?: object, opts: { timeoutMs?: number } = {}): Promise<T> {
      let res: Response;
      try {
        res = await fetch(`${info.url}${path}`, {
          method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
        });
      } catch (err) {
        throw new FleetError('DAEMON_UNREACHABLE', `the daemon at ${info.url} did not answer: ${describe(err)}`, { cause: err });
      }
      const text = await res.text();
      let parsed: Record<string, unknown> = {};
      try { parsed = JSON.parse(text) as Record<string, unknown>; } catch { /* not JSON: the status says enough */ }
      if (!res.ok) throw new FleetError('API', typeof parsed.error === 'string' ? parsed.error : `the daemon answered ${res.status} to ${method} ${path}`);
      return parsed as T;
    },
  };
}

async function operatorToken(repoDir: string, stateDir: string): Promise<string> {
  const fleet = await loadFleetConfig(join(repoDir, 'fleet.yaml'), { repoDir });
  const ref = operatorTokenRef(fleet.secretStore.prefix);
  const secrets = createSecretStore(fleet.secretStore, { stateDir, log: createLogger({ level: 'silent' }) });
  try {
    return await secrets.get(ref);
  } catch (err) {
    throw new FleetError('SECRET_MISSING', `cannot read the operator token ${ref} from the ${fleet.secretStore.type} secret store: ${describe(err)}`, { cause: err });
  }
}

/** `--format text|json`, checked the way every command checks it. */
export function formatOf(values: Record<string, unknown>): 'text' | 'json' {
  const f = String(values.format ?? 'text');
  if (f !== 'text' && f !== 'json') throw new FleetError('USAGE', `--format must be text or json, not "${f}"`);
  return f;
}

/** `fleet restart|suspend|resume <id>`: one operator request about one project, recorded by the daemon with the caller as actor. */
export function projectRequest(verb: 'restart' | 'suspend' | 'resume', summary: string): Command {
  const usage = `fleet ${verb} <project> [--state-dir DIR] [--format text|json]`;
  return {
    summary, usage,
    options: { 'state-dir': { type: 'string' }, format: { type: 'string', default: 'text' } },
    async run({ values, positionals, repo }) {
      const format = formatOf(values);
      const [id, ...extra] = positionals;
      if (!id || extra.length) {
        console.error(`fleet ${verb}: name one project\nusage: ${usage}`);
        return 2;
      }
      const client = await connectDaemon(repo, { stateDir: values['state-dir'] as string | undefined });
      const answer = await client.call<{ message: string }>('POST', `/api/v1/projects/${encodeURIComponent(id)}/${verb}`, { actor: userInfo().username });
      console.log(format === 'json' ? JSON.stringify(answer, null, 2) : answer.message);
      return 0;
    },
  };
}
