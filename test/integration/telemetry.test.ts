/**
 * Metrics to Application Insights: the real OpenTelemetry meter provider and Azure Monitor exporter, sending
 * to an ingestion stand-in on 127.0.0.1. The counters must agree with the run's `run.summary` line; retries,
 * delivery latency and batch age come from the retry loop and the pipeline.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvocationContext } from '@azure/functions';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createEventHubHandler } from '../../src/host/eventHubBatch.js';
import { createFunctionApp } from '../../src/host/functionApp.js';
import { createPipeline } from '../../src/pipeline/run.js';
import { MemoryLedger } from '../../src/routing/dedupe.js';
import { parseRules } from '../../src/routing/load.js';
import { readTelemetrySettings, startMetricsExport, type MetricsExport } from '../../src/telemetry/azureMonitor.js';
import { METRIC, recordRun } from '../../src/telemetry/metrics.js';
import { startAppInsightsReceiver, type AppInsightsReceiver } from '../support/appInsightsReceiver.js';
import { randomContainerName } from '../support/azurite.js';
import { cli } from '../support/cli.js';
import { startHecReceiver, type HecReceiver } from '../support/hecReceiver.js';
import { startSmtpServer, type SmtpStandIn } from '../support/smtpServer.js';
import { startTeamsReceiver, type TeamsReceiver } from '../support/teamsReceiver.js';

// Statsbeat (the exporter's own usage telemetry) goes to a Microsoft endpoint: never from a test.
process.env['APPLICATION_INSIGHTS_NO_STATSBEAT'] = 'true';

const root = path.resolve(import.meta.dirname, '../..');
const samples = path.join(root, 'samples');
const exampleRules = path.join(root, 'config/routes.example.yaml');
const TOKEN = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const scratch = mkdtempSync(path.join(tmpdir(), 'df-telemetry-'));

let insights: AppInsightsReceiver;
let hec: HecReceiver;
let teams: TeamsReceiver;
let platform: TeamsReceiver;
let smtp: SmtpStandIn;
let env: Record<string, string>;

beforeAll(async () => {
  [hec, teams, platform, smtp] = await Promise.all([startHecReceiver({ token: TOKEN }), startTeamsReceiver(), startTeamsReceiver(), startSmtpServer()]);
});
beforeEach(async () => {
  insights = await startAppInsightsReceiver();
  env = {
    HEC_URL: hec.url,
    HEC_TOKEN: TOKEN,
    ONCALL_TEAMS_URL: teams.url,
    PLATFORM_TEAMS_URL: platform.url,
    SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
    APPLICATIONINSIGHTS_CONNECTION_STRING: insights.connectionString,
  };
});
afterEach(async () => {
  await insights.close();
});
afterAll(async () => {
  await Promise.all([hec.stop(), teams.close(), platform.close(), smtp.stop()]);
  rmSync(scratch, { recursive: true, force: true });
});

describe('telemetry settings', () => {
  it('no connection string: no export, no problem', () => {
    const problems: string[] = [];
    expect(readTelemetrySettings({}, problems)).toBeUndefined();
    expect(problems).toEqual([]);
  });

  it('a connection string with Entra ID authentication and a user-assigned identity', () => {
    const problems: string[] = [];
    const settings = readTelemetrySettings(
      {
        APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=00000000-1111-2222-3333-444444444444;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;ApplicationId=x',
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
        OTEL_METRIC_EXPORT_INTERVAL: '15000',
      },
      problems,
    );
    expect(problems).toEqual([]);
    expect(settings).toMatchObject({ exportIntervalMs: 15_000, entraId: { clientId: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee' } });
  });

  it('names each wrong setting without quoting its value', () => {
    const problems: string[] = [];
    readTelemetrySettings(
      {
        APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=not-a-guid-SECRETISH;IngestionEndpoint=ftp://elsewhere.example',
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=Basic',
        OTEL_METRIC_EXPORT_INTERVAL: '10',
      },
      problems,
    );
    expect(problems).toEqual([
      expect.stringMatching(/^OTEL_METRIC_EXPORT_INTERVAL must be a whole number of milliseconds from 1000/),
      expect.stringMatching(/^APPLICATIONINSIGHTS_CONNECTION_STRING has an InstrumentationKey that is not a GUID/),
      expect.stringMatching(/^APPLICATIONINSIGHTS_CONNECTION_STRING has an IngestionEndpoint that is not an https:\/\/ URL/),
      expect.stringMatching(/^APPLICATIONINSIGHTS_AUTHENTICATION_STRING must be "Authorization=AAD"/),
    ]);
    expect(problems.join(' ')).not.toMatch(/SECRETISH|elsewhere/);

    const missing: string[] = [];
    readTelemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'IngestionEndpoint=https://x.example/', APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD' }, missing);
    expect(missing).toEqual([expect.stringMatching(/has no InstrumentationKey=/)]);
    const orphan: string[] = [];
    readTelemetrySettings({ APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD' }, orphan);
    expect(orphan).toEqual([expect.stringMatching(/APPLICATIONINSIGHTS_AUTHENTICATION_STRING is set but APPLICATIONINSIGHTS_CONNECTION_STRING is not/)]);
  });
});

describe('metrics exported by the command line', () => {
  it('forward sends counters equal to its run.summary, per destination, with retries and delivery latency', async () => {
    teams.throttle(1, 1); // one 429 with Retry-After: 1 s, then accepted
    const run = await cli(['forward', '--input', samples, '--rules', exampleRules, '--state-dir', path.join(scratch, 'state-1'), '--summary', 'json', '--report', 'none'], { env });
    expect(run.code).toBe(1); // two samples are quarantined on purpose
    expect(run.stderr).toContain('forward: metrics exported to Application Insights every 60 s');
    const [account] = run.lines;
    expect(account).toMatchObject({ event: 'run.summary', host: 'cli' });
    if (account === undefined) throw new Error('no summary line');

    const host = { host: 'cli' };
    expect(insights.total(METRIC.received, host)).toBe(account['received']);
    expect(insights.total(METRIC.routed, host)).toBe(account['routed']);
    expect(insights.total(METRIC.quarantined, host)).toBe(account['quarantined']);
    expect(account['received']).toBeGreaterThan(0);
    const quarantinedBy = account['quarantinedBy'] as Record<string, number>;
    for (const [reason, count] of Object.entries(quarantinedBy)) expect(insights.total(METRIC.quarantined, { ...host, reason })).toBe(count);
    const delivered = account['delivered'] as Record<string, number>;
    expect(Object.keys(delivered).sort()).toEqual(['oncall-email', 'oncall-teams', 'platform-teams', 'splunk', 'vuln-email']);
    for (const [destination, count] of Object.entries(delivered)) expect(insights.total(METRIC.delivered, { ...host, destination })).toBe(count);

    // The 429: one retry for on-call Teams, with its reason; one attempt answered 429 and one accepted.
    expect(insights.total(METRIC.retries, { destination: 'oncall-teams', reason: 'http-429' })).toBe(1);
    const durations = insights.metrics().filter((point) => point.name === METRIC.deliveryDuration);
    const teamsOk = durations.find((point) => point.properties['destination'] === 'oncall-teams' && point.properties['outcome'] === 'ok');
    const teams429 = durations.find((point) => point.properties['destination'] === 'oncall-teams' && point.properties['outcome'] === 'http-429');
    expect(teamsOk?.count).toBe(1);
    expect(teams429?.count).toBe(1);
    const splunk = durations.find((point) => point.properties['destination'] === 'splunk' && point.properties['outcome'] === 'ok');
    expect(splunk?.count).toBeGreaterThanOrEqual(1);
    expect(splunk?.max).toBeGreaterThan(0);

    // The role name, and nothing secret anywhere in what was sent.
    expect(new Set(insights.metrics().map((point) => point.roleName))).toEqual(new Set(['defender-forwarder']));
    const sent = JSON.stringify(insights.envelopes);
    for (const secret of [TOKEN, teams.url, platform.url, hec.url]) expect(sent).not.toContain(secret);
  });

  it('a second run counts duplicates per destination, not deliveries', async () => {
    const state = path.join(scratch, 'state-2');
    const args = ['forward', '--input', samples, '--rules', exampleRules, '--state-dir', state, '--report', 'none', '--summary', 'json'];
    const first = await cli(args, { env: { ...env, APPLICATIONINSIGHTS_CONNECTION_STRING: '' } });
    expect(insights.envelopes).toHaveLength(0); // no connection string, nothing sent
    const second = await cli(args, { env });
    // The samples hold one notification twice, so the first run has one duplicate per notified destination
    // already; the second run has them all.
    expect(first.lines[0]?.['duplicates']).toMatchObject({ 'oncall-teams': 1 });
    expect(second.lines[0]?.['duplicates']).toMatchObject({ 'oncall-teams': 2, 'oncall-email': 2, 'vuln-email': 1 });
    for (const [destination, count] of Object.entries(second.lines[0]?.['duplicates'] as Record<string, number>)) {
      expect(insights.total(METRIC.duplicates, { host: 'cli', destination })).toBe(count);
    }
    expect(insights.total(METRIC.delivered, { destination: 'oncall-teams' })).toBe(0);
    expect(insights.total(METRIC.delivered, { destination: 'splunk' })).toBe(9);
  });

  it('a finished command leaves nothing running: the process exits by itself right after the export', async () => {
    // The compiled command line in a process of its own, without the bin's forced exit and without
    // APPLICATION_INSIGHTS_NO_STATSBEAT: the exporter's usage-telemetry timer must not outlive the command.
    const main = pathToFileURL(path.join(root, 'dist/src/cli/main.js')).href;
    const script = [
      `const { runCli } = await import(${JSON.stringify(main)});`,
      `const code = await runCli(${JSON.stringify(['forward', '--input', samples, '--rules', exampleRules, '--state-dir', path.join(scratch, 'state-exit'), '--report', 'none'])});`,
      'const done = Date.now();',
      "process.on('exit', () => process.stdout.write(JSON.stringify({ code, exitAfterMs: Date.now() - done })));",
    ].join('\n');
    const { APPLICATION_INSIGHTS_NO_STATSBEAT: _statsbeat, ...inherited } = process.env;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    await new Promise<void>((resolve) => child.on('close', () => resolve()));
    const result = JSON.parse(out) as { code: number; exitAfterMs: number };
    expect(result.code).toBe(1); // the samples' two quarantined records
    expect(result.exitAfterMs).toBeLessThan(3_000);
    expect(insights.total(METRIC.received, { host: 'cli' })).toBe(11);
  }, 30_000);

  it('a dry run exports nothing; a wrong setting is a usage error before anything is sent', async () => {
    const dry = await cli(['forward', '--dry-run', '--input', samples, '--rules', exampleRules, '--report', 'none'], { env });
    expect(dry.code).toBe(1);
    expect(dry.stderr).not.toContain('metrics exported');
    expect(insights.envelopes).toHaveLength(0);

    const events = hec.events.length;
    const wrong = await cli(['forward', '--input', samples, '--rules', exampleRules, '--state-dir', path.join(scratch, 'state-3')], {
      env: { ...env, APPLICATIONINSIGHTS_CONNECTION_STRING: 'IngestionEndpoint=https://x.example/' },
    });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/APPLICATIONINSIGHTS_CONNECTION_STRING has no InstrumentationKey=/);
    expect(hec.events.length).toBe(events);
  });
});

describe('metrics recorded by the pipeline', () => {
  let running: MetricsExport | undefined;
  afterEach(async () => {
    await running?.shutdown();
    running = undefined;
  });

  it('batch age is now minus the enqueued time of the batch\'s oldest event', async () => {
    const settings = readTelemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: insights.connectionString }, []);
    if (settings === undefined) throw new Error('no settings');
    running = await startMetricsExport(settings, { disableOfflineStorage: true, serviceName: 'fa-test' });
    const rules = parseRules('destinations:\n  s: {type: webhook, url: "${HOOK_URL}"}\nroutes: []\n', 'age.yaml');
    const pipeline = createPipeline({ rules, ledger: new MemoryLedger(), now: () => new Date('2026-11-28T10:05:00Z') });
    const body = JSON.stringify({ nothing: 'valid' });
    await pipeline.processBatch([
      { input: 'eh:0/1', body, metadata: { partitionId: '0', sequenceNumber: 1, enqueuedTimeUtc: '2026-11-28T10:00:00Z' } },
      { input: 'eh:0/2', body, metadata: { partitionId: '0', sequenceNumber: 2, enqueuedTimeUtc: '2026-11-28T10:04:00Z' } },
    ]);
    await pipeline.processBatch([{ input: 'file.json', body }]); // no enqueued time: not a sample
    await running.flush();
    const ages = insights.metrics().filter((point) => point.name === METRIC.batchAge);
    expect(ages).toHaveLength(1);
    expect(ages[0]).toMatchObject({ count: 1, max: 300_000, min: 300_000, roleName: 'fa-test' });
  });

  it('a dry-run account records nothing; recording without an export is a no-op', async () => {
    const account = {
      event: 'run.summary' as const,
      host: 'cli' as const,
      source: 'x',
      startedAt: '2026-11-28T00:00:00Z',
      durationMs: 1,
      received: 3,
      routed: 3,
      unrouted: 0,
      muted: 0,
      quarantined: 0,
      delivered: { s: 3 },
      duplicates: {},
      mutedBy: {},
      deadLettered: {},
      redriven: {},
      quarantinedBy: {},
    };
    recordRun(account); // no meter provider yet: nothing to send, nothing thrown
    const settings = readTelemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: insights.connectionString }, []);
    if (settings === undefined) throw new Error('no settings');
    running = await startMetricsExport(settings, { disableOfflineStorage: true });
    recordRun({ ...account, dryRun: true });
    recordRun({ ...account, received: 5 });
    await running.flush();
    expect(insights.total(METRIC.received)).toBe(5);
    expect(insights.total(METRIC.delivered, { destination: 's' })).toBe(3);
  });
});

describe('metrics exported by the Function app', () => {
  const azurite = inject('azuriteConnectionString');
  const containers = [randomContainerName('tm-q'), randomContainerName('tm-dl'), randomContainerName('tm-l')];
  afterAll(async () => {
    const service = BlobServiceClient.fromConnectionString(azurite);
    await Promise.all(containers.map((name) => service.getContainerClient(name).deleteIfExists()));
  });

  it('the Event Hub function counts every outcome per destination, dead letters and duplicates included, and the batch age', async () => {
    const rulesFile = path.join(scratch, 'function-rules.yaml');
    writeFileSync(
      rulesFile,
      [
        'destinations:',
        '  splunk: {type: splunk-hec, url: "${HEC_URL}", token: "${HEC_TOKEN}"}',
        '  archive: {type: splunk-hec, url: "${HEC_URL}", token: "${ARCHIVE_TOKEN}"}',
        '  oncall: {type: teams, url: "${ONCALL_TEAMS_URL}"}',
        'routes:',
        '  - {name: everything, match: {}, to: [splunk, archive], continue: true}',
        '  - {name: high, match: {kind: alert, minSeverity: High}, to: [oncall]}',
        '',
      ].join('\n'),
    );
    const [quarantine = '', deadLetters = '', ledger = ''] = containers;
    const app = await createFunctionApp({
      EVENTHUB_NAME: 'defender-export',
      EVENTHUB_CONSUMER_GROUP: 'forwarder',
      EVENTHUB_CONNECTION: 'Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=placeholder',
      ROUTES_FILE: rulesFile,
      AzureWebJobsStorage: azurite,
      QUARANTINE_CONTAINER: quarantine,
      DEADLETTER_CONTAINER: deadLetters,
      LEDGER_CONTAINER: ledger,
      DELIVERY_BUDGET_SECONDS: '5',
      HEC_URL: hec.url,
      HEC_TOKEN: TOKEN,
      ARCHIVE_TOKEN: 'ffffffff-0000-0000-0000-000000000000', // refused by HEC (code 4): dead-lettered
      ONCALL_TEAMS_URL: teams.url,
      APPLICATIONINSIGHTS_CONNECTION_STRING: insights.connectionString,
    });
    const handler = createEventHubHandler({ routing: app.routing, ledger: app.ledger, quarantine: app.quarantine });
    const alert = JSON.parse(readFileSync(path.join(samples, '02-alert-k8s-node-crypto-miner.json'), 'utf8')) as Record<string, unknown>;
    const bodies = [
      JSON.stringify({ ...alert, SystemAlertId: 'telemetry-high', Severity: 'High' }),
      JSON.stringify({ ...alert, SystemAlertId: 'telemetry-low', Severity: 'Low' }),
      '{not json',
    ];
    const logs: string[] = [];
    const invoke = (first: number): Promise<unknown> =>
      handler(
        bodies,
        new InvocationContext({
          invocationId: `telemetry-${first}`,
          functionName: 'forwardDefenderExport',
          logHandler: (_level, ...args) => logs.push(args.map(String).join(' ')),
          triggerMetadata: {
            partitionContext: { partitionId: '3' },
            sequenceNumberArray: [first, first + 1, first + 2],
            // Enqueued ten and five minutes before the batch runs.
            enqueuedTimeUtcArray: [new Date(Date.now() - 600_000).toISOString(), new Date(Date.now() - 300_000).toISOString(), new Date().toISOString()],
          },
        }),
      );
    await invoke(10);
    await invoke(10); // the host runs the same events again: the Teams card is a duplicate
    const running = app.settings.telemetry ? await startMetricsExport(app.settings.telemetry) : undefined;
    await running?.flush();

    const summaries = logs.filter((line) => line.includes('"run.summary"')).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(summaries).toHaveLength(2);
    const host = { host: 'function' };
    expect(insights.total(METRIC.received, host)).toBe(6);
    expect(insights.total(METRIC.routed, host)).toBe(4);
    expect(insights.total(METRIC.quarantined, { ...host, reason: 'not-json' })).toBe(2);
    expect(insights.total(METRIC.delivered, { ...host, destination: 'splunk' })).toBe(4);
    expect(insights.total(METRIC.delivered, { ...host, destination: 'oncall' })).toBe(1);
    expect(insights.total(METRIC.duplicates, { ...host, destination: 'oncall' })).toBe(1);
    expect(insights.total(METRIC.deadLettered, { ...host, destination: 'archive' })).toBe(4);
    expect(insights.total(METRIC.delivered, { ...host, destination: 'archive' })).toBe(0);
    // The same numbers as the two run.summary lines.
    const summed = (key: string, destination: string): number => summaries.reduce((total, line) => total + ((line[key] as Record<string, number>)[destination] ?? 0), 0);
    expect(summed('deadLettered', 'archive')).toBe(4);
    expect(summed('duplicates', 'oncall')).toBe(1);

    // HEC refused the archive's token: its attempts are timed with the failure as outcome, not retried.
    const archive = insights.metrics().filter((point) => point.name === METRIC.deliveryDuration && point.properties['destination'] === 'archive');
    expect(archive.map((point) => point.properties['outcome'])).toEqual(['hec-4']);
    expect(insights.total(METRIC.retries, { destination: 'archive' })).toBe(0);

    // Two batches, each ten minutes old (its oldest event) when it started.
    const [age] = insights.metrics().filter((point) => point.name === METRIC.batchAge);
    expect(age?.count).toBe(2);
    expect(age?.min).toBeGreaterThanOrEqual(600_000);
    expect(age?.max).toBeLessThan(660_000);

    const sent = JSON.stringify(insights.envelopes);
    for (const secret of [TOKEN, 'ffffffff-0000-0000-0000-000000000000', teams.url, hec.url]) expect(sent).not.toContain(secret);
    await running?.shutdown();
  });

  it('a wrong telemetry setting stops the app at start-up, naming the setting', async () => {
    const failure = await createFunctionApp({
      EVENTHUB_NAME: 'defender-export',
      EVENTHUB_CONSUMER_GROUP: 'forwarder',
      EVENTHUB_CONNECTION: 'Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=placeholder',
      ROUTES_FILE: exampleRules,
      AzureWebJobsStorage: azurite,
      APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=secret-looking-value',
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=nope',
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    const message = (failure as Error).message;
    expect(message).toContain('APPLICATIONINSIGHTS_CONNECTION_STRING has an InstrumentationKey that is not a GUID');
    expect(message).toContain('APPLICATIONINSIGHTS_AUTHENTICATION_STRING has a ClientId that is not a GUID');
    expect(message).not.toContain('secret-looking-value');
  });
});
