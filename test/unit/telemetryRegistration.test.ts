/**
 * The Function app as the host loads it (functions/*.ts through the functions-core shim), with
 * APPLICATIONINSIGHTS_CONNECTION_STRING set: the metrics of an invocation reach Application Insights (an
 * ingestion stand-in) when the host shuts the worker down (`appTerminate`), without waiting for the export
 * interval.
 */
import { InvocationContext } from '@azure/functions';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { METRIC } from '../../src/telemetry/metrics.js';
import { startAppInsightsReceiver, type AppInsightsReceiver } from '../support/appInsightsReceiver.js';
import { randomContainerName } from '../support/azurite.js';
import { installFunctionsCoreShim } from '../support/functionsCore.js';
import { startHecReceiver, type HecReceiver } from '../support/hecReceiver.js';

process.env['APPLICATION_INSIGHTS_NO_STATSBEAT'] = 'true'; // the exporter's usage telemetry: never from a test
const shim = installFunctionsCoreShim();
const root = path.resolve(import.meta.dirname, '../..');
const connectionString = inject('azuriteConnectionString');
const TOKEN = '0a0b0c0d-0000-4000-8000-00000000cafe';
const containers = [randomContainerName('tr-q'), randomContainerName('tr-dl'), randomContainerName('tr-l')];

let hec: HecReceiver;
let insights: AppInsightsReceiver;
beforeAll(async () => {
  [hec, insights] = await Promise.all([startHecReceiver({ token: TOKEN }), startAppInsightsReceiver()]);
});
afterAll(async () => {
  shim.uninstall();
  await Promise.all([hec.stop(), insights.close()]);
  const service = BlobServiceClient.fromConnectionString(connectionString);
  await Promise.all(containers.map((name) => service.getContainerClient(name).deleteIfExists()));
});

describe('metrics of the registered Function app', () => {
  it('are sent when the host terminates the app, not only every export interval', async () => {
    const [quarantine = '', deadLetters = '', ledger = ''] = containers;
    Object.assign(process.env, {
      EVENTHUB_NAME: 'defender-export',
      EVENTHUB_CONSUMER_GROUP: 'forwarder',
      EVENTHUB_CONNECTION: 'Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=placeholder',
      ROUTES_FILE: path.join(root, 'config/routes.example.yaml'),
      AzureWebJobsStorage: connectionString,
      QUARANTINE_CONTAINER: quarantine,
      DEADLETTER_CONTAINER: deadLetters,
      LEDGER_CONTAINER: ledger,
      HEC_URL: hec.url,
      HEC_TOKEN: TOKEN,
      ONCALL_TEAMS_URL: 'http://127.0.0.1:9/teams?sig=test',
      PLATFORM_TEAMS_URL: 'http://127.0.0.1:9/platform?sig=test',
      SMTP_URL: 'smtp://127.0.0.1:9',
      APPLICATIONINSIGHTS_CONNECTION_STRING: insights.connectionString,
      OTEL_METRIC_EXPORT_INTERVAL: '3600000', // an hour: only the shutdown can send within this test
    });
    await import('../../functions/forwardDefenderExport.js');
    const context = new InvocationContext({
      invocationId: 'terminate-1',
      functionName: 'forwardDefenderExport',
      logHandler: () => undefined,
      triggerMetadata: { partitionContext: { partitionId: '1' }, sequenceNumberArray: [1], enqueuedTimeUtcArray: [new Date().toISOString()] },
    });
    await shim.registration('forwardDefenderExport').callback(['{not json'], context);
    expect(insights.envelopes).toHaveLength(0);

    const terminate = shim.hooks.filter((hook) => hook.hookName === 'appTerminate');
    expect(terminate).toHaveLength(1);
    await terminate[0]?.callback({});
    expect(insights.total(METRIC.received, { host: 'function' })).toBe(1);
    expect(insights.total(METRIC.quarantined, { host: 'function', reason: 'not-json' })).toBe(1);
  });
});
