// A production daemon starts with only the repository URL: clone it (token from the secret store named by the
// environment), then read fleet.yaml from the tracked branch's head.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { fleetEnvOf, type FleetEnv } from '../config/env.ts';
import { FleetError, describe } from '../core/errors.ts';
import { formatIssue } from '../manifest/parse.ts';
import { createSecretStore } from '../secrets/index.ts';
import type { FleetConfig } from '../core/types.ts';
import { createCommitReader } from './read.ts';
import { createGitSource } from './source.ts';

/** `env`: the command's FleetEnv (secretStore, secretPrefix, branch, gitTokenSecret); a raw environment is read first. */
export async function bootstrapRemote(o: { url: string; stateDir: string; log: Logger; env: FleetEnv | NodeJS.ProcessEnv }): Promise<FleetConfig> {
  const env = fleetEnvOf(o.env);
  const store = createSecretStore({ type: env.secretStore, prefix: env.secretPrefix }, { stateDir: o.stateDir, log: o.log });
  const tokenRef = env.gitTokenSecret;
  const source = createGitSource('remote', {
    url: o.url, branch: env.branch, dir: join(o.stateDir, 'repo'), log: o.log,
    token: tokenRef ? () => store.get(tokenRef) : undefined,
  });
  try {
    let head: string;
    try {
      head = (await source.sync()).head;
    } catch (err) {
      // The remote is down or refuses the token: a clone fetched before still says how to run the fleet.
      const last = await source.lastKnown();
      if (!last) throw err;
      o.log.warn({ commit: last.head, err: { message: describe(err) } }, 'git source unavailable at start: reading fleet.yaml from the last fetched commit');
      head = last.head;
    }
    const read = await createCommitReader(source.dir).read(head);
    if (!read.fleet) {
      throw new FleetError('INVALID_CONFIG', `fleet.yaml at ${head.slice(0, 7)} is invalid:\n${read.fleetIssues.map(formatIssue).join('\n')}`);
    }
    return read.fleet;
  } finally {
    await source.close();
  }
}
