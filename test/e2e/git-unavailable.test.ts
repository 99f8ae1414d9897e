// Git out of reach is not a fleet outage: with the remote down or refusing the token, passes go on against the
// last fetched commit (crashed instances restarted), the fleet carries a SourceUnavailable condition, and the
// daemon logs once per change of that state, not once per pass.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { checkFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { createLocalSecretStore } from '../../daemon/secrets/local.ts';
import { bootstrapRemote } from '../../daemon/git/bootstrap.ts';
import { createLogger } from '../../daemon/log.ts';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { DEFAULT_FLEET_YAML, writeProject } from '../harness/git.ts';
import { startGitHttp, startRemoteOrigin, type RemoteOrigin } from '../harness/git-http.ts';
import { pidNumber } from '../harness/instances.ts';

const TOKEN = 'tok-91c2d0e5aa7f';
let f: TestFleet;
let origin: RemoteOrigin;
let url: string;
type SourceState = { ok: boolean; reason?: string; message?: string; commit?: string };

const push = () => origin.push();
const sourceState = () => f.running!.daemon.registry.getState<SourceState>('source');
const logMessages = (re: RegExp) => f.logs.map((l) => JSON.parse(l) as { msg: string }).filter((l) => re.test(l.msg));
const morePasses = async (n: number) => {
  const start = f.running!.daemon.passes;
  await expect.poll(() => f.running!.daemon.passes, { timeout: 20_000 }).toBeGreaterThanOrEqual(start + n);
};

beforeAll(async () => {
  f = await createFleet();
  origin = await startRemoteOrigin(f.repo.dir, TOKEN);
  url = origin.url;
  writeProject(f.repo, 'blog');
  f.repo.commit('add blog');
  await push();
  const store = createLocalSecretStore({ dir: join(f.stateDir, 'secrets') });
  await store.put('/atomo/fleet/GIT_TOKEN', TOKEN);
  // fleet.yaml names no git.tokenSecret: FLEET_GIT_TOKEN_SECRET alone must be enough for every fetch.
  const fleet = checkFleetConfig(DEFAULT_FLEET_YAML.replace('pollInterval: 30', 'pollInterval: 1')).config!;
  await f.boot({ fleet, remoteUrl: url, secrets: store, gitTokenSecret: '/atomo/fleet/GIT_TOKEN', intervalMs: 200 });
});
afterAll(async () => {
  await f?.destroy();
  await origin?.destroy();
});

it('fetches with the token named only by FLEET_GIT_TOKEN_SECRET, and the source is available', async () => {
  const head = f.repo.head();
  await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === head);
  await expect.poll(async () => (await sourceState())?.ok, { timeout: 10_000 }).toBe(true);
});

it('remote unreachable: passes go on, a crashed instance is restarted, SourceUnavailable is set and logged once', async () => {
  const port = origin.server.port;
  await origin.server.stop();
  await expect.poll(async () => (await sourceState())?.ok, { timeout: 15_000 }).toBe(false);
  const state = (await sourceState())!;
  expect(state).toMatchObject({ reason: 'SourceUnavailable', commit: f.repo.head() });
  expect(state.message).not.toContain(TOKEN);
  // `fleet status` says so.
  const { stdout } = await promisify(execFile)('node', [resolve(import.meta.dirname, '../../scripts/fleet.js'), 'status', '--registry', f.registryUrl, '--repo', f.repo.dir]);
  expect(stdout).toMatch(/SourceUnavailable since .*: converging on [0-9a-f]{7}/);
  // The pass still runs against the last fetched commit: a crash is restarted.
  const before = (await f.project('blog'))!;
  const pid = pidNumber((await f.running!.driver.list()).find((i) => i.id === 'blog' && i.running)!.ref);
  process.kill(pid, 'SIGKILL');
  await f.until('blog', (p) => p.status === 'running' && p.restarts > before.restarts, 20_000);
  await morePasses(5);
  expect(f.running!.daemon.last.ok).toBe(true);
  expect(logMessages(/git source unavailable/)).toHaveLength(1);
  // A token that stops working (401) is a change of reason: one more line, still passes.
  origin.server = await startGitHttp({ root: origin.root, token: 'another-token', port });
  await expect.poll(async () => (await sourceState())?.message, { timeout: 15_000 }).toMatch(/401|token/);
  await morePasses(5);
  expect(logMessages(/git source unavailable/)).toHaveLength(2);
  expect(f.logs.join('\n')).not.toContain(TOKEN);
  // Back: available again, one line, and a new commit is followed.
  await origin.server.stop();
  origin.server = await startGitHttp({ root: origin.root, token: TOKEN, port });
  writeProject(f.repo, 'shop');
  const c = f.repo.commit('add shop');
  await push();
  await f.until('shop', (p) => p.status === 'running' && p.appliedCommit === c, 20_000);
  await expect.poll(async () => (await sourceState())?.ok, { timeout: 10_000 }).toBe(true);
  expect(logMessages(/git source available again/)).toHaveLength(1);
});

it('a daemon starting while the remote is down reads fleet.yaml from its last fetched clone', async () => {
  const port = origin.server.port;
  await origin.server.stop();
  try {
    const fleet = await bootstrapRemote({
      url, stateDir: f.stateDir, log: createLogger({ level: 'silent' }),
      env: { FLEET_SECRET_STORE: 'local', FLEET_GIT_TOKEN_SECRET: '/atomo/fleet/GIT_TOKEN' },
    });
    expect(fleet.driver).toBe('process');
  } finally {
    origin.server = await startGitHttp({ root: origin.root, token: TOKEN, port });
  }
});
