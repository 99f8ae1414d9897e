// GitHub's "create a commit status" endpoint (POST /repos/{owner}/{repo}/statuses/{sha}) as a local server speaking
// its wire protocol: the token in Authorization ("Bearer" or "token"), a JSON body with state/context/description/
// target_url validated as GitHub does (422 "Validation Failed"), 401 "Bad credentials", 404 for another repo, and
// 201 with the status object on success. Only GitHub's API cannot run here; everything else in the tests is real.
import http from 'node:http';

export interface FakeStatus {
  owner: string;
  repo: string;
  sha: string;
  state: string;
  context: string;
  description: string | null;
  target_url: string | null;
  headers: http.IncomingHttpHeaders;
}

export interface FakeGithub {
  url: string;
  statuses: FakeStatus[];
  /** Every request with the answer given. */
  requests: { method: string; path: string; status: number }[];
  close(): Promise<void>;
}

const STATES = new Set(['error', 'failure', 'pending', 'success']);

export async function startFakeGithub(o: { token: string; repository: string }): Promise<FakeGithub> {
  const statuses: FakeStatus[] = [];
  const requests: FakeGithub['requests'] = [];
  let id = 1;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (status: number, body: unknown) => {
        requests.push({ method: req.method ?? '', path: req.url ?? '', status });
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-github-media-type': 'github.v3; format=json' }).end(JSON.stringify(body));
      };
      const doc = 'https://docs.github.com/rest/commits/statuses#create-a-commit-status';
      const m = /^\/repos\/([^/]+)\/([^/]+)\/statuses\/([^/?]+)$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !m) return answer(404, { message: 'Not Found', documentation_url: doc });
      const auth = /^(?:Bearer|token) (\S+)$/.exec(req.headers.authorization ?? '');
      if (!auth || auth[1] !== o.token) return answer(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
      const [, owner, repo, sha] = m;
      if (`${owner}/${repo}` !== o.repository) return answer(404, { message: 'Not Found', documentation_url: doc });
      let body: any;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return answer(400, { message: 'Problems parsing JSON', documentation_url: doc });
      }
      const errors: { resource: string; field: string; code: string }[] = [];
      if (!STATES.has(body?.state)) errors.push({ resource: 'Status', field: 'state', code: 'custom' });
      if (body?.description != null && (typeof body.description !== 'string' || body.description.length > 140)) errors.push({ resource: 'Status', field: 'description', code: 'custom' });
      if (body?.context != null && typeof body.context !== 'string') errors.push({ resource: 'Status', field: 'context', code: 'custom' });
      if (!/^[0-9a-f]{40}$/.test(sha)) return answer(422, { message: `No commit found for SHA: ${sha}`, documentation_url: doc });
      if (errors.length) return answer(422, { message: 'Validation Failed', errors, documentation_url: doc });
      const now = new Date().toISOString();
      const s: FakeStatus = { owner, repo, sha, state: body.state, context: body.context ?? 'default', description: body.description ?? null, target_url: body.target_url ?? null, headers: req.headers };
      statuses.push(s);
      answer(201, {
        url: `https://api.github.com/repos/${owner}/${repo}/statuses/${sha}`, id: id++, node_id: 'SC_fake', state: s.state,
        description: s.description, target_url: s.target_url, context: s.context, created_at: now, updated_at: now,
        creator: { login: 'fleet-bot', id: 1, type: 'Bot' },
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, statuses, requests, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}
