#!/usr/bin/env node
// Built dist/ when present (npm package, `npm run build`); otherwise the TypeScript sources, which Node 24
// runs by stripping types — so a clean clone works right after `npm install`, before any build.
import { existsSync } from 'node:fs';
import v8 from 'node:v8';

// In a gateway process V8's allocation-site pretenuring came to allocate per-request objects (node:http,
// undici) straight into the old generation: heap use grew ~8 MB per young-generation GC, each scavenge
// paused 10–45 ms, and a major GC followed every ~1.5 s (p99 ~30 ms against ~5 ms for a bare proxy).
// With it off, scavenges free everything in ~2 ms (measured with --trace-gc). Set before any module
// loads; every cluster worker runs this file too.
v8.setFlagsFromString('--no-allocation-site-pretenuring');

const built = new URL('../dist/cli/main.js', import.meta.url);
const source = new URL('../src/cli/main.ts', import.meta.url);
const { main } = await import(existsSync(built) ? built.href : source.href);

process.exitCode = await main(process.argv.slice(2));
