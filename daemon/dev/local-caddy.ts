// A laptop run's Caddy: `caddy` from PATH with only its admin API open, on loopback or on a unix socket; the daemon
// loads the real config through that API. A Caddy already answering there is used as it is.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { openPrivateAppend, privateDir } from '../files.ts';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { FleetError } from '../core/errors.ts';
import { createCaddyGateway } from '../gateway/caddy.ts';
import { adminListen } from '../gateway/render.ts';

export async function startLocalCaddy(o: { adminUrl: string; stateDir: string; log: Logger }): Promise<{ stop(): Promise<void> } | null> {
  const answers = async () => createCaddyGateway({ adminUrl: o.adminUrl, log: o.log, timeoutMs: 1000 }).current().then(() => true, () => false);
  if (await answers()) {
    o.log.info({ admin: o.adminUrl }, 'using the Caddy already running');
    return null;
  }
  if (spawnSync('caddy', ['version'], { stdio: 'ignore' }).status !== 0) {
    o.log.warn('caddy not found on PATH (apt-get install caddy): projects are reachable on their direct URLs only');
    return null;
  }
  const dir = join(o.stateDir, 'caddy');
  privateDir(dir);
  if (!o.adminUrl.startsWith('unix:') && !['127.0.0.1', 'localhost', '[::1]'].includes(new URL(o.adminUrl).hostname)) {
    throw new FleetError('USAGE', `gateway.admin ${o.adminUrl} is not a loopback address or a unix socket; a local Caddy keeps its admin API on loopback`);
  }
  const configFile = join(dir, 'bootstrap.json');
  writeFileSync(configFile, JSON.stringify({ admin: { listen: adminListen(o.adminUrl), config: { persist: false } } }));
  const out = openPrivateAppend(join(dir, 'caddy.log'));
  const child: ChildProcess = spawn('caddy', ['run', '--config', configFile], {
    env: { ...process.env, XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config') },
    stdio: ['ignore', out, out],
  });
  for (let i = 0; i < 100 && !(await answers()); i++) await new Promise((r) => setTimeout(r, 50));
  o.log.info({ admin: o.adminUrl, log: join(dir, 'caddy.log') }, 'started a local Caddy');
  return {
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
