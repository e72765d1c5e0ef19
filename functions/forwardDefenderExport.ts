/**
 * Registration of the Event Hub function: Defender's continuous export in, routing decisions out.
 * Registration and adaptation only; the work is in src/host/eventHubBatch.ts and src/pipeline/.
 *
 * - `cardinality: 'many'` with `dataType: 'string'`: without dataType the host binds bodies as JSON and one
 *   invalid body fails the whole invocation before our code runs (functions-runtime.md). `dataType` is not
 *   in the library's types for `app.eventHub`, hence `app.generic`.
 * - Retry `exponentialBackoff` with `maxRetryCount: -1`: the handler throws only when the quarantine store is
 *   unreachable, and the host checkpoints a failed batch once retries end, so retrying until the store is
 *   back is what keeps records from being lost. The partition waits meanwhile.
 */
import { app, trigger } from '@azure/functions';
import { EVENTHUB_CONNECTION_SETTING, readFunctionSettings } from '../src/config/appSettings.js';
import { createEventHubHandler } from '../src/host/eventHubBatch.js';
import { createDelivery } from '../src/delivery/deliver.js';
import { DEFAULT_RETRY_POLICY } from '../src/delivery/retry.js';
import { createHttpClient } from '../src/sinks/http.js';
import { createSinks } from '../src/sinks/registry.js';
import { createBlobDeadLetterStore } from '../src/storage/blobDeadLetters.js';
import { createBlobLedger } from '../src/storage/blobLedger.js';
import { loadRulesFile } from '../src/routing/load.js';
import { createBlobQuarantineStore } from '../src/storage/blobQuarantine.js';

// Settings and rules are checked when the app starts: a bad setting or a rules file that does not load
// stops the app from registering (loud in the host's log), instead of failing every batch later.
// Destinations are built here too: an unset ${ENV} secret or a bad URL is reported at start-up.
const settings = readFunctionSettings();
const rules = await loadRulesFile(settings.routesFile);
const sinks = createSinks(rules, { env: process.env, http: createHttpClient() });
const connectionString = settings.storageConnectionString;
// One ledger in blob storage for every instance, retry and re-run: people are notified once.
const ledger = createBlobLedger({ connectionString, containerName: settings.ledgerContainer });

export const forwardDefenderExport = createEventHubHandler({
  rules,
  ledger,
  quarantine: createBlobQuarantineStore({ connectionString, containerName: settings.quarantineContainer }),
  delivery: createDelivery({
    rules,
    sinks,
    ledger,
    deadLetters: createBlobDeadLetterStore({ connectionString, containerName: settings.deadLetterContainer }),
    policy: { ...DEFAULT_RETRY_POLICY, maxTotalMs: settings.deliveryBudgetMs },
  }),
});

app.generic('forwardDefenderExport', {
  trigger: trigger.generic({
    type: 'eventHubTrigger',
    connection: EVENTHUB_CONNECTION_SETTING,
    eventHubName: '%EVENTHUB_NAME%',
    consumerGroup: '%EVENTHUB_CONSUMER_GROUP%',
    cardinality: 'many',
    dataType: 'string',
  }),
  retry: {
    strategy: 'exponentialBackoff',
    maxRetryCount: -1,
    minimumInterval: { seconds: 5 },
    maximumInterval: { minutes: 5 },
  },
  handler: async (events, context) => {
    await forwardDefenderExport(events, context);
  },
});
