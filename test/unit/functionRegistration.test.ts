/**
 * The Event Hub function's registration as the host receives it, captured through the functions-core shim,
 * and the app settings the app validates at start-up (the re-drive timer's: redriveRegistration.test.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ncrontabProblem, readFunctionSettings, SettingsError } from '../../src/config/appSettings.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { BlobServiceClient } from '@azure/storage-blob';
import { pathToFileURL } from 'node:url';
import { installFunctionsCoreShim } from '../support/functionsCore.js';
import { randomContainerName } from '../support/azurite.js';

const shim = installFunctionsCoreShim();
afterAll(() => shim.uninstall());

const root = path.resolve(import.meta.dirname, '../..');
const GOOD_ENV = {
  EVENTHUB_NAME: 'defender-export',
  EVENTHUB_CONSUMER_GROUP: 'forwarder',
  EVENTHUB_CONNECTION: 'Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=placeholder',
  ROUTES_FILE: path.join(root, 'config/routes.example.yaml'),
  AzureWebJobsStorage: inject('azuriteConnectionString'),
  QUARANTINE_CONTAINER: randomContainerName('registration'),
  // The example rules' destinations: loopback addresses nothing listens on (no record is delivered here:
  // the batch below is routed, and its deliveries fail fast and are dead-lettered).
  HEC_URL: 'http://127.0.0.1:9',
  HEC_TOKEN: '00000000-0000-0000-0000-000000000000',
  ONCALL_TEAMS_URL: 'http://127.0.0.1:9/teams?sig=test',
  PLATFORM_TEAMS_URL: 'http://127.0.0.1:9/platform?sig=test',
  SMTP_URL: 'smtp://127.0.0.1:9',
  DEADLETTER_CONTAINER: randomContainerName('registration-dl'),
  LEDGER_CONTAINER: randomContainerName('registration-ledger'),
  DELIVERY_BUDGET_SECONDS: '5',
};

describe('forwardDefenderExport registration', () => {
  it('registers an Event Hub trigger with cardinality many, dataType binary, settings-driven names and an unbounded exponential retry', async () => {
    Object.assign(process.env, GOOD_ENV);
    await import('../../functions/forwardDefenderExport.js');
    const registration = shim.registration('forwardDefenderExport');
    const trigger = shim.triggerOf('forwardDefenderExport');
    expect(trigger).toMatchObject({
      type: 'eventHubTrigger',
      direction: 'in',
      connection: 'EVENTHUB_CONNECTION',
      eventHubName: '%EVENTHUB_NAME%',
      consumerGroup: '%EVENTHUB_CONSUMER_GROUP%',
      cardinality: 'many',
      dataType: 'binary',
    });
    expect(registration.metadata.retryOptions).toMatchObject({
      retryStrategy: 'exponentialBackoff',
      maxRetryCount: -1,
      minimumInterval: { seconds: 5 },
      maximumInterval: { seconds: 300 },
    });
    expect(shim.registrations.map((r) => r.name)).toEqual(['forwardDefenderExport']);

    // The registered function runs the pipeline on what the host sends for its dataType (binary: the events'
    // bytes, which the library hands over as Buffers): a valid alert (pretty-printed, as in the samples), a
    // body that is not JSON, and a one-line alert that fails its schema, with numbers JSON.parse would change.
    const alert = readFileSync(path.join(root, 'samples/02-alert-k8s-node-crypto-miner.json'), 'utf8');
    const badLine = `{"SystemAlertId":42,"AlertType":"K8S.NODE_Test","Big":12345678901234567890,"Float":1.0}`;
    const json = (value: unknown): { json: string } => ({ json: JSON.stringify(value) });
    const logsBefore = shim.logs.length;
    const { inputs } = await shim.invoke('forwardDefenderExport', {
      invocationId: 'registration-test',
      bodies: [alert, '{oops', badLine],
      triggerMetadata: {
        PartitionContext: json({ PartitionId: '0', EventHubName: 'defender-export' }),
        SequenceNumberArray: { collectionSint64: { sint64: [1, 2, 3] } },
        OffsetArray: { collectionString: { string: ['4096', '8192', '12288'] } },
        EnqueuedTimeUtcArray: json(['2026-11-27T00:00:00Z', '2026-11-27T00:00:01Z', '2026-11-27T00:00:02Z']),
      },
    });
    expect(inputs).toHaveLength(1);
    const bodies = inputs[0] as unknown[];
    expect(bodies.map((body) => Buffer.isBuffer(body))).toEqual([true, true, true]);
    const logs = shim.logs.slice(logsBefore).filter((log) => log.category === 'user').map((log) => `${log.level} ${log.message}`);
    const done = logs.find((line) => line.includes('"run.summary"'));
    expect(done).toBeDefined();
    expect(JSON.parse((done ?? '').replace(/^information /, ''))).toMatchObject({
      host: 'function',
      received: 3,
      routed: 1,
      quarantined: 2,
      // Nothing listens at the destinations: every delivery is retried within the 5 s budget, then
      // dead-lettered in the container the settings name. Nothing is lost.
      delivered: {},
      deadLettered: { splunk: 1, 'oncall-teams': 1, 'oncall-email': 1, 'platform-teams': 1 },
    });
    const letters: string[] = [];
    const storage = BlobServiceClient.fromConnectionString(GOOD_ENV.AzureWebJobsStorage);
    for await (const blob of storage.getContainerClient(GOOD_ENV.DEADLETTER_CONTAINER).listBlobsFlat()) letters.push(blob.name.split('/')[0] ?? '');
    expect(letters.sort()).toEqual(['oncall-email', 'oncall-teams', 'platform-teams', 'splunk']);
    // The quarantine store the settings name got the two bad bodies, each exactly as it was sent (a library
    // that parsed the schema failure, as it does for dataType string, would have kept 12345678901234567000).
    const names: string[] = [];
    const quarantine = BlobServiceClient.fromConnectionString(GOOD_ENV.AzureWebJobsStorage).getContainerClient(GOOD_ENV.QUARANTINE_CONTAINER);
    for await (const blob of quarantine.listBlobsFlat()) names.push(blob.name);
    expect(names.sort()).toEqual(['2026/11/27/0-2.json', '2026/11/27/0-3.json']);
    const entry = async (blob: string): Promise<unknown> => JSON.parse((await quarantine.getBlobClient(blob).downloadToBuffer()).toString('utf8'));
    expect(await entry('2026/11/27/0-2.json')).toMatchObject({ input: 'eh:0/2', code: 'not-json', raw: '{oops' });
    expect(await entry('2026/11/27/0-3.json')).toMatchObject({ input: 'eh:0/3', code: 'schema', raw: badLine });
  });
});

describe('start-up of the compiled app (dist/functions, what the host loads)', () => {
  const entry = path.join(root, 'dist/functions/forwardDefenderExport.js');
  const start = (env: Record<string, string>): { status: number | null; stderr: string } => {
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(entry).href)});`], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      encoding: 'utf8',
    });
    return { status: result.status, stderr: result.stderr };
  };

  it('loads with good settings and rules', () => {
    const result = start(GOOD_ENV);
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.status).toBe(0);
  });

  it('loads with identity-based storage (no connection string): the credential is made, nothing is contacted yet', () => {
    const result = start({ ...GOOD_ENV, AzureWebJobsStorage: '', AzureWebJobsStorage__accountName: 'stdefenderfwd' });
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.status).toBe(0);
  });

  it('refuses to start when a setting is wrong, naming it', () => {
    const result = start({ ...GOOD_ENV, EVENTHUB_NAME: '' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('EVENTHUB_NAME is not set');
  });

  it('refuses to start when the rules file does not load, naming the key and line', () => {
    const folder = mkdtempSync(path.join(tmpdir(), 'df-rules-'));
    const rules = path.join(folder, 'routes.yaml');
    writeFileSync(rules, ['destinations:', '  s: {type: splunk-hec, url: "${U}", token: "${T}"}', 'routes:', '  - name: a', '    match: {}', '    to: [nope]', ''].join('\n'));
    const result = start({ ...GOOD_ENV, ROUTES_FILE: rules });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('routes.yaml:6: routes[0].to');
  });
});


describe('app settings', () => {
  it('accepts a connection string or an identity-based namespace for the trigger', () => {
    expect(readFunctionSettings(GOOD_ENV)).toMatchObject({ eventHubConnection: 'connectionString', quarantineContainer: GOOD_ENV.QUARANTINE_CONTAINER });
    expect(readFunctionSettings({ ...GOOD_ENV, QUARANTINE_CONTAINER: undefined }).quarantineContainer).toBe('quarantine');
    const identity = { ...GOOD_ENV, EVENTHUB_CONNECTION: undefined, EVENTHUB_CONNECTION__fullyQualifiedNamespace: 'contoso.servicebus.windows.net' };
    expect(readFunctionSettings(identity).eventHubConnection).toBe('identity');
  });

  it('reaches the forwarder\'s storage with a connection string or the app\'s identity, in a documented order', () => {
    expect(readFunctionSettings(GOOD_ENV).storage).toEqual({ kind: 'connectionString', setting: 'AzureWebJobsStorage', connectionString: GOOD_ENV.AzureWebJobsStorage });
    const host = { ...GOOD_ENV, AzureWebJobsStorage: undefined, AzureWebJobsStorage__accountName: 'stdefenderfwd' };
    expect(readFunctionSettings(host).storage).toEqual({ kind: 'identity', setting: 'AzureWebJobsStorage__accountName', accountUrl: 'https://stdefenderfwd.blob.core.windows.net' });
    // A separate account for the forwarder's blobs, with a user-assigned identity; it wins over the host's.
    const own = { ...host, FORWARDER_STORAGE__blobServiceUri: 'https://stforwarder.blob.core.windows.net/', FORWARDER_STORAGE__clientId: '0b6f1c2d-0000-4000-8000-000000000001' };
    expect(readFunctionSettings(own).storage).toEqual({
      kind: 'identity',
      setting: 'FORWARDER_STORAGE__blobServiceUri',
      accountUrl: 'https://stforwarder.blob.core.windows.net',
      clientId: '0b6f1c2d-0000-4000-8000-000000000001',
    });
    // A connection string for the forwarder wins over everything.
    expect(readFunctionSettings({ ...own, FORWARDER_STORAGE_CONNECTION: GOOD_ENV.AzureWebJobsStorage }).storage.kind).toBe('connectionString');
    expect(() => readFunctionSettings({ ...host, AzureWebJobsStorage__accountName: 'Not_An_Account' })).toThrow(/AzureWebJobsStorage__accountName must be a storage account name/);
    expect(() => readFunctionSettings({ ...host, AzureWebJobsStorage__accountName: undefined, AzureWebJobsStorage__blobServiceUri: 'ftp://x' })).toThrow(/__blobServiceUri must be an https:\/\/ URL/);
    expect(() => readFunctionSettings({ ...host, AzureWebJobsStorage__accountName: undefined })).toThrow(/storage: set FORWARDER_STORAGE_CONNECTION or AzureWebJobsStorage .* AzureWebJobsStorage__accountName/);
  });

  it('refuses a connection string the storage SDK cannot read, without repeating it', () => {
    const env = { ...GOOD_ENV, AzureWebJobsStorage: 'AccountName=x;BlobEndpoint=not a url;SharedAccessSignature=sv=secretsig' };
    expect(() => readFunctionSettings(env)).toThrow(/AzureWebJobsStorage cannot be read as a storage connection string/);
    expect(() => readFunctionSettings(env)).not.toThrow(/secretsig/);
    expect(() => readFunctionSettings({ ...GOOD_ENV, EVENTHUB_CONSUMER_GROUP: '$default' })).toThrow(/is \$Default/);
  });

  it('reads the re-drive settings, with their defaults', () => {
    expect(readFunctionSettings(GOOD_ENV)).toMatchObject({ redriveSchedule: '0 */5 * * * *', redriveMaxAgeMs: 7 * 24 * 3_600_000, redriveMinIntervalMs: 60_000 });
    expect(
      readFunctionSettings({ ...GOOD_ENV, REDRIVE_SCHEDULE: ' 0 0 */2 * * MON-FRI ', REDRIVE_MAX_AGE_HOURS: '36', REDRIVE_MIN_INTERVAL_SECONDS: '1.5' }),
    ).toMatchObject({ redriveSchedule: '0 0 */2 * * MON-FRI', redriveMaxAgeMs: 36 * 3_600_000, redriveMinIntervalMs: 1_500 });
  });

  it('refuses re-drive settings out of range or malformed, naming each', () => {
    let error: unknown;
    try {
      readFunctionSettings({ ...GOOD_ENV, REDRIVE_SCHEDULE: '0 */5 * * *', REDRIVE_MAX_AGE_HOURS: '0', REDRIVE_MIN_INTERVAL_SECONDS: 'soon' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as SettingsError).problems).toEqual([
      'REDRIVE_SCHEDULE "0 */5 * * *" must be an NCRONTAB expression with six fields (second minute hour day month day-of-week), such as "0 */5 * * * *"; it has 5',
      'REDRIVE_MAX_AGE_HOURS must be a number of hours from 1 to 8760 (a year); it is "0"',
      'REDRIVE_MIN_INTERVAL_SECONDS must be a number of seconds from 1 to 21600 (the widest spacing, 6 hours); it is "soon"',
    ]);
    expect(ncrontabProblem('0 */5 * * * *')).toBeUndefined();
    expect(ncrontabProblem('0 */5 * * * ;rm')).toBe('has a malformed day-of-week field ";rm": use digits, names, *, / (step), , (list) and - (range)');
    expect(ncrontabProblem('0 5/ * * * *')).toMatch(/^has a malformed minute field "5\/"/);
    expect(() => readFunctionSettings({ ...GOOD_ENV, REDRIVE_MIN_INTERVAL_SECONDS: '86400' })).toThrow(/REDRIVE_MIN_INTERVAL_SECONDS must be a number of seconds from 1 to 21600/);
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
