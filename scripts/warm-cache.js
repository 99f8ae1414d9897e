#!/usr/bin/env node
// Fills tsx's on-disk cache with every TypeScript module the `fleet` CLI and the daemon load (each command and its
// imports, and the drivers the daemon loads when fleet.yaml names them). A process that starts afterwards finds
// them all transformed and never starts esbuild, whose service would otherwise stay beside a long-running daemon
// for its whole life (about 20 MiB). The production image runs this once at build time, as the user it runs as.
import { readdirSync } from 'node:fs';
import { register } from 'tsx/esm/api';

register();
const here = new URL('./', import.meta.url);
const modules = [
  './fleet.ts',
  ...readdirSync(new URL('commands/', here)).filter((n) => n.endsWith('.ts')).map((n) => `./commands/${n}`),
  '../daemon/drivers/process.ts', '../daemon/drivers/docker.ts', '../daemon/drivers/swarm.ts',
];
for (const m of modules) await import(new URL(m, here).href);
console.log(`tsx cache warm: ${modules.length} entry modules and their imports`);
