// The dashboard's routes over a real fleet (real Postgres, git, process driver and stand-in instances), served by
// a real HTTP server: login and logout, the redirect without the token, the pages' data, and no secret on a page.
import http from 'node:http';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboard } from '../../daemon/dashboard/routes.ts';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';

const TOKEN = 'op-token-for-the-dashboard-test-9f8e7d';
let f: TestFleet;
let server: http.Server;
let base: string;

interface Answer { status: number; headers: Headers; body: string }

async function get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${base}${path}`, { headers, redirect: 'manual' });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

async function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST', body: new URLSearchParams(form), redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

const asOperator = { cookie: `fleet_operator=${encodeURIComponent(TOKEN)}` };

beforeAll(async () => {
  f = await createFleet();
  writeProject(f.repo, 'blog', { manifest: { displayName: '<img src=x onerror=alert(1)> Blog', aliases: ['www.blog.localhost'] } });
  writeProject(f.repo, 'shop');
  const c1 = f.repo.commit('add blog and shop');
  const running = await f.boot();
  await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c1 && p.lastHealth?.ok === true);
  await f.until('shop', (p) => p.status === 'running' && p.appliedCommit === c1);
  const route = createDashboard({
    registry: running.daemon.registry, log: pino({ level: 'silent' }),
    operatorToken: TOKEN, last: () => running.daemon.last, dashboard: { driver: running.driver, links: { scheme: 'http', port: 8080 } },
  });
  server = http.createServer((req, res) => {
    route(req, res, new URL(req.url ?? '/', 'http://x')).then((done) => { if (!done) res.writeHead(404).end('not mine'); },
      (err) => res.writeHead(500).end(String(err)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await f?.destroy();
});

describe('dashboard routes', () => {
  it('sends a browser without the token to the login form, keeping where it wanted to go', async () => {
    expect(await get('/')).toMatchObject({ status: 303 });
    expect((await get('/')).headers.get('location')).toBe('/login?next=%2F');
    expect((await get('/projects/blog')).headers.get('location')).toBe('/login?next=%2Fprojects%2Fblog');
    expect((await get('/', { cookie: 'fleet_operator=wrong' })).status).toBe(303);
    const login = await get('/login?next=%2Fprojects%2Fblog');
    expect(login.status).toBe(200);
    expect(login.body).toContain('<form method="post" action="/login">');
    expect(login.body).toContain('name="next" value="/projects/blog"');
    expect(login.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  it('refuses a wrong token without a cookie, and sets an HttpOnly SameSite=Strict cookie for the right one', async () => {
    const wrong = await post('/login', { token: 'nope', next: '/' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    expect(wrong.body).toContain('That is not the operator token.');
    const right = await post('/login', { token: TOKEN, next: '/projects/shop' });
    expect(right.status).toBe(303);
    expect(right.headers.get('location')).toBe('/projects/shop');
    expect(right.headers.get('set-cookie')).toBe(`fleet_operator=${encodeURIComponent(TOKEN)}; HttpOnly; SameSite=Strict; Path=/`);
    // Never back to another origin, whatever `next` says.
    for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example', '/projects/../../x']) {
      expect((await post('/login', { token: TOKEN, next })).headers.get('location'), next).toBe('/');
    }
    const out = await post('/logout', {}, asOperator);
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
  });

  it('lists the fleet with state, health, applied commit, links and events; the display name stays text', async () => {
    const page = await get('/', asOperator);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.body).toContain('<meta http-equiv="refresh" content="5">');
    expect(page.body).toContain('<a href="/projects/blog"><strong>blog</strong></a>');
    expect(page.body).toContain('&lt;img src=x onerror=alert(1)&gt; Blog');
    expect(page.body).not.toContain('<img');
    expect(page.body).toMatch(/healthy for \d+[smhd]/);
    expect(page.body).toContain('<a href="http://www.blog.localhost:8080/">www.blog.localhost</a>');
    expect(page.body).toContain(`<code>${(await f.project('blog'))!.appliedCommit!.slice(0, 7)}</code>`);
    expect(page.body).toMatch(/<td>create<\/td>/);
    // The bearer header works as well as the cookie (scripts and curl).
    expect((await get('/', { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
  });

  it('shows a project\'s events and the last lines of its instance log, and 404 for an unknown project', async () => {
    const page = await get('/projects/shop', asOperator);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<h1>shop</h1>');
    expect(page.body).toMatch(/<td>create<\/td>/);
    expect(page.body).toContain('*** STAND-IN: this is the atomo-fleet stand-in instance');
    const missing = await get('/projects/%3Cb%3Enope', asOperator);
    expect(missing.status).toBe(404);
    expect(missing.body).toContain('No project "&lt;b&gt;nope" in the registry.');
    expect((await get('/projects/%E0%A4%A', asOperator)).status).toBe(404);
  });

  it('never shows a secret value', async () => {
    const secrets = await f.running!.secrets.getMany(['/atomo/blog/DATABASE_URL', '/atomo/blog/JWT_SECRET', '/atomo/shop/JWT_SECRET']);
    const password = decodeURIComponent(new URL(secrets['/atomo/blog/DATABASE_URL']).password);
    const pages = [await get('/', asOperator), await get('/projects/blog', asOperator), await get('/projects/shop', asOperator)];
    for (const p of pages) {
      for (const v of [password, secrets['/atomo/blog/JWT_SECRET'], secrets['/atomo/shop/JWT_SECRET']]) expect(p.body).not.toContain(v);
    }
  });

  it('leaves every other path to the other route modules', async () => {
    expect((await get('/status', asOperator)).body).toBe('not mine');
    expect((await get('/projects/blog/x', asOperator)).body).toBe('not mine');
    expect((await post('/', {}, asOperator)).body).toBe('not mine');
  });
});
