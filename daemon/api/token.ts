// The operator token: read from the fleet's secret store at start, created there when absent. It is shown once,
// and only for a laptop store (local): the terminal then gets it, never the log (logs may be shipped elsewhere).
// A production store (SSM) gets a new token written and the log says where, never what.
import type { Logger } from 'pino';
import { generateSecret } from '../secrets/generate.ts';
import type { SecretStore } from '../core/types.ts';
import { OPERATOR_TOKEN_NAME } from './auth.ts';

/** `<prefix>/fleet/OPERATOR_TOKEN`: under the fleet's own path, which no project may reference. */
export function operatorTokenRef(prefix: string): string {
  return `${prefix.replace(/\/+$/, '')}/fleet/${OPERATOR_TOKEN_NAME}`;
}

export interface TokenOptions {
  secrets: SecretStore;
  prefix: string;
  /** Where a local store keeps its files, for the sentence that says where the token is. */
  where: string;
  log: Logger;
  /** Shows a newly created token to the person at the terminal (dev, local store only); absent: never shown. */
  announce?: (text: string) => void;
}

/** The operator token, created (and announced once, when asked to) when the store has none. */
export async function ensureOperatorToken(o: TokenOptions): Promise<string> {
  const ref = operatorTokenRef(o.prefix);
  if (await o.secrets.has(ref)) return o.secrets.get(ref);
  await o.secrets.put(ref, generateSecret(32));
  // Two daemons starting together may both have written one: the stored value is the one that counts.
  const token = await o.secrets.get(ref);
  o.log.info({ secret: ref, store: o.secrets.name }, `operator token created in the ${o.secrets.name} secret store at ${ref}`);
  o.announce?.([
    '',
    `operator token (shown once): ${token}`,
    `  kept in the ${o.secrets.name} secret store as ${ref} (${o.where}); the fleet CLI reads it from there.`,
    `  use it as: curl -H "Authorization: Bearer <token>" <daemon url>/api/v1/projects`,
    '',
  ].join('\n') + '\n');
  return token;
}
