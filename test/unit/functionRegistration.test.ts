/**
 * The Event Hub function's registration as the host receives it, captured through the functions-core shim,
 * and the app settings it validates at start-up.
 */
import { InvocationContext } from '@azure/functions';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { readFunctionSettings, SettingsError } from '../../src/config/appSettings.js';
import { installFunctionsCoreShim } from '../support/functionsCore.js';

const shim = installFunctionsCoreShim();
afterAll(() => shim.uninstall());

const root = path.resolve(import.meta.dirname, '../..');
const GOOD_ENV = {
  EVENTHUB_NAME: 'defender-export',
  EVENTHUB_CONSUMER_GROUP: 'forwarder',
  EVENTHUB_CONNECTION: 'Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=placeholder',
  ROUTES_FILE: path.join(root, 'config/routes.example.yaml'),
  AzureWebJobsStorage: inject('azuriteConnectionString'),
};

describe('forwardDefenderExport registration', () => {
  it('registers an Event Hub trigger with cardinality many, dataType string, settings-driven names and an unbounded exponential retry', async () => {
    Object.assign(process.env, GOOD_ENV);
    await import('../../functions/forwardDefenderExport.js');
    const registration = shim.registration('forwardDefenderExport');
    expect(shim.triggerOf('forwardDefenderExport')).toMatchObject({
      type: 'eventHubTrigger',
      direction: 'in',
      connection: 'EVENTHUB_CONNECTION',
      eventHubName: '%EVENTHUB_NAME%',
      consumerGroup: '%EVENTHUB_CONSUMER_GROUP%',
      cardinality: 'many',
      dataType: 'string',
    });
    expect(registration.metadata.retryOptions).toMatchObject({
      retryStrategy: 'exponentialBackoff',
      maxRetryCount: -1,
      minimumInterval: { seconds: 5 },
      maximumInterval: { seconds: 300 },
    });
    expect(shim.registrations.map((r) => r.name)).toEqual(['forwardDefenderExport']);

    // The registered callback runs the pipeline: a valid alert and a body that is not JSON.
    const logs: string[] = [];
    const alert = readFileSync(path.join(root, 'samples/02-alert-k8s-node-crypto-miner.json'), 'utf8');
    const context = new InvocationContext({
      invocationId: 'registration-test',
      functionName: 'forwardDefenderExport',
      logHandler: (level, ...args) => logs.push(`${level} ${args.map(String).join(' ')}`),
      triggerMetadata: {
        partitionContext: { partitionId: '0' },
        sequenceNumberArray: [1, 2],
        enqueuedTimeUtcArray: ['2026-11-27T00:00:00Z', '2026-11-27T00:00:01Z'],
      },
    });
    await registration.callback([JSON.parse(alert), '{oops'], context);
    const done = logs.find((line) => line.includes('"batch.done"'));
    expect(done).toBeDefined();
    expect(JSON.parse((done ?? '').replace(/^information /, ''))).toMatchObject({
      records: 2,
      outcomes: { routed: 1, quarantined: 1 },
      delivered: { splunk: 1, 'oncall-teams': 1, 'oncall-email': 1, 'platform-teams': 1 },
    });
  });
});

describe('app settings', () => {
  it('accepts a connection string or an identity-based namespace for the trigger', () => {
    expect(readFunctionSettings(GOOD_ENV)).toMatchObject({ eventHubConnection: 'connectionString', quarantineContainer: 'quarantine' });
    const identity = { ...GOOD_ENV, EVENTHUB_CONNECTION: undefined, EVENTHUB_CONNECTION__fullyQualifiedNamespace: 'contoso.servicebus.windows.net' };
    expect(readFunctionSettings(identity).eventHubConnection).toBe('identity');
  });

  it('names every problem at once, and never echoes a secret', () => {
    const env = {
      EVENTHUB_CONSUMER_GROUP: '$Default',
      EVENTHUB_CONNECTION: 'SharedAccessKey=supersecretvalue',
      ROUTES_FILE: '/nonexistent/routes.yaml',
      AzureWebJobsStorage: 'not-a-connection-string-secret',
      QUARANTINE_CONTAINER: 'Bad_Name',
    };
    let error: unknown;
    try {
      readFunctionSettings(env);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SettingsError);
    const problems = (error as SettingsError).problems;
    expect(problems).toEqual([
      'EVENTHUB_NAME is not set: the name of the Event Hub Defender exports to',
      'EVENTHUB_CONSUMER_GROUP is $Default: create a consumer group for the forwarder so other readers do not steal its events',
      'EVENTHUB_CONNECTION is not an Event Hubs connection string (no Endpoint=sb://...)',
      'ROUTES_FILE points to /nonexistent/routes.yaml, which does not exist',
      'AzureWebJobsStorage is not a storage connection string (no AccountName= or BlobEndpoint=)',
      'QUARANTINE_CONTAINER "Bad_Name" may hold only lower-case letters, digits and hyphens',
    ]);
    expect((error as Error).message).not.toMatch(/supersecretvalue|not-a-connection-string-secret/);
  });
});
