// A real Postgres for tests: one embedded cluster per caller, in a temp folder, stopped and removed after.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbedded, type EmbeddedCluster } from '../../daemon/postgres/embedded.ts';
import { generatePassword } from '../../daemon/secrets/generate.ts';
import { freePort } from './ports.ts';

export interface TestPostgres extends EmbeddedCluster {
  /** Create a fresh database and return its URL (superuser). */
  database(name: string): Promise<string>;
  /** Stop the cluster and delete its files. */
  destroy(): Promise<void>;
}

export async function startPostgres(): Promise<TestPostgres> {
  // 0700: startEmbedded makes it traversable (0711) for the `postgres` user, never listable.
  const root = mkdtempSync(join(tmpdir(), 'fleet-pg-'));
  // A random superuser password, as in production: a test that leaks it shows up.
  const cluster = await startEmbedded({ dataDir: join(root, 'data'), port: await freePort(), password: generatePassword(), fast: true });
  return {
    ...cluster,
    async database(name: string) {
      const client = new pg.Client(cluster.url);
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end();
      }
      const url = new URL(cluster.url);
      url.pathname = `/${name}`;
      return url.toString();
    },
    async destroy() {
      await cluster.stop().catch(() => {});
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The error a connection attempt ends with (its SQLSTATE code and message), or null when it connects. */
export async function connectError(url: string): Promise<{ code?: string; message: string } | null> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    return null;
  } catch (err: any) {
    return { code: err.code, message: err.message };
  } finally {
    await c.end().catch(() => {});
  }
}
