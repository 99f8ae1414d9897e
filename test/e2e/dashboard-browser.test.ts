// The dashboard in real headless Chromium (Debian's `chromium`, driven by playwright-core) against a real daemon
// process: log in through the form, see the fleet, commit a state change and watch the page follow it through its
// own refresh, open a project page, and keep a screenshot under test-artifacts/.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createLogger } from '../../daemon/log.ts';
import { REGISTRY_DATABASE } from '../../daemon/postgres/resolve.ts';
import { Registry } from '../../daemon/registry/registry.ts';
import { createLocalSecretStore } from '../../daemon/secrets/local.ts';
import { spawnDaemon, type DaemonProcess } from '../harness/daemon-process.ts';
import { createRepo, writeProject, type TestRepo } from '../harness/git.ts';
import { stopInstances } from '../harness/instances.ts';
import { startPostgres, type TestPostgres } from '../harness/postgres.ts';

// Debian's chromium (.ci/install), or the Google Chrome a GitHub runner ships; CHROMIUM_PATH wins. None found is a
// failure, never a skipped test: .ci/install puts one there.
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/google-chrome', '/usr/bin/chromium-browser']
  .find((p): p is string => !!p && existsSync(p)) ?? '/usr/bin/chromium';
const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts');
const TOKEN = 'dashboard-browser-test-token-5c4b3a';
const HOSTILE = '<img src=x onerror=alert(1)> "Blog" & co';
const quiet = createLogger({ level: 'silent' });

describe('the dashboard in headless Chromium', () => {
  let pgs: TestPostgres;
  let repo: TestRepo;
  let stateDir: string;
  let registry: Registry;
  let daemon: DaemonProcess;
  let browser: Browser;
  let page: Page;
  let url: string;

  beforeAll(async () => {
    pgs = await startPostgres();
    const registryUrl = await pgs.database(REGISTRY_DATABASE);
    registry = new Registry(registryUrl, quiet);
    repo = await createRepo();
    stateDir = mkdtempSync(join(tmpdir(), 'fleet-dashboard-'));
    chmodSync(stateDir, 0o755);
    // The token the daemon finds in its store (it creates one only when there is none).
    await createLocalSecretStore({ dir: join(stateDir, 'secrets'), prefix: '/atomo' }).put('/atomo/fleet/OPERATOR_TOKEN', TOKEN);
    writeProject(repo, 'blog', { manifest: { displayName: HOSTILE, aliases: ['www.blog.localhost'] } });
    writeProject(repo, 'shop');
    const commit = repo.commit('add blog and shop');
    daemon = spawnDaemon({ repoDir: repo.dir, stateDir, registryUrl, adminUrl: pgs.url });
    await vi.waitFor(async () => {
      if (daemon.child.exitCode !== null) throw new Error(`daemon exited:\n${daemon.lines.slice(-20).join('\n')}`);
      const rows = await registry.list();
      if (rows.length !== 2 || rows.some((r) => r.status !== 'running' || r.appliedCommit !== commit || !r.lastHealth?.ok)) throw new Error('not converged yet');
    }, { timeout: 60_000, interval: 200 });
    url = daemon.httpUrl()!;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  });

  afterAll(async () => {
    await browser?.close();
    await daemon?.kill9();
    if (stateDir) await stopInstances(stateDir, quiet);
    await registry?.close();
    await pgs?.destroy();
    repo?.cleanup();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  const row = (id: string) => page.locator(`tr:has(a[href="/projects/${id}"] strong)`);

  it('logs in through the form, lists the fleet, follows a commit, shows a project, and keeps a screenshot', async () => {
    await page.goto(`${url}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.fill('input[name="token"]', 'not-the-token');
    await page.click('button[type="submit"]');
    await expect.poll(() => page.locator('[role="alert"]').textContent()).toContain('That is not the operator token');

    await page.fill('input[name="token"]', TOKEN);
    await page.click('button[type="submit"]');
    await page.waitForURL(`${url}/`);
    const cookie = (await page.context().cookies()).find((c) => c.name === 'fleet_operator');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    // The page has no script of its own, and the project's own words stay words.
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.locator('img').count()).toBe(0);
    expect(await row('blog').textContent()).toContain(HOSTILE);
    expect(await row('blog').locator('td').nth(1).textContent()).toBe('running');
    expect(await row('blog').locator('td').nth(2).textContent()).toMatch(/^healthy for \d+[smhd]$/);
    expect(await row('shop').locator('td').nth(1).textContent()).toBe('running');
    expect(await row('blog').locator('a[href="http://www.blog.localhost:8080/"]').count()).toBe(1);

    // A commit stops blog: the page refreshes itself (meta refresh) and shows it; nobody reloads it.
    writeProject(repo, 'blog', { manifest: { displayName: HOSTILE, aliases: ['www.blog.localhost'], state: 'stopped' } });
    const stopped = repo.commit('stop blog');
    await expect.poll(() => row('blog').locator('td').nth(1).textContent(), { timeout: 60_000, interval: 500 }).toBe('stopped');
    expect(await row('blog').locator('td').nth(3).textContent()).toBe(stopped.slice(0, 7));
    expect(await page.locator('table').last().textContent()).toContain('stop');
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'dashboard-fleet.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);

    await page.click('a[href="/projects/shop"] strong');
    await page.waitForURL(`${url}/projects/shop`);
    expect(await page.locator('h1').textContent()).toBe('shop');
    expect(await page.locator('pre').textContent()).toContain('STAND-IN');
    expect(await page.locator('table').nth(2).textContent()).toContain('create');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-project.png'), fullPage: true });

    await page.click('button:has-text("Log out")');
    await page.waitForURL(/\/login$/);
    await page.goto(`${url}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
  }, 120_000);
});
