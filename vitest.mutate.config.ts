// Vitest for `npm run mutate` only: the fast unit files that pin the pure modules Stryker mutates (no Postgres, Caddy,
// child processes or git daemons), so each of the thousands of mutant runs takes milliseconds.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/plan.test.ts',
      'test/plan-edges.test.ts',
      'test/manifest.test.ts',
      'test/rules-edges.test.ts',
      'test/gateway-render.test.ts',
      'test/render-edges.test.ts',
      'test/instance-spec.test.ts',
      'test/instance-spec-edges.test.ts',
      'test/canonical.test.ts',
      'test/backoff.test.ts',
      'test/refs-edges.test.ts',
      'test/secrets-local.test.ts',
    ],
    testTimeout: 60_000,
    pool: 'forks',
  },
});
