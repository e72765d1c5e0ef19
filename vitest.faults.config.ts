import { defineConfig } from 'vitest/config';

/**
 * The fault-injection suite (`npm run test:faults`): thousands of generated records through the Event Hubs
 * stand-in, the standalone consumer and the Function handler while destinations, storage and the hub fail.
 * One file at a time: the runs are timed by the faults they inject and must not compete for the CPU.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    testTimeout: 300_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
