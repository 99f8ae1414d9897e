#!/usr/bin/env node
// The `fleet` command: runs the TypeScript CLI through tsx, so `npx fleet` works without a build step.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('./fleet.ts');
runCli();
