// The delivery queue against a real local HTTP server: in order, retried with backoff on 5xx, Retry-After obeyed,
// a 4xx given up at once, and bounded (the oldest dropped when full).
import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import { createLogger } from '../daemon/log.ts';
import { DeliveryQueue } from '../daemon/notify/queue.ts';
import { postJson } from '../daemon/notify/send.ts';
import { jsonBody, slackBody } from '../daemon/notify/render.ts';

const log = createLogger({ level: 'silent' });
let servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers) { s.closeAllConnections(); await new Promise((r) => s.close(r)); }
  servers = [];
});

/** A server answering each request with the next scripted reply (then 200), recording the bodies. */
async function serve(replies: { status: number; headers?: Record<string, string> }[]): Promise<{ url: string; bodies: any[]; statuses: number[] }> {
  const bodies: any[] = [];
  const statuses: number[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const r = replies.shift() ?? { status: 200 };
      bodies.push(JSON.parse(raw));
      statuses.push(r.status);
      res.writeHead(r.status, r.headers).end();
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, bodies, statuses };
}

describe('DeliveryQueue', () => {
  it('delivers in order, retrying a 500 with backoff before the next message goes', async () => {
    const s = await serve([{ status: 500 }, { status: 502 }]);
    const results: string[] = [];
    const q = new DeliveryQueue({ receiver: 't', log, baseMs: 10, capMs: 50, onResult: (r) => results.push(r) });
    for (const n of [1, 2, 3]) q.push({ what: `m${n}`, send: () => postJson(s.url, { n }) });
    await expect.poll(() => s.statuses.filter((x) => x === 200).length).toBe(3);
    expect(s.bodies.map((b) => b.n)).toEqual([1, 1, 1, 2, 3]);
    expect(results).toEqual(['retried', 'retried', 'sent', 'sent', 'sent']);
    q.close();
  });

  it('obeys Retry-After over its own backoff (which would wait a minute here)', async () => {
    const s = await serve([{ status: 429, headers: { 'retry-after': '0' } }]);
    const q = new DeliveryQueue({ receiver: 't', log, baseMs: 60_000, capMs: 60_000 });
    q.push({ what: 'm', send: () => postJson(s.url, { n: 1 }) });
    await expect.poll(() => s.statuses).toEqual([429, 200]);
    q.close();
  });

  it('gives up a 4xx at once, and a 5xx after its attempts; the queue goes on', async () => {
    const s = await serve([{ status: 404 }, { status: 500 }, { status: 500 }]);
    const results: string[] = [];
    const q = new DeliveryQueue({ receiver: 't', log, baseMs: 5, capMs: 5, attempts: 2, onResult: (r) => results.push(r) });
    for (const n of [1, 2, 3]) q.push({ what: `m${n}`, send: () => postJson(s.url, { n }) });
    await expect.poll(() => results.length).toBe(4);
    expect(results).toEqual(['dropped', 'retried', 'dropped', 'sent']);
    expect(s.bodies.map((b) => b.n)).toEqual([1, 2, 2, 3]);
  });

  it('is bounded: a full queue drops the oldest message', async () => {
    const results: string[] = [];
    const sent: number[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const q = new DeliveryQueue({ receiver: 't', log, max: 2, onResult: (r) => results.push(r) });
    // The first send waits at the gate, so the next ones queue up behind it.
    for (const n of [1, 2, 3, 4]) q.push({ what: `m${n}`, send: async () => { await gate; sent.push(n); return { ok: true }; } });
    // m1 is in flight; m2 and m3 were dropped in turn for the newer ones.
    expect(q.length).toBe(2);
    open();
    await expect.poll(() => q.length).toBe(0);
    expect(results).toEqual(['dropped', 'dropped', 'sent', 'sent']);
    expect(sent).toEqual([1, 4]);
  });
});

describe('bodies', () => {
  const notice = { event: 'project_failed' as const, project: 'blog', commit: 'a'.repeat(40), status: 'failed', reason: 'Stalled: <b> & postgres://u:hunter2@db/x' };

  it('JSON: versioned, the notice and a text line; connection passwords scrubbed', () => {
    const body = jsonBody(notice, { fleet: 'https://github.com/acme/fleet.git' }, new Date('2026-01-01T00:00:00Z'));
    expect(body).toMatchObject({ version: 1, event: 'project_failed', project: 'blog', fleet: 'https://github.com/acme/fleet.git', at: '2026-01-01T00:00:00.000Z' });
    expect(JSON.stringify(body)).not.toContain('hunter2');
  });

  it('Slack: text and blocks, with &, < and > escaped', () => {
    const body = slackBody(notice, { fleet: 'fleet' }) as { text: string; blocks: any[] };
    expect(body.text).toMatch(/^:x: Project blog failed \(failed\): Stalled: &lt;b&gt; &amp; postgres:\/\/u:\*\*\*@db\/x$/);
    expect(body.blocks.map((b) => b.type)).toEqual(['section', 'context']);
  });
});
