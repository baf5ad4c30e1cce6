#!/usr/bin/env node
// Built dist/ when present (npm package, `npm run build`); otherwise the TypeScript sources, which Node 24
// runs by stripping types — so a clean clone works right after `npm install`, before any build.
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli/main.js', import.meta.url);
const source = new URL('../src/cli/main.ts', import.meta.url);
const { main } = await import(existsSync(built) ? built.href : source.href);

process.exitCode = await main(process.argv.slice(2));
