/**
 * The health endpoint: configuration validity, the rules' version, the dead-letter and quarantine backlog,
 * and no secret anywhere in the answer; through the registered function (functions-core shim) and
 * `new HttpRequest(...)` / `new InvocationContext(...)`.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createFunctionApp } from '../../src/host/functionApp.js';
import { checkHealth, createHealthHandler, type HealthReport } from '../../src/host/health.js';
import { inspectEnvelope } from '../../src/pipeline/run.js';
import { randomContainerName } from '../support/azurite.js';
import { installFunctionsCoreShim } from '../support/functionsCore.js';

const shim = installFunctionsCoreShim();
const root = path.resolve(import.meta.dirname, '../..');
const connectionString = inject('azuriteConnectionString');
const SECRET_TOKEN = '5ec7e70c-0000-4000-8000-5ec7e70c5ec7';
const SECRET_SIG = 'sigSECRETsigSECRET';

const ENV = {
  EVENTHUB_NAME: 'defender-export',
  EVENTHUB_CONSUMER_GROUP: 'forwarder',
  EVENTHUB_CONNECTION: 'Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=placeholder',
  ROUTES_FILE: path.join(root, 'config/routes.example.yaml'),
  AzureWebJobsStorage: connectionString,
  QUARANTINE_CONTAINER: randomContainerName('health-q'),
  DEADLETTER_CONTAINER: randomContainerName('health-dl'),
  LEDGER_CONTAINER: randomContainerName('health-l'),
  HEC_URL: 'http://127.0.0.1:9',
  HEC_TOKEN: SECRET_TOKEN,
  ONCALL_TEAMS_URL: `http://127.0.0.1:9/teams?sig=${SECRET_SIG}`,
  PLATFORM_TEAMS_URL: `http://127.0.0.1:9/platform?sig=${SECRET_SIG}`,
  SMTP_URL: 'smtp://user:smtpPASSWORD@127.0.0.1:9',
};
const service = BlobServiceClient.fromConnectionString(connectionString);

afterAll(async () => {
  shim.uninstall();
  await Promise.all([ENV.QUARANTINE_CONTAINER, ENV.DEADLETTER_CONTAINER, ENV.LEDGER_CONTAINER].map((name) => service.getContainerClient(name).deleteIfExists()));
});

function expectNoSecret(report: unknown): void {
  const text = JSON.stringify(report);
  for (const secret of [SECRET_TOKEN, SECRET_SIG, 'smtpPASSWORD', 'placeholder', 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq']) expect(text).not.toContain(secret);
}

describe('health', () => {
  it('is registered as GET /api/health behind a function key, and answers 200 with the rules version and an empty backlog', async () => {
    Object.assign(process.env, ENV);
    await import('../../functions/health.js');
    expect(shim.triggerOf('health')).toMatchObject({ type: 'httpTrigger', direction: 'in', authLevel: 'function', methods: ['GET'], route: 'health' });
    const response = (await shim.registration('health').callback(
      new HttpRequest({ method: 'GET', url: 'http://localhost/api/health' }),
      new InvocationContext({ invocationId: 'health-1', functionName: 'health' }),
    )) as { status: number; jsonBody: HealthReport };
    expect(response.status).toBe(200);
    expect(response.jsonBody).toMatchObject({ status: 'healthy', configuration: { valid: true, problems: [] }, backlog: { deadLetters: { total: 0 }, quarantine: { total: 0 } } });
    expect(response.jsonBody.rules?.version).toMatch(/^[0-9a-f]{16}$/);
    // The deployed file: read once at start-up, so its last check is its load.
    expect(response.jsonBody.rules).toMatchObject({ source: 'file', origin: ENV.ROUTES_FILE, file: ENV.ROUTES_FILE });
    expect(response.jsonBody.rules?.lastCheckedAt).toBe(response.jsonBody.rules?.loadedAt);
    expect(response.jsonBody.rules?.refreshSeconds).toBeUndefined();
    expect(response.jsonBody.rules?.destinations).toContainEqual({ name: 'oncall-teams', type: 'teams' });
    expectNoSecret(response.jsonBody);
  });

  it('is degraded while dead letters wait, counting them per destination, and counts the quarantine', async () => {
    const app = await createFunctionApp(ENV);
    const [inspected] = inspectEnvelope({ input: 'eh:0/1', body: '{not json', metadata: { partitionId: '0', sequenceNumber: 1 } });
    if (inspected === undefined || inspected.ok) throw new Error('expected a quarantined record');
    await app.quarantine.put(inspected.entry);
    const letterService = service.getContainerClient(ENV.DEADLETTER_CONTAINER);
    await letterService.createIfNotExists();
    await letterService.getBlockBlobClient('splunk/2026/11/28/0-3-aaaaaaaaaaaa.json').upload('{}', 2, { metadata: { destination: 'splunk', reason: 'hec-9' } });
    const report = await checkHealth({ app: async () => app });
    expect(report.status).toBe('degraded');
    expect(report.backlog?.deadLetters).toEqual({ total: 1, atLeast: false, byDestination: { splunk: 1 } });
    expect(report.backlog?.quarantine).toEqual({ total: 1, atLeast: false });
    expect((await checkHealth({ app: async () => app, maxCounted: 0 })).backlog?.deadLetters).toMatchObject({ total: 0, atLeast: true });
  });

  it('answers 503 naming every configuration problem, and never a value', async () => {
    const handler = createHealthHandler({ app: () => createFunctionApp({ ...ENV, EVENTHUB_NAME: '', EVENTHUB_CONNECTION: 'SharedAccessKey=placeholder', LEDGER_CONTAINER: 'Bad_Name' }) });
    const logs: string[] = [];
    const response = await handler(new HttpRequest({ method: 'GET', url: 'http://localhost/api/health' }), new InvocationContext({ logHandler: (_level, ...args) => logs.push(args.map(String).join(' ')) }));
    expect(response.status).toBe(503);
    const report = response.jsonBody as HealthReport;
    expect(report.status).toBe('unhealthy');
    expect(report.configuration.valid).toBe(false);
    expect(report.configuration.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^EVENTHUB_NAME is not set/), expect.stringMatching(/^EVENTHUB_CONNECTION is not an Event Hubs connection string/), expect.stringMatching(/^LEDGER_CONTAINER "Bad_Name"/)]),
    );
    expectNoSecret(report);
    expect(logs.join('\n')).toContain('health.unhealthy');
  });

  it('answers 503 when a store cannot be reached, naming the container and not the key', async () => {
    const unreachable = 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;';
    const app = await createFunctionApp({ ...ENV, AzureWebJobsStorage: unreachable });
    const report = await checkHealth({ app: async () => app });
    expect(report.status).toBe('unhealthy');
    expect(report.configuration.valid).toBe(true);
    expect(report.storeProblems?.join('\n')).toContain(ENV.DEADLETTER_CONTAINER);
    expectNoSecret(report);
  }, 30_000);
});
