import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default'],
    // `npm test` runs both; `npx vitest run --project apps` runs the real-app tests alone.
    projects: [
      {
        extends: true,
        test: { name: 'unit+integration', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, 'test/apps/**'] },
      },
      {
        // Real apps nobody here wrote (Node-RED, Radicale, Prometheus) behind the gateway, end to end.
        extends: true,
        test: { name: 'apps', include: ['test/apps/**/*.test.ts'], hookTimeout: 120_000 },
      },
    ],
  },
});
