/**
 * Vitest global setup: ONE Azurite blob service for the whole run, shared by every test file through
 * `inject('azuriteConnectionString')` (tests isolate themselves with a fresh container each, see
 * `createTestContainer`). Fails the run loudly when Azurite does not come up within 15 s.
 */
import type { TestProject } from 'vitest/node';
import { startAzurite, type AzuriteServer } from './azurite.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Connection string of the shared Azurite (development account). */
    azuriteConnectionString: string;
    /** `http://127.0.0.1:<port>/devstoreaccount1` */
    azuriteBlobEndpoint: string;
  }
}

const START_TIMEOUT_MS = 15_000;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let azurite: AzuriteServer;
  try {
    azurite = await startAzurite({ startTimeoutMs: START_TIMEOUT_MS });
  } catch (error: unknown) {
    throw new Error(`globalSetup: the shared Azurite blob service did not start, so no test can run.`, { cause: error });
  }
  project.provide('azuriteConnectionString', azurite.connectionString);
  project.provide('azuriteBlobEndpoint', azurite.blobEndpoint);
  if (process.env['AZURITE_DEBUG'] !== undefined) {
    process.stderr.write(`globalSetup: Azurite on ${azurite.blobEndpoint}, ready in ${azurite.startupMs} ms\n`);
  }
  return async () => {
    const stopping = performance.now();
    await azurite.stop();
    if (process.env['AZURITE_DEBUG'] !== undefined) {
      process.stderr.write(`globalSetup: Azurite stopped in ${Math.round(performance.now() - stopping)} ms\n`);
    }
  };
}
