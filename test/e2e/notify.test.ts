// Notifications from a real daemon (real git, Postgres, stand-in instances) to real HTTP receivers: one message
// per state change, retried while passes go on, Slack's shape, GitHub commit statuses through a server speaking
// GitHub's API, and no secret in anything sent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import pg from 'pg';
import type { RunningDaemon } from '../../daemon/boot.ts';
import { createLocalSecretStore } from '../../daemon/secrets/local.ts';
import { startFakeGithub, type FakeGithub } from '../fakes/github.ts';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { DEFAULT_FLEET_YAML, writeProject } from '../harness/git.ts';
import { startReceiver, type Receiver } from '../harness/receiver.ts';

const TOKEN = 'ghp_fakeToken0123456789abcdefABCDEF0123';
const PATHS = { ops: '/hooks/ops/T0SECRETPATHops123', chat: '/services/T000/B000/slackSecretPath456', flaky: '/flaky/secretPath789' };
const STRIPE = 'sk_live_notifyTestValue_4242';
const GREETING = 'env-value-notify-9f3a';

async function morePasses(d: RunningDaemon, n: number): Promise<void> {
  const start = d.daemon.passes;
  await expect.poll(() => d.daemon.passes, { timeout: 20_000 }).toBeGreaterThanOrEqual(start + n);
}

describe('notifications from a real daemon', () => {
  let f: TestFleet;
  let rx: Receiver;
  let gh: FakeGithub;
  let c1: string;
  const flakyPasses: number[] = [];
  const to = (name: keyof typeof PATHS, event?: string) => rx.delivered(PATHS[name]).map((r) => r.body).filter((b) => !event || b.event === event || (name === 'chat' && b.text));

  beforeAll(async () => {
    // The daemon's pass count at each try of the flaky receiver: retries happen while passes go on.
    rx = await startReceiver({ answers: { [PATHS.flaky]: [500, 500] }, onRequest: (r) => { if (r.path === PATHS.flaky) flakyPasses.push(f?.running?.daemon.passes ?? 0); } });
    gh = await startFakeGithub({ token: TOKEN, repository: 'acme/fleet' });
    f = await createFleet();
    f.repo.write('fleet.yaml', `${DEFAULT_FLEET_YAML}notify:
  webhooks:
    - name: ops
      urlSecret: /atomo/fleet/OPS_WEBHOOK_URL
    - name: chat
      format: slack
      urlSecret: /atomo/fleet/SLACK_WEBHOOK_URL
      events: [deploy_applied, manifest_invalid]
    - name: flaky
      urlSecret: /atomo/fleet/FLAKY_WEBHOOK_URL
      events: [deploy_applied]
  githubStatus:
    repository: acme/fleet
    tokenSecret: /atomo/fleet/GITHUB_TOKEN
    apiUrl: ${gh.url}
`);
    const store = createLocalSecretStore({ dir: join(f.stateDir, 'secrets'), prefix: '/atomo' });
    await store.put('/atomo/fleet/OPS_WEBHOOK_URL', `${rx.url}${PATHS.ops}`);
    await store.put('/atomo/fleet/SLACK_WEBHOOK_URL', `${rx.url}${PATHS.chat}`);
    await store.put('/atomo/fleet/FLAKY_WEBHOOK_URL', `${rx.url}${PATHS.flaky}`);
    await store.put('/atomo/fleet/GITHUB_TOKEN', TOKEN);
    await store.put('/atomo/blog/stripe-key', STRIPE);
    writeProject(f.repo, 'blog', { manifest: { env: { GREETING }, secrets: { STRIPE_KEY: 'stripe-key' } } });
    c1 = f.repo.commit('add blog');
    await f.boot();
    await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c1);
  });
  afterAll(async () => {
    await f?.destroy();
    await rx?.close();
    await gh?.close();
  });

  it('a deploy posts one "deploy applied" message, in JSON and in Slack\'s shape, and a success status on the commit', async () => {
    await expect.poll(() => to('ops', 'deploy_applied').length, { timeout: 20_000 }).toBe(1);
    await expect.poll(() => to('chat').length, { timeout: 20_000 }).toBe(1);
    await morePasses(f.running!, 3);
    const [deploy] = to('ops', 'deploy_applied');
    expect(deploy).toMatchObject({ version: 1, event: 'deploy_applied', commit: c1, outcome: 'success', projects: [{ id: 'blog', status: 'running' }] });
    expect(deploy.text).toBe(`Deployed ${c1.slice(0, 7)}: changed: blog.`);
    expect(to('ops', 'deploy_applied')).toHaveLength(1);
    // Slack: `text` for notifications, `blocks` for the message.
    const [slack] = to('chat');
    expect(slack.text).toMatch(new RegExp(`^:rocket: Deployed ${c1.slice(0, 7)}`));
    expect(slack.blocks[0]).toMatchObject({ type: 'section', text: { type: 'mrkdwn' } });
    expect(slack.blocks[1]).toMatchObject({ type: 'context', elements: [{ type: 'mrkdwn' }] });
    // GitHub: the deployed commit's status, the token in the header, answered 201.
    await expect.poll(() => gh.statuses.filter((s) => s.sha === c1).map((s) => s.state).at(-1), { timeout: 20_000 }).toBe('success');
    const status = gh.statuses.find((s) => s.sha === c1 && s.state === 'success')!;
    expect(status).toMatchObject({ owner: 'acme', repo: 'fleet', context: 'atomo-fleet/deploy', description: 'deployed: blog changed' });
    expect(status.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(status.headers.accept).toBe('application/vnd.github+json');
    expect(gh.requests.every((r) => r.status === 201)).toBe(true);
  });

  it('a receiver that answers 500 twice gets the message on the third try, while passes go on', async () => {
    await expect.poll(() => rx.delivered(PATHS.flaky).length, { timeout: 20_000 }).toBe(1);
    expect(rx.requests.filter((r) => r.path === PATHS.flaky).map((r) => r.status)).toEqual([500, 500, 200]);
    expect(rx.delivered(PATHS.flaky)[0].body).toMatchObject({ event: 'deploy_applied', commit: c1 });
    expect(flakyPasses).toHaveLength(3);
    expect(flakyPasses[2]).toBeGreaterThan(flakyPasses[0]);
  });

  it('a pass that fails after reading a commit tells nothing about that commit; the next pass tells what happened', async () => {
    const registry = f.running!.daemon.registry;
    const real = registry.listKnown.bind(registry);
    let failures = 0;
    // Once: the pass reads the commit and converges, then fails (the registry out of reach just then).
    registry.listKnown = async () => {
      if (failures++ === 0) throw new Error('registry unreachable for one call');
      return real();
    };
    writeProject(f.repo, 'blog', { manifest: { env: { GREETING: `${GREETING}-2` }, secrets: { STRIPE_KEY: 'stripe-key' } } });
    const c = f.repo.commit('blog: a new greeting');
    try {
      await expect.poll(() => failures, { timeout: 20_000 }).toBeGreaterThan(0);
      await f.until('blog', (p) => p.appliedCommit === c && p.status === 'running');
      await expect.poll(() => to('ops', 'deploy_applied').filter((b) => b.commit === c).length, { timeout: 20_000 }).toBe(1);
      await morePasses(f.running!, 2);
      const told = to('ops', 'deploy_applied').filter((b) => b.commit === c);
      expect(told).toHaveLength(1);
      expect(told[0]).toMatchObject({ outcome: 'success', projects: [{ id: 'blog', status: 'running' }] });
    } finally {
      registry.listKnown = real;
    }
  });

  it('a crashing instance: "failed" then "recovered", once each; the deploy that brought it failed', async () => {
    writeProject(f.repo, 'crashy', { manifest: { env: { STANDIN_FAIL_AT_BOOT: '1' } } });
    const c2 = f.repo.commit('add crashy, which fails at boot');
    await expect.poll(() => to('ops', 'project_failed').filter((b) => b.project === 'crashy').length, { timeout: 30_000 }).toBe(1);
    await expect.poll(() => to('ops', 'deploy_applied').find((b) => b.commit === c2)?.outcome, { timeout: 30_000 }).toBe('failure');
    await expect.poll(() => gh.statuses.filter((s) => s.sha === c2).map((s) => s.state).at(-1), { timeout: 20_000 }).toBe('failure');
    writeProject(f.repo, 'crashy');
    const c3 = f.repo.commit('crashy: boot normally');
    await f.until('crashy', (p) => p.status === 'running' && p.appliedCommit === c3);
    await expect.poll(() => to('ops', 'project_recovered').filter((b) => b.project === 'crashy').length, { timeout: 20_000 }).toBe(1);
    await morePasses(f.running!, 3);
    const about = to('ops').filter((b) => b.project === 'crashy').map((b) => b.event);
    expect(about.filter((e) => e === 'project_failed')).toHaveLength(1);
    expect(about.filter((e) => e === 'project_recovered')).toHaveLength(1);
    expect(about.filter((e) => e === 'project_stalled').length).toBeLessThanOrEqual(1);
    expect(about.at(-1)).toBe('project_recovered');
    // The failure names the project and why, in the daemon's words.
    expect(to('ops', 'deploy_applied').find((b) => b.commit === c2).problems[0]).toMatch(/^crashy: /);
    // The Slack receiver only wants deploys and invalid manifests.
    expect(to('chat').some((b) => /crashy (failed|recovered)/.test(b.text))).toBe(false);
  });

  it('an invalid manifest on the branch posts once, however many passes see it', async () => {
    writeProject(f.repo, 'blog', { manifest: { env: { GREETING }, secrets: { STRIPE_KEY: 'stripe-key' }, colour: 'blue' } });
    const c4 = f.repo.commit('blog: an unknown key');
    await expect.poll(() => to('ops', 'manifest_invalid').length, { timeout: 20_000 }).toBe(1);
    await morePasses(f.running!, 4);
    const [invalid] = to('ops', 'manifest_invalid');
    expect(invalid).toMatchObject({ commit: c4, projects: [{ id: 'blog' }] });
    expect(invalid.projects[0].issues[0]).toMatch(/projects\/blog\/project\.yaml.*colour/);
    expect(to('ops', 'manifest_invalid')).toHaveLength(1);
    expect(to('chat').filter((b) => /Invalid manifest/.test(b.text))).toHaveLength(1);
    writeProject(f.repo, 'blog', { manifest: { env: { GREETING }, secrets: { STRIPE_KEY: 'stripe-key' } } });
    const c5 = f.repo.commit('blog: fixed');
    await expect.poll(() => to('ops', 'deploy_applied').find((b) => b.commit === c5)?.outcome, { timeout: 20_000 }).toBe('success');
    expect(to('ops', 'manifest_invalid')).toHaveLength(1);
  });

  it('failing scheduled backups post "backup failed" once, not at each retry; a success resets it', async () => {
    const admin = new pg.Client(f.pg.url);
    await admin.connect();
    await admin.query('ALTER DATABASE atomo_blog ALLOW_CONNECTIONS false');
    try {
      expect(await f.running!.daemon.backups.run('blog', 2)).toBeNull();
      // Retries follow on their own, with backoff; each is an event, not a message.
      await expect.poll(async () => (await f.running!.daemon.registry.events('blog')).filter((e) => e.action === 'backup_failed').length, { timeout: 20_000 }).toBeGreaterThanOrEqual(3);
      await expect.poll(() => to('ops', 'backup_failed').length, { timeout: 20_000 }).toBe(1);
      expect(to('ops', 'backup_failed')[0]).toMatchObject({ project: 'blog' });
    } finally {
      await admin.query('ALTER DATABASE atomo_blog ALLOW_CONNECTIONS true');
      await admin.end();
    }
    await expect.poll(async () => (await f.running!.daemon.registry.events('blog')).some((e) => e.action === 'backup'), { timeout: 20_000 }).toBe(true);
    expect(to('ops', 'backup_failed')).toHaveLength(1);
  });

  it('a daemon restart tells nothing again', async () => {
    const before = rx.requests.length;
    const statuses = gh.statuses.length;
    await f.stopDaemon();
    await f.boot();
    await morePasses(f.running!, 5);
    expect(rx.requests.slice(before).map((r) => r.body.event ?? r.body.text)).toEqual([]);
    expect(gh.statuses.length).toBe(statuses);
  });

  it('no secret value, webhook URL or token appears in anything sent or logged', async () => {
    const dbUrl = await f.running!.secrets.get('/atomo/blog/DATABASE_URL');
    const secrets = [
      dbUrl, decodeURIComponent(new URL(dbUrl).password), await f.running!.secrets.get('/atomo/blog/JWT_SECRET'),
      STRIPE, GREETING, TOKEN, ...Object.values(PATHS).map((p) => p.split('/').at(-1)!),
    ];
    const sent = [...rx.requests.map((r) => r.raw), JSON.stringify(gh.statuses.map(({ headers: _h, ...s }) => s))].join('\n');
    expect(rx.requests.length).toBeGreaterThan(5);
    for (const s of secrets) expect(sent).not.toContain(s);
    const logs = f.logs.join('\n');
    for (const s of [TOKEN, ...Object.values(PATHS).map((p) => p.split('/').at(-1)!)]) expect(logs).not.toContain(s);
  });
});
