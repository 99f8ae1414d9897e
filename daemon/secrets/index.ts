// The secret store registry: an explicit map from fleet.yaml's `secretStore.type` to its constructor.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { FleetError } from '../core/errors.ts';
import type { FleetConfig } from '../core/types.ts';
import { createLocalSecretStore } from './local.ts';
import { createSsmSecretStore } from './ssm.ts';
import type { FleetSecretStore } from './refs.ts';

export { createLocalSecretStore } from './local.ts';
export { createSsmSecretStore } from './ssm.ts';
export { generateSecret, generatePassword } from './generate.ts';
export { secretRef, resolveRef, checkRef, projectPath, type FleetSecretStore, type SecretInfo } from './refs.ts';

export interface SecretStoreContext {
  /** The daemon's state folder; the local store keeps its files in `<stateDir>/secrets`. */
  stateDir: string;
  log: Logger;
}

type StoreConfig = FleetConfig['secretStore'];

const stores: Record<string, (config: StoreConfig, ctx: SecretStoreContext) => FleetSecretStore> = {
  local: (config, ctx) => createLocalSecretStore({ dir: join(ctx.stateDir, 'secrets'), prefix: config.prefix }),
  ssm: (config, ctx) =>
    createSsmSecretStore({
      region: config.region,
      endpoint: config.endpoint,
      prefix: config.prefix,
      log: ctx.log.child({ component: 'secrets' }),
    }),
};

export function createSecretStore(config: StoreConfig, ctx: SecretStoreContext): FleetSecretStore {
  const make = Object.hasOwn(stores, config.type) ? stores[config.type] : undefined;
  if (!make) {
    throw new FleetError('UNKNOWN_COMPONENT', `unknown secret store "${config.type}"; known: ${Object.keys(stores).join(', ')}`);
  }
  return make(config, ctx);
}
