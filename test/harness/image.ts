// Test images without a registry: a rootfs tarball with /usr/bin/node and bash (the swarm driver's healthcheck
// runs it, as it would in atomo-server's Debian image), the libraries `ldd` lists and one server script, imported
// with `podman import` or `docker import` on each engine that runs it. The tag carries a digest of the content:
// a changed script is a new tag, an unchanged one is not imported again.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** An engine whose CLI can `import` and `image inspect` (podman, or docker against a private dockerd). */
export interface ImageEngine {
  cli(args: string[]): Promise<string>;
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const STANDIN = join(ROOT, 'daemon/dev/standin.mjs');

/**
 * `tiny`: answers GET /ready and /health with 200 and echoes `MARK` from its env at `/`; no database needed, so
 * it runs on a private network. `FAIL_START=1` makes it exit with code 3 at once, `NEVER_READY=1` answers /ready 503;
 * GET /schema returns the file at ATOMO_SCHEMA_PATH. `standin`: the fleet's stand-in instance bundled with `pg` into one file.
 */
export type TestImageKind = 'tiny' | 'standin';

const TINY_SERVER = `import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
const port = Number(process.env.PORT ?? 3000);
if (process.env.FAIL_START === '1') { console.error('tiny test server: FAIL_START=1, exiting'); process.exit(3); }
createServer((req, res) => {
  if (req.url === '/ready' && process.env.NEVER_READY === '1') { res.writeHead(503); res.end(); return; }
  if (req.url === '/ready' || req.url === '/health') { res.writeHead(200); res.end('OK'); return; }
  if (req.url === '/schema') { try { res.end(readFileSync(process.env.ATOMO_SCHEMA_PATH ?? '/app/schema.ts')); } catch { res.writeHead(404); res.end(); } return; }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ mark: process.env.MARK ?? null }));
}).listen(port, process.env.HOST ?? '0.0.0.0', () => console.log('tiny test server on ' + port));
process.on('SIGTERM', () => process.exit(0));
`;

export async function buildTestImage(engine: ImageEngine, kind: TestImageKind = 'tiny'): Promise<string> {
  const script = kind === 'tiny' ? TINY_SERVER : await bundleStandin();
  const digest = createHash('sha256').update(kind).update(script).update(process.version).update('bash').digest('hex').slice(0, 16);
  const tag = `localhost/fleet-${kind}:${digest}`;
  if (await imagePresent(engine, tag)) return tag;

  const dir = mkdtempSync(join(tmpdir(), 'fleet-image-'));
  try {
    const rootfs = join(dir, 'rootfs');
    copyWithLibraries(rootfs, '/usr/bin/node');
    copyWithLibraries(rootfs, '/usr/bin/bash');
    mkdirSync(join(rootfs, 'app'), { recursive: true });
    mkdirSync(join(rootfs, 'tmp'), { recursive: true, mode: 0o1777 });
    writeFileSync(join(rootfs, 'app/server.mjs'), script);
    const tarball = join(dir, 'rootfs.tar');
    execFileSync('tar', ['-C', rootfs, '-cf', tarball, '.']);
    await engine.cli([
      'import',
      '--change', 'CMD ["/usr/bin/node", "/app/server.mjs"]',
      '--change', 'WORKDIR /app',
      tarball,
      tag,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return tag;
}

async function imagePresent(engine: ImageEngine, tag: string): Promise<boolean> {
  try {
    await engine.cli(['image', 'inspect', '--format', '{{.Id}}', tag]);
    return true;
  } catch {
    return false; // not there yet
  }
}

function copyWithLibraries(rootfs: string, binary: string): void {
  const libs = execFileSync('ldd', [binary], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /(\/\S+)\s+\(0x/.exec(line)?.[1])
    .filter((p): p is string => Boolean(p));
  for (const file of [binary, ...libs]) {
    mkdirSync(join(rootfs, dirname(file)), { recursive: true });
    copyFileSync(file, join(rootfs, file)); // follows symlinks: the image gets the real files
  }
}

/** One ESM file with `pg` inside; `require` of node builtins from CommonJS deps goes through createRequire. */
async function bundleStandin(): Promise<string> {
  if (!existsSync(STANDIN)) throw new Error(`stand-in instance not found at ${STANDIN}`);
  const result = await build({
    entryPoints: [STANDIN],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    external: ['pg-native'],
    banner: { js: "import { createRequire as __fleetRequire } from 'node:module'; const require = __fleetRequire(import.meta.url);" },
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

