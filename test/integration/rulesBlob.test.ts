/**
 * Routing rules from a blob (`ROUTES_BLOB_URL`), against Azurite: start-up from the blob, a new ETag picked
 * up once the refresh interval has passed (an injected clock, no sleeping), invalid updates rejected while
 * the previous rules keep routing, a deleted or unreachable blob keeping the rules in use, a SAS that
 * appears nowhere, and in-flight work finishing with the version it started with. The app is built as the
 * Functions host builds it (`createFunctionApp`), and its handlers as `functions/*.ts` register them; what
 * the HEC and Teams stand-ins receive is what is asserted.
 */
import { HttpRequest, InvocationContext, type Timer } from '@azure/functions';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { BlobSASPermissions, BlobServiceClient, type BlockBlobClient } from '@azure/storage-blob';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { SettingsError } from '../../src/config/appSettings.js';
import { Secret } from '../../src/config/secret.js';
import type { DeadLetter } from '../../src/delivery/contracts.js';
import { createEventHubHandler } from '../../src/host/eventHubBatch.js';
import { createFunctionApp, type FunctionApp } from '../../src/host/functionApp.js';
import { checkHealth, createHealthHandler, type HealthReport } from '../../src/host/health.js';
import { createRedriveTimerHandler } from '../../src/host/redriveTimer.js';
import { inspectEnvelope } from '../../src/pipeline/run.js';
import type { RunSummary } from '../../src/pipeline/run.js';
import { RulesError } from '../../src/routing/load.js';
import { createRulesSource, type RulesLog, type RulesReader } from '../../src/routing/rulesSource.js';
import { SinkConfigError } from '../../src/sinks/settings.js';
import { connectRulesBlob } from '../../src/storage/rulesBlob.js';
import { createTestContainer, randomContainerName, type TestContainer } from '../support/azurite.js';
import { startHecReceiver, type HecReceiver } from '../support/hecReceiver.js';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.js';
import { startTeamsReceiver, type TeamsReceiver } from '../support/teamsReceiver.js';

const root = path.resolve(import.meta.dirname, '../..');
const connectionString = inject('azuriteConnectionString');
const blobEndpoint = inject('azuriteBlobEndpoint');
const service = BlobServiceClient.fromConnectionString(connectionString);
const HEC_TOKEN = '7c1d2e3f-0000-4000-8000-0000000000aa';
const REFRESH_MS = 5_000;
const ALERT: unknown = JSON.parse(readFileSync(path.join(root, 'samples/02-alert-k8s-node-crypto-miner.json'), 'utf8'));

const SPLUNK_ONLY = `
destinations:
  splunk: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}"}
routes:
  - name: everything-to-splunk
    match: {}
    to: [splunk]
`;

const SPLUNK_AND_TEAMS = `
destinations:
  splunk: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}"}
  oncall-teams: {type: teams, url: "\${TEAMS_URL}"}
routes:
  - name: everything-to-splunk
    match: {}
    to: [splunk]
    continue: true
  - name: high-alerts-to-oncall
    match: {kind: alert, minSeverity: High}
    to: [oncall-teams]
`;

/** Valid YAML, invalid rules: a route to a destination that does not exist (line 6). */
const UNKNOWN_DESTINATION = `
destinations:
  splunk: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}"}
routes:
  - name: everything-to-teams
    match: {}
    to: [teams-soc]
`;

/** Valid rules whose Teams URL refers to a variable the app does not have. */
const UNSET_VARIABLE = `
destinations:
  splunk: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}"}
  soc-teams: {type: teams, url: "\${SOC_TEAMS_URL}"}
routes:
  - name: everything
    match: {}
    to: [splunk, soc-teams]
`;

const BROKEN_YAML = 'destinations:\n  splunk: {type: splunk-hec\nroutes: [\n';

/** Splunk, and a second HEC destination `archive` (to which a dead letter waits). */
const SPLUNK_AND_ARCHIVE = `
destinations:
  splunk: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}"}
  archive: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}"}
routes:
  - name: everything-to-splunk
    match: {}
    to: [splunk]
`;

interface Logged {
  readonly level: string;
  readonly message: string;
}

/** Lines of one event (`rules.reloaded`...), parsed. */
function events(logs: readonly Logged[], event: string): Record<string, unknown>[] {
  return logs.filter((line) => line.message.includes(`"event":"${event}"`)).map((line) => ({ level: line.level, ...(JSON.parse(line.message) as Record<string, unknown>) }));
}

let sequence = 0;
function invocation(logs: Logged[]): InvocationContext {
  sequence += 1;
  return new InvocationContext({
    invocationId: `rules-blob-${sequence}`,
    functionName: 'forwardDefenderExport',
    logHandler: (level, ...args) => logs.push({ level, message: args.map(String).join(' ') }),
    triggerMetadata: { partitionContext: { partitionId: '0' }, sequenceNumberArray: [sequence], enqueuedTimeUtcArray: ['2026-11-28T08:00:00Z'] },
  });
}

let hec: HecReceiver;
let teams: TeamsReceiver;
let rules: TestContainer;
let rulesBlob: BlockBlobClient;
let stores: string[];
let clockMs: number;
const now = (): Date => new Date(clockMs);

beforeAll(async () => {
  [hec, teams] = await Promise.all([startHecReceiver({ token: HEC_TOKEN }), startTeamsReceiver()]);
});
afterAll(async () => {
  await Promise.all([hec.stop(), teams.close()]);
});
beforeEach(async () => {
  rules = await createTestContainer(connectionString, 'rules');
  rulesBlob = rules.containerClient.getBlockBlobClient('defender/routes.yaml');
  stores = [randomContainerName('rb-q'), randomContainerName('rb-dl'), randomContainerName('rb-l')];
  clockMs = Date.parse('2026-11-28T08:00:00Z');
  hec.events.length = 0;
  teams.messages.length = 0;
});
afterEach(async () => {
  await Promise.all([rules.dispose(), ...stores.map((name) => service.getContainerClient(name).deleteIfExists())]);
});

/** Uploads the rules; resolves with the new ETag as the app reports it (without quotes). */
async function publish(text: string): Promise<string> {
  const response = await rulesBlob.upload(text, Buffer.byteLength(text));
  return (response.etag ?? '').replace(/"/g, '');
}

/** The app settings, the rules from `blobUrl` (the deployed file does not exist). */
function settings(blobUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  const [quarantine = '', deadLetters = '', ledger = ''] = stores;
  return {
    EVENTHUB_NAME: 'defender-export',
    EVENTHUB_CONSUMER_GROUP: 'forwarder',
    EVENTHUB_CONNECTION: 'Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=placeholder',
    ROUTES_FILE: '/nonexistent/routes.yaml',
    ROUTES_BLOB_URL: blobUrl,
    ROUTES_REFRESH_SECONDS: String(REFRESH_MS / 1000),
    AzureWebJobsStorage: connectionString,
    QUARANTINE_CONTAINER: quarantine,
    DEADLETTER_CONTAINER: deadLetters,
    LEDGER_CONTAINER: ledger,
    DELIVERY_BUDGET_SECONDS: '5',
    HEC_URL: hec.url,
    HEC_TOKEN,
    TEAMS_URL: teams.url,
    ...extra,
  };
}

/** The Event Hub handler as functions/forwardDefenderExport.ts builds it. */
function eventHubHandler(app: FunctionApp): (messages: unknown, context: InvocationContext) => Promise<RunSummary> {
  return createEventHubHandler({ routing: app.routing, ledger: app.ledger, quarantine: app.quarantine });
}

/** A SAS URL (read, one hour) of the rules blob; through `origin` (a proxy) when given. */
async function sasUrl(origin?: string): Promise<string> {
  const url = await rulesBlob.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn: new Date(Date.now() + 3_600_000) });
  return origin === undefined ? url : url.replace(new URL(blobEndpoint).origin, origin);
}

/** The signature of a SAS URL, as sent and percent-decoded: neither may appear anywhere. */
function signatureForms(url: string): string[] {
  const sig = new URL(url).searchParams.get('sig') ?? '';
  expect(sig.length).toBeGreaterThan(10);
  return [sig, encodeURIComponent(sig)];
}

describe('routing rules from a blob', () => {
  it('starts from the blob when ROUTES_BLOB_URL is set (the deployed file is not needed), and reports its ETag and origin', async () => {
    const etag = await publish(SPLUNK_AND_TEAMS);
    const app = await createFunctionApp(settings(rulesBlob.url), { now });
    const logs: Logged[] = [];
    const summary = await eventHubHandler(app)([ALERT], invocation(logs));
    expect(summary.delivered).toEqual({ splunk: 1, 'oncall-teams': 1 });
    expect(hec.events).toHaveLength(1);
    expect(teams.messages).toHaveLength(1);
    expect(events(logs, 'run.summary')[0]).toMatchObject({ rulesVersion: etag });

    const report = await checkHealth({ app: async () => app, now });
    expect(report.status).toBe('healthy');
    expect(report.rules).toEqual({
      source: 'blob',
      origin: rulesBlob.url,
      version: etag,
      loadedAt: '2026-11-28T08:00:00.000Z',
      lastCheckedAt: '2026-11-28T08:00:00.000Z',
      refreshSeconds: 5,
      destinations: [
        { name: 'splunk', type: 'splunk-hec' },
        { name: 'oncall-teams', type: 'teams' },
      ],
      routes: 2,
      mutes: 0,
    });
  });

  it('picks up a new ETag once the refresh interval has passed: the Event Hub handler then routes by the new rules', async () => {
    const first = await publish(SPLUNK_ONLY);
    const app = await createFunctionApp(settings(rulesBlob.url), { now });
    const handler = eventHubHandler(app);
    const logs: Logged[] = [];

    expect((await handler([ALERT], invocation(logs))).delivered).toEqual({ splunk: 1 });
    const second = await publish(SPLUNK_AND_TEAMS);
    // Within the interval the blob is not checked: the rules in use stay.
    clockMs += REFRESH_MS - 1;
    expect((await handler([ALERT], invocation(logs))).delivered).toEqual({ splunk: 1 });
    expect(teams.messages).toHaveLength(0);
    expect(events(logs, 'rules.reloaded')).toEqual([]);

    clockMs += 1;
    const summary = await handler([ALERT], invocation(logs));
    expect(summary.delivered).toEqual({ splunk: 1, 'oncall-teams': 1 });
    expect(hec.events).toHaveLength(3);
    expect(teams.messages).toHaveLength(1);
    expect(events(logs, 'rules.reloaded')).toEqual([
      { level: 'information', event: 'rules.reloaded', source: 'blob', origin: rulesBlob.url, oldVersion: first, newVersion: second, destinations: 2, routes: 2, mutes: 0 },
    ]);
    expect(events(logs, 'run.summary').map((line) => line['rulesVersion'])).toEqual([first, first, second]);
    const report = await checkHealth({ app: async () => app });
    expect(report.rules).toMatchObject({ version: second, loadedAt: '2026-11-28T08:00:05.000Z', lastCheckedAt: '2026-11-28T08:00:05.000Z', routes: 2 });
  });

  it('rejects an invalid update: the previous rules keep routing, one rules.rejected line, health degraded naming the problem', async () => {
    const good = await publish(SPLUNK_ONLY);
    const app = await createFunctionApp(settings(rulesBlob.url), { now });
    const handler = eventHubHandler(app);
    const health = createHealthHandler({ app: async () => app, now });
    const logs: Logged[] = [];

    const unknownDestination = await publish(UNKNOWN_DESTINATION);
    clockMs += REFRESH_MS;
    expect((await handler([ALERT], invocation(logs))).delivered).toEqual({ splunk: 1 });
    expect(hec.events).toHaveLength(1);
    expect(events(logs, 'rules.rejected')).toEqual([
      {
        level: 'error',
        event: 'rules.rejected',
        source: 'blob',
        origin: rulesBlob.url,
        etag: unknownDestination,
        currentVersion: good,
        problems: [`${rulesBlob.url}:7: routes[0].to: unknown destination "teams-soc"; destinations are splunk`],
      },
    ]);
    const response = await health(new HttpRequest({ method: 'GET', url: 'http://localhost/api/health' }), invocation(logs));
    expect(response.status).toBe(200);
    const report = response.jsonBody as HealthReport;
    expect(report.status).toBe('degraded');
    expect(report.rules).toMatchObject({
      version: good,
      routes: 1,
      rejected: { etag: unknownDestination, problems: [expect.stringContaining('unknown destination "teams-soc"')], rejectedAt: '2026-11-28T08:00:05.000Z' },
    });

    // The rejected ETag is remembered: neither downloaded nor reported again.
    clockMs += REFRESH_MS;
    await handler([ALERT], invocation(logs));
    expect(events(logs, 'rules.rejected')).toHaveLength(1);

    // An unset ${ENV} variable, then broken YAML: each rejected in turn, naming what is wrong.
    const unsetVariable = await publish(UNSET_VARIABLE);
    clockMs += REFRESH_MS;
    expect((await handler([ALERT], invocation(logs))).delivered).toEqual({ splunk: 1 });
    expect(events(logs, 'rules.rejected')[1]).toMatchObject({
      etag: unsetVariable,
      currentVersion: good,
      problems: expect.arrayContaining(['destinations.soc-teams.url: environment variable SOC_TEAMS_URL is not set']),
    });
    await publish(BROKEN_YAML);
    clockMs += REFRESH_MS;
    expect((await handler([ALERT], invocation(logs))).delivered).toEqual({ splunk: 1 });
    const yamlProblems = events(logs, 'rules.rejected')[2]?.['problems'];
    expect(yamlProblems).toEqual(expect.arrayContaining([expect.stringMatching(/^http:.*routes\.yaml:\d+: invalid YAML: /)]));
    expect(events(logs, 'rules.rejected')).toHaveLength(3);
    expect(teams.messages).toHaveLength(0);
    expect(hec.events).toHaveLength(4);

    // A good version clears the rejection.
    const fixed = await publish(SPLUNK_AND_TEAMS);
    clockMs += REFRESH_MS;
    expect((await handler([ALERT], invocation(logs))).delivered).toEqual({ splunk: 1, 'oncall-teams': 1 });
    const healed = await checkHealth({ app: async () => app });
    expect(healed.status).toBe('healthy');
    expect(healed.rules?.version).toBe(fixed);
    expect(healed.rules?.rejected).toBeUndefined();
  });

  it('keeps the rules in use when the blob is deleted, warning once per failure streak, and reloads when it is back', async () => {
    const first = await publish(SPLUNK_ONLY);
    const app = await createFunctionApp(settings(rulesBlob.url), { now });
    const handler = eventHubHandler(app);
    const logs: Logged[] = [];

    await rulesBlob.delete();
    for (let check = 0; check < 3; check += 1) {
      clockMs += REFRESH_MS;
      expect((await handler([ALERT], invocation(logs))).delivered).toEqual({ splunk: 1 });
    }
    const warnings = events(logs, 'rules.refreshFailed');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 'warning', origin: rulesBlob.url, version: first });
    expect(warnings[0]?.['error']).toMatch(/^cannot read the rules blob http:.*: HTTP 404 BlobNotFound: the container or the blob does not exist$/);
    const report = await checkHealth({ app: async () => app });
    expect(report.status).toBe('degraded');
    expect(report.rules).toMatchObject({
      version: first,
      lastCheckedAt: '2026-11-28T08:00:00.000Z',
      refreshFailing: { since: '2026-11-28T08:00:05.000Z', failedChecks: 3, error: expect.stringContaining('HTTP 404') },
    });

    const second = await publish(SPLUNK_AND_TEAMS);
    clockMs += REFRESH_MS;
    expect((await handler([ALERT], invocation(logs))).delivered).toEqual({ splunk: 1, 'oncall-teams': 1 });
    expect(events(logs, 'rules.refreshRecovered')).toEqual([
      { level: 'information', event: 'rules.refreshRecovered', origin: rulesBlob.url, version: first, failedChecks: 3, failingSince: '2026-11-28T08:00:05.000Z' },
    ]);
    expect(events(logs, 'rules.reloaded')).toMatchObject([{ oldVersion: first, newVersion: second }]);
    expect((await checkHealth({ app: async () => app })).status).toBe('healthy');
  });

  it('never shows a SAS: not in logs, health or errors, storage unreachable and updates rejected included', async () => {
    const proxy: TcpProxy = await startTcpProxy({ target: { host: '127.0.0.1', port: Number(new URL(blobEndpoint).port) } });
    try {
      const first = await publish(SPLUNK_ONLY);
      const url = await sasUrl(proxy.url());
      const masked = `${url.slice(0, url.indexOf('?'))}?<redacted>`;
      const seen: string[] = [];
      const app = await createFunctionApp(settings(url), { now });
      const handler = eventHubHandler(app);
      const logs: Logged[] = [];

      seen.push(JSON.stringify(await checkHealth({ app: async () => app })));
      expect((await checkHealth({ app: async () => app })).rules).toMatchObject({ source: 'blob', origin: masked, version: first });

      // Storage unreachable: the rules stay, one warning.
      proxy.setMode('refuse');
      clockMs += REFRESH_MS;
      expect((await handler([ALERT], invocation(logs))).delivered).toEqual({ splunk: 1 });
      expect(events(logs, 'rules.refreshFailed')).toMatchObject([{ origin: masked, error: expect.stringMatching(/^cannot read the rules blob .*\?<redacted>: storage unreachable: /) }]);
      seen.push(JSON.stringify(await checkHealth({ app: async () => app })));

      // Reachable again, with an invalid update.
      proxy.setMode('pass');
      await publish(UNKNOWN_DESTINATION);
      clockMs += REFRESH_MS;
      expect((await handler([ALERT], invocation(logs))).delivered).toEqual({ splunk: 1 });
      expect(events(logs, 'rules.rejected')).toMatchObject([{ origin: masked, problems: [expect.stringContaining(`${masked}:7: routes[0].to`)] }]);
      seen.push(JSON.stringify(await checkHealth({ app: async () => app })));

      // Start-up with a SAS the service refuses, and with a SAS signed for another blob.
      const forged = url.replace(/sig=[^&]+/, `sig=${encodeURIComponent('Zm9yZ2VkU2lnbmF0dXJlZm9yZ2VkU2lnbmF0dXJl+/=')}`);
      const refused = await createFunctionApp(settings(forged), { now }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(SettingsError);
      expect((refused as SettingsError).problems).toEqual([expect.stringMatching(/^ROUTES_BLOB_URL: cannot read the rules blob .*\?<redacted>: HTTP 403 AuthorizationFailure: the SAS was refused/)]);
      const otherBlob = await createFunctionApp(settings(url.replace('routes.yaml', 'other.yaml')), { now }).catch((error: unknown) => error);
      expect(otherBlob).toBeInstanceOf(SettingsError);
      const unhealthy = await checkHealth({ app: () => createFunctionApp(settings(forged), { now }) });
      expect(unhealthy.status).toBe('unhealthy');
      seen.push(JSON.stringify(unhealthy), String(refused), String(otherBlob), (refused as Error).stack ?? '', (otherBlob as Error).stack ?? '');
      seen.push(JSON.stringify(app.settings), inspect(app.settings, { depth: 10 }), ...logs.map((line) => line.message));
      // The reader's own error, printed whole (cause included), as a careless caller would log it.
      const direct = await connectRulesBlob({ url: new Secret(forged, 'ROUTES_BLOB_URL'), connection: { connectionString }, storageSetting: 'AzureWebJobsStorage' })
        .read()
        .catch((error: unknown) => error);
      expect(direct).toMatchObject({ name: 'RulesBlobError', statusCode: 403 });
      seen.push(inspect(direct, { depth: 10 }));

      const everything = seen.join('\n');
      for (const form of [...signatureForms(url), ...signatureForms(forged)]) expect(everything).not.toContain(form);
      expect(everything).toContain('?<redacted>');
    } finally {
      await proxy.close();
    }
  });

  it('refuses to start when the blob cannot be read or its rules are invalid, naming the problem', async () => {
    const fail = (env: Record<string, string>): Promise<unknown> => createFunctionApp(env, { now }).then(
      () => new Error('started'),
      (error: unknown) => error,
    );
    const missing = await fail(settings(rulesBlob.url));
    expect(missing).toBeInstanceOf(SettingsError);
    expect((missing as SettingsError).problems).toEqual([`ROUTES_BLOB_URL: cannot read the rules blob ${rulesBlob.url}: HTTP 404 BlobNotFound: the container or the blob does not exist`]);

    await publish(UNKNOWN_DESTINATION);
    const invalid = await fail(settings(rulesBlob.url));
    expect(invalid).toBeInstanceOf(RulesError);
    expect((invalid as RulesError).message).toBe(`${rulesBlob.url}:7: routes[0].to: unknown destination "teams-soc"; destinations are splunk`);

    await publish(UNSET_VARIABLE);
    const unset = await fail(settings(rulesBlob.url));
    expect(unset).toBeInstanceOf(SinkConfigError);
    expect((unset as Error).message).toContain('destinations.soc-teams.url: environment variable SOC_TEAMS_URL is not set');

    // A connection string signs for its own account only.
    await publish(SPLUNK_ONLY);
    const elsewhere = `${new URL(blobEndpoint).origin}/otheraccount/${rules.containerName}/defender/routes.yaml`;
    const foreign = await fail(settings(elsewhere));
    expect(foreign).toBeInstanceOf(SettingsError);
    expect((foreign as SettingsError).problems).toEqual([
      `ROUTES_BLOB_URL: cannot read the rules blob ${elsewhere}: it is not in the storage account of AzureWebJobsStorage (${blobEndpoint}): give the URL a read SAS, use an identity (...__accountName) with "Storage Blob Data Reader" on the blob's account, or keep the rules in the forwarder's account`,
    ]);

    // The health endpoint says the same, with 503.
    const response = await createHealthHandler({ app: () => createFunctionApp(settings(elsewhere), { now }) })(
      new HttpRequest({ method: 'GET', url: 'http://localhost/api/health' }),
      invocation([]),
    );
    expect(response.status).toBe(503);
    expect((response.jsonBody as HealthReport).configuration.problems).toEqual([expect.stringContaining('it is not in the storage account of AzureWebJobsStorage')]);
  });

  it('the compiled app (dist/functions, what the host loads) starts from the blob and leaves nothing running: the process exits', async () => {
    await publish(SPLUNK_AND_TEAMS);
    const entry = path.join(root, 'dist/functions/forwardDefenderExport.js');
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(entry).href)});`], {
      env: { PATH: process.env['PATH'] ?? '', ...settings(await sasUrl()) },
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.signal).toBeNull();
    expect(result.status).toBe(0);
  });

  it('lets work in flight finish with the version it started with, and releases a replaced version only after it', async () => {
    const first = await publish(SPLUNK_ONLY);
    const blobReader = connectRulesBlob({ url: new Secret(rulesBlob.url, 'ROUTES_BLOB_URL'), connection: { connectionString }, storageSetting: 'AzureWebJobsStorage' });
    let reads = 0;
    const reader: RulesReader = {
      ...blobReader,
      read: (etag) => {
        reads += 1;
        return blobReader.read(etag);
      },
    };
    let built = 0;
    const released: number[] = [];
    const source = await createRulesSource({
      reader,
      refreshMs: REFRESH_MS,
      now,
      build: (loaded) => ({ build: (built += 1), destinations: [...loaded.destinations.keys()] }),
      release: async ({ build }) => {
        released.push(build);
      },
    });
    const lines: string[] = [];
    const log: RulesLog = { log: (line) => lines.push(line), warn: (line) => lines.push(line), error: (line) => lines.push(line) };

    const second = await source.use(log, async (running) => {
      const next = await publish(SPLUNK_AND_TEAMS);
      clockMs += REFRESH_MS;
      // A newer invocation gets the new version while this one still holds the old.
      const newer = await source.use(log, async (routing) => routing);
      expect(newer).toMatchObject({ version: next, build: 2, destinations: ['splunk', 'oncall-teams'] });
      expect(running).toMatchObject({ version: first, build: 1, destinations: ['splunk'], source: 'blob', origin: rulesBlob.url });
      expect(released).toEqual([]);
      return next;
    });
    expect(released).toEqual([1]);
    expect((await source.current(log)).version).toBe(second);

    // Concurrent invocations share one check.
    clockMs += REFRESH_MS;
    const before = reads;
    const versions = await Promise.all([source.current(log), source.current(log), source.use(log, async (routing) => routing), source.refresh(log)]);
    expect(reads - before).toBe(1);
    expect(versions.slice(0, 3).map((state) => state?.version)).toEqual([second, second, second]);
    expect(lines.filter((line) => line.includes('rules.reloaded'))).toHaveLength(1);
  });

  it('the re-drive timer sends with the current rules: a letter whose destination appears in a new version is re-driven', async () => {
    const first = await publish(SPLUNK_ONLY);
    const app = await createFunctionApp(settings(rulesBlob.url), { now });
    const timer = createRedriveTimerHandler({ store: app.deadLetters, routing: app.routing, ledger: app.ledger, now });
    const tick: Timer = { isPastDue: false, schedule: { adjustForDST: true }, scheduleStatus: { last: '', next: '', lastUpdated: '' } };
    await app.deadLetters.put(archiveLetter());

    const logs: Logged[] = [];
    expect((await timer(tick, invocation(logs))).totals).toMatchObject({ destinationGone: 1, redriven: 0 });
    const withArchive = await publish(SPLUNK_AND_ARCHIVE);
    // Past the rules' refresh interval, and past the letter's next attempt (the first run scheduled one).
    clockMs += 3_600_000;
    expect((await timer(tick, invocation(logs))).totals).toMatchObject({ destinationGone: 0, redriven: 1 });
    expect(hec.events).toHaveLength(1);
    expect(events(logs, 'run.summary').map((line) => line['rulesVersion'])).toEqual([first, withArchive]);
  });
});

/** A dead letter of the bundled crypto-miner alert for destination `archive`, as the Event Hub function writes one. */
function archiveLetter(): DeadLetter {
  const inspected = inspectEnvelope({ input: 'eh:0/7', body: ALERT, metadata: { partitionId: '0', sequenceNumber: 7 } })[0];
  if (inspected === undefined || !inspected.ok) throw new Error('the sample alert no longer passes');
  const { finding } = inspected;
  return {
    format: 'defender-forwarder.deadletter/v1',
    destination: 'archive',
    destinationType: 'splunk-hec',
    input: 'eh:0/7',
    finding: { kind: finding.kind, id: finding.id, severity: finding.severity, status: finding.status, title: finding.title },
    error: { message: 'archive: HTTP 503', reason: 'hec-9', retryable: true, configuration: false },
    attempts: 5,
    firstAttemptAt: '2026-11-28T07:00:00.000Z',
    lastAttemptAt: '2026-11-28T07:02:00.000Z',
    deadLetteredAt: '2026-11-28T07:02:00.000Z',
    payload: [],
    record: ALERT,
    metadata: { partitionId: '0', sequenceNumber: 7 },
  };
}
