// Test images without a registry: a rootfs tarball with /usr/bin/node, the libraries `ldd` lists and one
// server script, imported with `podman import`. Cached by a digest label, rebuilt when the script changes.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { TestPodman } from './podman.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const STANDIN = join(ROOT, 'daemon/dev/standin.mjs');

/**
 * `tiny`: answers GET /ready and /health with 200 and echoes `MARK` from its env at `/`; no database needed, so
 * it runs on a private network. `standin`: the fleet's stand-in instance bundled with `pg` into one file.
 */
export type TestImageKind = 'tiny' | 'standin';

const TINY_SERVER = `import { createServer } from 'node:http';
const port = Number(process.env.PORT ?? 3000);
createServer((req, res) => {
  if (req.url === '/ready' || req.url === '/health') { res.writeHead(200); res.end('OK'); return; }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ mark: process.env.MARK ?? null }));
}).listen(port, process.env.HOST ?? '0.0.0.0', () => console.log('tiny test server on ' + port));
process.on('SIGTERM', () => process.exit(0));
`;

export async function buildTestImage(podman: TestPodman, kind: TestImageKind = 'tiny'): Promise<string> {
  const tag = `localhost/fleet-${kind}:test`;
  const script = kind === 'tiny' ? TINY_SERVER : await bundleStandin();
  const digest = createHash('sha256').update(kind).update(script).update(process.version).digest('hex').slice(0, 16);
  if ((await imageDigest(podman, tag)) === digest) return tag;

  const dir = mkdtempSync(join(tmpdir(), 'fleet-image-'));
  try {
    const rootfs = join(dir, 'rootfs');
    copyNodeWithLibraries(rootfs);
    mkdirSync(join(rootfs, 'app'), { recursive: true });
    mkdirSync(join(rootfs, 'tmp'), { recursive: true, mode: 0o1777 });
    writeFileSync(join(rootfs, 'app/server.mjs'), script);
    const tarball = join(dir, 'rootfs.tar');
    execFileSync('tar', ['-C', rootfs, '-cf', tarball, '.']);
    await podman.cli([
      'import',
      '--change', 'CMD ["/usr/bin/node", "/app/server.mjs"]',
      '--change', 'WORKDIR /app',
      '--change', `LABEL fleet.test.digest=${digest}`,
      tarball,
      tag,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return tag;
}

async function imageDigest(podman: TestPodman, tag: string): Promise<string | null> {
  try {
    const out = await podman.cli(['image', 'inspect', '--format', '{{index .Labels "fleet.test.digest"}}', tag]);
    return out.trim() || null;
  } catch {
    return null; // not there yet
  }
}

function copyNodeWithLibraries(rootfs: string): void {
  const node = '/usr/bin/node';
  const libs = execFileSync('ldd', [node], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /(\/\S+)\s+\(0x/.exec(line)?.[1])
    .filter((p): p is string => Boolean(p));
  for (const file of [node, ...libs]) {
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

