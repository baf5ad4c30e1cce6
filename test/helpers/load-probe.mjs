// `node --import ./test/helpers/load-probe.mjs …`: writes `loaded <package>` to stderr the first time any
// module resolves into node_modules/<package>/ (ESM import, dynamic import() and require alike), so a test
// sees which packages a process really loaded, and when.
import { registerHooks } from 'node:module';

const seen = new Set();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(result.url);
    if (m && !seen.has(m[1])) {
      seen.add(m[1]);
      process.stderr.write(`loaded ${m[1]}\n`);
    }
    return result;
  },
});
