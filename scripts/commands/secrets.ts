// `fleet secrets rotate <project> <NAME>`: write a new version of one secret and restart that project only.
// JWT_SECRET is generated; any other name reads its new value from standard input (never from an argument,
// which would land in shell history and the process list).
import type { Command } from '../command.ts';
import { join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { readEnv } from '../../daemon/config/env.ts';
import { createLogger } from '../../daemon/log.ts';
import { FleetError } from '../../daemon/core/errors.ts';
import { loadFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { registryUrlFor, stateDirFor } from '../../daemon/postgres/resolve.ts';
import { Registry } from '../../daemon/registry/registry.ts';
import { createSecretStore } from '../../daemon/secrets/index.ts';
import { generateSecret } from '../../daemon/secrets/generate.ts';
import type { SecretStore } from '../../daemon/core/types.ts';

export async function rotateSecret(o: { registry: Registry; secrets: SecretStore; project: string; name: string; value?: string | (() => Promise<string>); actor: string }): Promise<{ ref: string; version: number }> {
  const rec = await o.registry.get(o.project);
  if (!rec) throw new FleetError('USAGE', `no project "${o.project}" in the registry`);
  const ref = rec.secretRefs[o.name];
  if (!ref) throw new FleetError('USAGE', `project ${o.project} has no secret ${o.name}; known: ${Object.keys(rec.secretRefs).join(', ')}`, { project: o.project });
  if (o.name === 'DATABASE_URL') throw new FleetError('USAGE', 'DATABASE_URL is tied to the role password; rotate it by changing the role (not supported by this command yet)', { project: o.project });
  // Read a supplied value only once the name is known to exist, so a typo never waits on standard input.
  const value = o.name === 'JWT_SECRET' ? generateSecret(48) : typeof o.value === 'function' ? await o.value() : o.value;
  if (!value) throw new FleetError('USAGE', `pipe the new value of ${o.name} on standard input`);
  await o.secrets.put(ref, value);
  // A new secrets_version changes the instance's spec hash: the daemon restarts this project, and only it.
  const version = rec.secretsVersion + 1;
  await o.registry.updateWithEvents(o.project, { secretsVersion: version }, [
    { action: 'secret_rotated', actor: o.actor, detail: { name: o.name, ref, secretsVersion: version } },
  ]);
  return { ref, version };
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

const command: Command = {
  summary: 'Rotate a project secret: write a new version to the secret store and restart that project only.',
  usage: 'fleet secrets rotate <project> <NAME> [--registry URL] [--state-dir DIR]   (values other than JWT_SECRET come on stdin)',
  options: { registry: { type: 'string' }, 'state-dir': { type: 'string' } },
  async run({ values, positionals, repo }) {
    const [verb, project, name] = positionals;
    if (verb !== 'rotate' || !project || !name) throw new FleetError('USAGE', `usage: ${command.usage}`);
    const env = readEnv();
    const repoDir = resolve(repo);
    const fleet = await loadFleetConfig(join(repoDir, 'fleet.yaml'), { repoDir });
    const log = createLogger({ level: 'silent' });
    const stateDir = stateDirFor(repoDir, env, values['state-dir'] as string | undefined);
    const url = await registryUrlFor(repoDir, values.registry as string | undefined, env, { stateDir, fleet });
    const registry = new Registry(url, log);
    try {
      const secrets = createSecretStore(fleet.secretStore, { stateDir, log });
      const r = await rotateSecret({ registry, secrets, project, name, value: readStdin, actor: userInfo().username });
      console.log(`rotated ${name} of ${project} (${r.ref}); secrets version ${r.version}: the daemon restarts ${project} on its next pass`);
      return 0;
    } finally {
      await registry.close();
    }
  },
};

export default command;
