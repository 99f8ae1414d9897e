// For a laptop run: print the URLs of running projects whenever that list changes.
import type { Daemon } from '../daemon/daemon.ts';
import type { FleetConfig } from '../daemon/core/types.ts';

export function printUrlsOnChange(daemon: Daemon, fleet: FleetConfig): () => void {
  const port = fleet.gateway.listen.split(':').pop();
  let last = '';
  const timer = setInterval(async () => {
    const rows = await daemon.registry.list().catch(() => null);
    if (!rows) return;
    const lines = rows
      .filter((r) => r.status === 'running' && r.hostname && r.manifest)
      .map((r) => `  ${r.id.padEnd(16)} http://${r.hostname}:${port}/   (direct: http://${r.upstream}/)`);
    const text = lines.join('\n');
    if (text !== last) {
      last = text;
      console.log(lines.length ? `running projects:\n${text}` : 'no project is running yet');
    }
  }, 1000);
  timer.unref();
  return () => clearInterval(timer);
}
