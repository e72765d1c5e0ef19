/**
 * The re-drive timer's registration as the host receives it, captured through the functions-core shim: its
 * schedule from the settings, no run on start-up, a monitored schedule, the app shared with the Event Hub
 * function, and the registered callback re-driving the container the settings name (to a HEC stand-in).
 */
import { InvocationContext, type Timer } from '@azure/functions';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { DeadLetter } from '../../src/delivery/contracts.js';
import { functionApp } from '../../src/host/functionApp.js';
import { inspectEnvelope } from '../../src/pipeline/run.js';
import { createBlobDeadLetterStore } from '../../src/storage/blobDeadLetters.js';
import { randomContainerName } from '../support/azurite.js';
import { installFunctionsCoreShim } from '../support/functionsCore.js';
import { startHecReceiver, type HecReceiver } from '../support/hecReceiver.js';

const shim = installFunctionsCoreShim();
const root = path.resolve(import.meta.dirname, '../..');
const connectionString = inject('azuriteConnectionString');
const TOKEN = '0a0b0c0d-0000-4000-8000-00000000beef';

/** The settings the app starts with; the example rules' destinations other than Splunk are never used here. */
const ENV = {
  EVENTHUB_NAME: 'defender-export',
  EVENTHUB_CONSUMER_GROUP: 'forwarder',
  EVENTHUB_CONNECTION: 'Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=placeholder',
  ROUTES_FILE: path.join(root, 'config/routes.example.yaml'),
  AzureWebJobsStorage: connectionString,
  QUARANTINE_CONTAINER: randomContainerName('timer-q'),
  DEADLETTER_CONTAINER: randomContainerName('timer-dl'),
  LEDGER_CONTAINER: randomContainerName('timer-ledger'),
  HEC_TOKEN: TOKEN,
  ONCALL_TEAMS_URL: 'http://127.0.0.1:9/teams?sig=test',
  PLATFORM_TEAMS_URL: 'http://127.0.0.1:9/platform?sig=test',
  SMTP_URL: 'smtp://127.0.0.1:9',
};

let hec: HecReceiver;
const service = BlobServiceClient.fromConnectionString(connectionString);

beforeAll(async () => {
  hec = await startHecReceiver({ token: TOKEN });
});
afterAll(async () => {
  shim.uninstall();
  await hec.stop();
  await Promise.all([ENV.QUARANTINE_CONTAINER, ENV.DEADLETTER_CONTAINER, ENV.LEDGER_CONTAINER].map((name) => service.getContainerClient(name).deleteIfExists()));
});

/** A Splunk dead letter of the bundled crypto-miner alert, as the Event Hub function writes one. */
function splunkLetter(): DeadLetter {
  const record = JSON.parse(readFileSync(path.join(root, 'samples/02-alert-k8s-node-crypto-miner.json'), 'utf8')) as unknown;
  const inspected = inspectEnvelope({ input: 'eh:0/7', body: record, metadata: { partitionId: '0', sequenceNumber: 7 } })[0];
  if (inspected === undefined || !inspected.ok) throw new Error('the sample alert no longer passes');
  const { finding } = inspected;
  return {
    format: 'defender-forwarder.deadletter/v1',
    destination: 'splunk',
    destinationType: 'splunk-hec',
    input: 'eh:0/7',
    finding: { kind: finding.kind, id: finding.id, severity: finding.severity, status: finding.status, title: finding.title },
    error: { message: 'splunk: HTTP 503', reason: 'hec-9', retryable: true, configuration: false },
    attempts: 5,
    firstAttemptAt: '2026-11-27T00:00:00.000Z',
    lastAttemptAt: '2026-11-27T00:02:00.000Z',
    deadLetteredAt: '2026-11-27T00:02:00.000Z',
    payload: [],
    record,
    metadata: { partitionId: '0', sequenceNumber: 7 },
  };
}

describe('redriveDeadLetters registration', () => {
  it('registers a timer on the default schedule (every 5 minutes), not on start-up, monitored, sharing the app with the Event Hub function', async () => {
    Object.assign(process.env, ENV, { HEC_URL: hec.url });
    await createBlobDeadLetterStore({ connectionString, containerName: ENV.DEADLETTER_CONTAINER }).put(splunkLetter());
    await import('../../functions/forwardDefenderExport.js');
    await import('../../functions/redriveDeadLetters.js');
    expect(shim.registrations.map((r) => r.name)).toEqual(['forwardDefenderExport', 'redriveDeadLetters']);
    expect(shim.triggerOf('redriveDeadLetters')).toMatchObject({
      type: 'timerTrigger',
      direction: 'in',
      schedule: '0 */5 * * * *',
      runOnStartup: false,
      useMonitor: true,
    });
    expect(shim.registration('redriveDeadLetters').metadata.retryOptions).toBeUndefined();
    // One app per process: the same rules, sinks, ledger and stores for both functions.
    const shared = await functionApp();
    expect(await functionApp()).toBe(shared);
    expect(shared.deadLetters.containerName).toBe(ENV.DEADLETTER_CONTAINER);
    expect(shared.settings).toMatchObject({ redriveSchedule: '0 */5 * * * *', redriveMaxAgeMs: 168 * 3_600_000, redriveMinIntervalMs: 60_000 });

    const logs: string[] = [];
    const timer: Timer = { isPastDue: true, schedule: { adjustForDST: true }, scheduleStatus: { last: '', next: '', lastUpdated: '' } };
    const context = new InvocationContext({
      invocationId: 'registration-redrive',
      functionName: 'redriveDeadLetters',
      logHandler: (level, ...args) => logs.push(`${level} ${args.map(String).join(' ')}`),
    });
    await shim.registration('redriveDeadLetters').callback(timer, context);
    const summaries = logs.filter((line) => line.includes('"run.summary"'));
    expect(summaries).toHaveLength(1);
    expect(JSON.parse((summaries[0] ?? '').replace(/^information /, ''))).toMatchObject({
      host: 'redrive',
      source: `container "${ENV.DEADLETTER_CONTAINER}"`,
      invocationId: 'registration-redrive',
      isPastDue: true,
      letters: 1,
      redriven: { splunk: 1 },
    });
    expect(hec.events).toHaveLength(1);
    const left: string[] = [];
    for await (const blob of service.getContainerClient(ENV.DEADLETTER_CONTAINER).listBlobsFlat()) left.push(blob.name);
    expect(left).toEqual([]);
    for (const line of logs) expect(line).not.toContain(TOKEN);
  });

  it('loads from the compiled app (dist/functions, what the host loads)', () => {
    const entry = path.join(root, 'dist/functions/redriveDeadLetters.js');
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(entry).href)});`], {
      env: { PATH: process.env['PATH'] ?? '', ...ENV, HEC_URL: hec.url },
      encoding: 'utf8',
    });
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.status).toBe(0);
  });
});
