// Production git path: the daemon clones the fleet repository over HTTP with a token read from the secret store,
// polls it, and fetches at once when a signed push webhook arrives.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { createLocalSecretStore } from '../../daemon/secrets/local.ts';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { DEFAULT_FLEET_YAML, writeProject } from '../harness/git.ts';
import { startRemoteOrigin, type RemoteOrigin } from '../harness/git-http.ts';

const TOKEN = 'tok-3f9a1c77e2d04b5e';
const HOOK_SECRET = 'hook-secret-5b2e';
let f: TestFleet;
let origin: RemoteOrigin;

const sign = (body: string) => `sha256=${createHmac('sha256', HOOK_SECRET).update(body).digest('hex')}`;
const push = (args: string[] = []) => origin.push(args);

beforeAll(async () => {
  f = await createFleet();
  origin = await startRemoteOrigin(f.repo.dir, TOKEN);
  const url = origin.url;
  writeProject(f.repo, 'blog');
  f.repo.commit('add blog');
  await push();
  const store = createLocalSecretStore({ dir: join(f.stateDir, 'secrets') });
  await store.put('/atomo/fleet/GIT_TOKEN', TOKEN);
  const fleet = checkFleetConfig(`${DEFAULT_FLEET_YAML}git:\n  url: ${url}\n  tokenSecret: /atomo/fleet/GIT_TOKEN\n`).config!;
  await f.boot({ fleet, remoteUrl: url, secrets: store, webhookSecret: HOOK_SECRET, intervalMs: 300 });
});
afterAll(async () => {
  await f?.destroy();
  await origin?.destroy();
});

it('clones with the token from the secret store and converges the remote head', async () => {
  const head = f.repo.head();
  await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === head);
  // The token travels only through the auth callback: not in the clone's config, not in the logs.
  expect(readFileSync(join(f.stateDir, 'repo', '.git', 'config'), 'utf8')).not.toContain(TOKEN);
  expect(f.logs.join('\n')).not.toContain(TOKEN);
});

it('a push is seen at once through a signed webhook, long before the 30 s poll', async () => {
  writeProject(f.repo, 'shop');
  const c = f.repo.commit('add shop');
  await push();
  const body = JSON.stringify({ ref: 'refs/heads/main', after: c });
  const bad = await fetch(`${f.running!.httpUrl}/hooks/git`, { method: 'POST', body, headers: { 'x-github-event': 'push', 'x-hub-signature-256': sign(body + 'x') } });
  expect(bad.status).toBe(401);
  const ok = await fetch(`${f.running!.httpUrl}/hooks/git`, { method: 'POST', body, headers: { 'x-github-event': 'push', 'x-hub-signature-256': sign(body) } });
  expect(ok.status).toBe(202);
  await f.until('shop', (p) => p.status === 'running' && p.appliedCommit === c, 10_000);
});

it('follows a force-pushed branch back to an older commit', async () => {
  const log = f.repo.git('log', '--format=%H').split('\n');
  const before = log[1];
  f.repo.resetHard(before);
  await push(['--force']);
  const body = JSON.stringify({ ref: 'refs/heads/main', after: before });
  await fetch(`${f.running!.httpUrl}/hooks/git`, { method: 'POST', body, headers: { 'x-github-event': 'push', 'x-hub-signature-256': sign(body) } });
  await f.until('shop', (p) => !p.present && p.status === 'stopped', 10_000);
  expect((await f.project('blog'))!.status).toBe('running');
});
