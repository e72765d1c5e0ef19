import { configDefaults, defineConfig } from 'vitest/config';

// The HTTPS stand-ins (Application Insights ingestion) use test/support/tls/localhost.crt. Node reads
// NODE_EXTRA_CA_CERTS when a process starts, so it is set here, before the test processes are forked; the
// command-line processes the tests spawn inherit it.
process.env['NODE_EXTRA_CA_CERTS'] = new URL('./test/support/tls/localhost.crt', import.meta.url).pathname;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The fault-injection suite runs on its own: `npm run test:faults` (vitest.faults.config.ts).
    exclude: [...configDefaults.exclude, 'test/faults/**'],
    // One Azurite for the run; tests read its connection string with inject('azuriteConnectionString').
    globalSetup: ['test/support/globalSetup.ts'],
    testTimeout: 20_000,
    // Child processes, one per test file: module state (such as @azure/functions' cached look-up of the
    // worker's core module, see test/support/functionsCore.ts) never leaks from one file to the next.
    pool: 'forks',
  },
});
