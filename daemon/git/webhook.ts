// GitHub push webhooks: a signed "look again now". The daemon never trusts the payload's commit; it fetches
// and converges, so a lost or duplicated hook costs at most one poll interval or one extra fetch.
import { createHmac, timingSafeEqual } from 'node:crypto';

export type WebhookHeaders = Record<string, string | string[] | undefined>;

export interface WebhookResponse {
  status: 202 | 400 | 401;
  /** True when the daemon should kick a sync. */
  sync: boolean;
  /** JSON body to send back (GitHub shows it in the delivery log). */
  body: { ok: boolean; message: string };
}

const SIGNATURE = /^sha256=([0-9a-f]{64})$/i;

/** Checks GitHub's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, in constant time. */
export function verifySignature(secret: string, body: Buffer, header: string | undefined): boolean {
  // An empty secret would let anyone sign: treat it as "no hook configured".
  if (!secret || typeof header !== 'string') return false;
  const match = SIGNATURE.exec(header.trim());
  if (!match) return false;
  const given = Buffer.from(match[1], 'hex');
  const expected = createHmac('sha256', secret).update(body).digest();
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** What POST /hooks/git answers; `headers` as node gives them (any case is accepted). */
export function webhookResponse(secret: string, headers: WebhookHeaders, body: Buffer): WebhookResponse {
  if (!secret) {
    return reply(401, false, 'webhook secret is not configured on the daemon: set git.webhookSecret in fleet.yaml');
  }
  if (!verifySignature(secret, body, header(headers, 'x-hub-signature-256'))) {
    return reply(401, false, 'missing or wrong X-Hub-Signature-256: check the webhook secret on both sides');
  }
  const event = header(headers, 'x-github-event');
  if (!event) return reply(400, false, 'missing X-GitHub-Event header');
  if (event === 'ping') return reply(202, false, 'pong');
  if (event === 'push') return reply(202, true, 'sync scheduled');
  // Other events are acknowledged so GitHub does not mark the hook failing; they say nothing about the branch.
  return reply(202, false, `event ${event} ignored: only push triggers a sync`);
}

function header(headers: WebhookHeaders, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue;
    return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

function reply(status: WebhookResponse['status'], sync: boolean, message: string): WebhookResponse {
  return { status, sync, body: { ok: status === 202, message } };
}
