/**
 * Registration of the Event Hub function: Defender's continuous export in, routing decisions out.
 * Registration and adaptation only; the work is in src/host/eventHubBatch.ts and src/pipeline/.
 *
 * - `cardinality: 'many'` with `dataType: 'binary'`: without dataType the host binds bodies as JSON and one
 *   invalid body fails the whole invocation before our code runs (functions-runtime.md). `binary`, not
 *   `string`: the library JSON-parses every string body it can (`fromRpcTypedData`), so with `string` the
 *   pipeline got parsed objects, serialised each record again for Splunk and kept its parsed tree until the
 *   batch was delivered. Bytes arrive as Buffers, which the handler turns into their text, as files are
 *   read. Binary also keeps an empty body in its place: for `string`, the host leaves empty strings out of
 *   the list (the Node.js worker does not ask for empty entries), and the bodies after one would no longer
 *   line up with the metadata arrays. Should a host hand over strings or objects instead, decode takes
 *   those too. `dataType` is not in
 *   the library's types for `app.eventHub`, hence `app.generic`.
 * - Retry `exponentialBackoff` with `maxRetryCount: -1`: the handler throws only when the quarantine store is
 *   unreachable, and the host checkpoints a failed batch once retries end, so retrying until the store is
 *   back is what keeps records from being lost. The partition waits meanwhile.
 * - An `appTerminate` hook sends the metrics recorded since the last export when the host shuts the worker
 *   down gracefully (a scale-in, a restart, a deployment).
 */
import { app, trigger } from '@azure/functions';
import { EVENTHUB_CONNECTION_SETTING } from '../src/config/appSettings.js';
import { createEventHubHandler } from '../src/host/eventHubBatch.js';
import { functionApp } from '../src/host/functionApp.js';
import { stopMetricsExport } from '../src/telemetry/azureMonitor.js';

// Settings, rules and destinations are checked when the app starts (and shared with the re-drive timer):
// a problem stops the app from registering, loud in the host's log, instead of failing every batch later.
const shared = await functionApp();

// `routing`: each invocation takes the rules current when it starts (a rules blob may have changed).
export const forwardDefenderExport = createEventHubHandler({
  routing: shared.routing,
  ledger: shared.ledger,
  quarantine: shared.quarantine,
});

app.hook.appTerminate(async () => {
  await stopMetricsExport();
});

app.generic('forwardDefenderExport', {
  trigger: trigger.generic({
    type: 'eventHubTrigger',
    connection: EVENTHUB_CONNECTION_SETTING,
    eventHubName: '%EVENTHUB_NAME%',
    consumerGroup: '%EVENTHUB_CONSUMER_GROUP%',
    cardinality: 'many',
    dataType: 'binary',
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
