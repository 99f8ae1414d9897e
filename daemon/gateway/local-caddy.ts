// A laptop run's Caddy: `caddy` from PATH with only its admin API open on loopback; the daemon loads the real
// config through that API. A Caddy already answering there is used as it is.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { FleetError } from '../errors.ts';

export async function startLocalCaddy(o: { adminUrl: string; stateDir: string; log: Logger }): Promise<{ stop(): Promise<void> } | null> {
  if (await answers(o.adminUrl)) {
    o.log.info({ admin: o.adminUrl }, 'using the Caddy already running');
    return null;
  }
  if (spawnSync('caddy', ['version'], { stdio: 'ignore' }).status !== 0) {
    o.log.warn('caddy not found on PATH (apt-get install caddy): projects are reachable on their direct URLs only');
    return null;
  }
  const dir = join(o.stateDir, 'caddy');
  mkdirSync(dir, { recursive: true });
  const admin = new URL(o.adminUrl);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(admin.hostname)) {
    throw new FleetError('USAGE', `gateway.admin ${o.adminUrl} is not a loopback address; a local Caddy keeps its admin API on loopback`);
  }
  const configFile = join(dir, 'bootstrap.json');
  writeFileSync(configFile, JSON.stringify({ admin: { listen: admin.host, config: { persist: false } } }));
  const out = openSync(join(dir, 'caddy.log'), 'a');
  const child: ChildProcess = spawn('caddy', ['run', '--config', configFile], {
    env: { ...process.env, XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config') },
    stdio: ['ignore', out, out],
  });
  for (let i = 0; i < 100 && !(await answers(o.adminUrl)); i++) await new Promise((r) => setTimeout(r, 50));
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

async function answers(adminUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${adminUrl.replace(/\/+$/, '')}/config/`, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}
