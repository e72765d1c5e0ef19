/**
 * The standalone consumer (`forward --from-eventhub`) against the Event Hubs stand-in, with checkpoints and
 * the forwarder's stores in Azurite and a real HEC receiver: every record gets an outcome, a partition is
 * checkpointed after its batch, a new instance resumes after the checkpoint, and stopping is clean.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ContainerClient } from '@azure/storage-blob';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { cli } from '../support/cli.js';
import { createTestContainer, randomContainerName, type TestContainer } from '../support/azurite.js';
import { startEventHubsStandIn, type EventHubsStandIn } from '../support/eventHubs.js';
import { startHecReceiver, type HecReceiver } from '../support/hecReceiver.js';
import { alertBody, hecEventId, writeSplunkOnlyRules } from '../support/consumerFixtures.js';
import { startAppInsightsReceiver } from '../support/appInsightsReceiver.js';
import { METRIC } from '../../src/telemetry/metrics.js';

const connectionString = inject('azuriteConnectionString');
const root = path.resolve(import.meta.dirname, '../..');
const TOKEN = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const scratch = mkdtempSync(path.join(tmpdir(), 'df-consumer-'));
const rulesFile = writeSplunkOnlyRules(scratch);

/** A valid alert with its own id. */
function alert(n: number): { body: string; id: string } {
  const id = `consumer-test-${n}`;
  return { body: alertBody(id), id };
}

let hub: EventHubsStandIn;
let hec: HecReceiver;
let stores: TestContainer;
let checkpoints: TestContainer;
let hubName: string;
let env: Record<string, string>;

beforeAll(async () => {
  [hub, hec] = await Promise.all([startEventHubsStandIn(), startHecReceiver({ token: TOKEN })]);
});
afterAll(async () => {
  await Promise.all([hub.close(), hec.stop()]);
  rmSync(scratch, { recursive: true, force: true });
});
beforeEach(async () => {
  hubName = randomContainerName('hub');
  hub.createHub(hubName, 2);
  [stores, checkpoints] = await Promise.all([createTestContainer(connectionString, 'qu'), createTestContainer(connectionString, 'cp')]);
  hec.events.length = 0;
  env = {
    HEC_URL: hec.url,
    HEC_TOKEN: TOKEN,
    EVENTHUB_CONNECTION: hub.connectionString(hubName),
    EVENTHUB_CONSUMER_GROUP: 'forwarder',
    FORWARDER_STORAGE_CONNECTION: connectionString,
    CHECKPOINT_CONTAINER: checkpoints.containerName,
    QUARANTINE_CONTAINER: stores.containerName,
    DEADLETTER_CONTAINER: `${stores.containerName}-dl`,
    LEDGER_CONTAINER: `${stores.containerName}-lg`,
    // One partition is claimed per load-balancing round: quick rounds keep the test short.
    FORWARDER_LOAD_BALANCING_UPDATE_MS: '300',
  };
});
afterEach(async () => {
  await Promise.all([stores.dispose(), checkpoints.dispose()]);
});

/** Checkpoint blobs: partition -> sequence number, as BlobCheckpointStore writes them. */
async function checkpointsOf(container: ContainerClient): Promise<Record<string, number>> {
  const found: Record<string, number> = {};
  for await (const blob of container.listBlobsFlat({ includeMetadata: true })) {
    const match = /\/checkpoint\/(\d+)$/.exec(blob.name);
    const sequence = blob.metadata?.['sequencenumber'];
    if (match?.[1] !== undefined && sequence !== undefined) found[match[1]] = Number(sequence);
  }
  return found;
}

function hecIds(): string[] {
  return hec.events.map(hecEventId);
}

describe('forward --from-eventhub', () => {
  it('forwards every event of every partition, quarantines the bad ones, checkpoints each partition, and a new run resumes after the checkpoint', async () => {
    const first = Array.from({ length: 120 }, (_, n) => alert(n));
    hub.append(hubName, '0', first.slice(0, 60).map((record) => record.body));
    hub.append(hubName, '1', [...first.slice(60).map((record) => record.body), '{not json', '[1,2,3]']);

    const run = await cli(['forward', '--from-eventhub', '--rules', rulesFile, '--exit-when-idle', '1', '--max-batch-size', '25'], { env });
    expect(run.stderr).not.toMatch(/defender-forwarder: /);
    expect(run.code).toBe(0);
    expect(new Set(hecIds())).toEqual(new Set(first.map((record) => record.id)));
    expect(hec.events).toHaveLength(120);
    // One report line per record, and the two bad bodies quarantined with their reasons.
    // (the array body holds three records, each a number)
    expect(run.lines).toHaveLength(124);
    const quarantined = run.lines.filter((line) => line['outcome'] === 'quarantined');
    expect(quarantined.map((line) => line['input']).sort()).toEqual(['eh:1/60', 'eh:1/61#0', 'eh:1/61#1', 'eh:1/61#2']);
    const names: string[] = [];
    for await (const blob of stores.containerClient.listBlobsFlat()) names.push(blob.name);
    expect(names).toHaveLength(4);
    // Checkpoints at each partition's last event.
    expect(await checkpointsOf(checkpoints.containerClient)).toEqual({ '0': 59, '1': 61 });
    // Accounting: one run.summary per batch, and the run's total last.
    const summaries = run.stderr
      .split('\n')
      .filter((line) => line.startsWith('{"') && line.includes('"run.summary"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const batches = summaries.filter((summary) => summary['scope'] !== 'run');
    expect(batches.length).toBeGreaterThanOrEqual(5);
    expect(batches.every((batch) => batch['host'] === 'standalone' && batch['checkpointed'] === true)).toBe(true);
    expect(batches.reduce((total, batch) => total + Number(batch['received']), 0)).toBe(124);
    expect(summaries.at(-1)).toMatchObject({ scope: 'run', received: 124, routed: 120, quarantined: 4, delivered: { splunk: 120 }, quarantinedBy: { 'not-json': 1, 'not-an-object': 3 } });

    // More events; a new instance starts after the checkpoints: nothing is read twice.
    const more = Array.from({ length: 10 }, (_, n) => alert(1000 + n));
    hub.append(hubName, '0', more.map((record) => record.body));
    const second = await cli(['forward', '--from-eventhub', '--rules', rulesFile, '--exit-when-idle', '1', '--report', 'none'], { env });
    expect(second.code).toBe(0);
    expect(second.stdout).toBe('');
    expect(hec.events).toHaveLength(130);
    expect(hecIds().slice(120).sort()).toEqual(more.map((record) => record.id).sort());
    expect(await checkpointsOf(checkpoints.containerClient)).toEqual({ '0': 69, '1': 61 });
  }, 40_000);

  it('exports its metrics to Application Insights: per-batch counters equal to the run total, and the batch age', async () => {
    process.env['APPLICATION_INSIGHTS_NO_STATSBEAT'] = 'true'; // the exporter's own usage telemetry: never from a test
    const insights = await startAppInsightsReceiver();
    try {
      const records = Array.from({ length: 30 }, (_, n) => alert(2000 + n));
      hub.append(hubName, '0', records.slice(0, 20).map((record) => record.body));
      hub.append(hubName, '1', [...records.slice(20).map((record) => record.body), '{not json']);
      const run = await cli(['forward', '--from-eventhub', '--rules', rulesFile, '--exit-when-idle', '1', '--max-batch-size', '10', '--report', 'none'], {
        env: { ...env, APPLICATIONINSIGHTS_CONNECTION_STRING: insights.connectionString },
      });
      expect(run.code).toBe(0);
      expect(run.stderr).toContain('forward: metrics exported to Application Insights');
      const host = { host: 'standalone' };
      expect(insights.total(METRIC.received, host)).toBe(31);
      expect(insights.total(METRIC.routed, host)).toBe(30);
      expect(insights.total(METRIC.quarantined, { ...host, reason: 'not-json' })).toBe(1);
      expect(insights.total(METRIC.delivered, { ...host, destination: 'splunk' })).toBe(30);
      const ages = insights.metrics().filter((point) => point.name === METRIC.batchAge);
      expect(ages.reduce((batches, point) => batches + (point.count ?? 0), 0)).toBeGreaterThanOrEqual(4); // 10 + 10 + 11 events in batches of 10 at most
      expect(Math.min(...ages.map((point) => point.min ?? -1))).toBeGreaterThanOrEqual(0);
      expect(JSON.stringify(insights.envelopes)).not.toContain(TOKEN);
    } finally {
      await insights.close();
    }
  }, 30_000);

  it('a lone instance takes a 4-partition hub within a few seconds by default (not one partition per 10 s)', async () => {
    const wide = randomContainerName('hub');
    hub.createHub(wide, 4);
    for (const partition of ['0', '1', '2', '3']) hub.append(wide, partition, [alert(3000 + Number(partition)).body]);
    const defaults: Record<string, string | undefined> = { ...env, EVENTHUB_CONNECTION: hub.connectionString(wide), FORWARDER_LOAD_BALANCING_UPDATE_MS: undefined };
    const startedMs = Date.now();
    const run = await cli(['forward', '--from-eventhub', '--rules', rulesFile, '--exit-when-idle', '1', '--report', 'none'], { env: defaults });
    const elapsedMs = Date.now() - startedMs;
    expect(run.code).toBe(0);
    expect(run.stderr.match(/^forward: partition \d claimed/gm)).toHaveLength(4);
    // Claims every 2 s: about 6 s for the fourth partition; the SDK's default 10 s rounds would take 30 s.
    expect(elapsedMs).toBeLessThan(20_000);
  }, 40_000);

  it('--start-position latest skips what was there before, and --exit-when-idle still ends the run', async () => {
    hub.append(hubName, '0', [alert(4000).body, alert(4001).body]);
    const run = await cli(['forward', '--from-eventhub', '--rules', rulesFile, '--start-position', 'latest', '--exit-when-idle', '1', '--report', 'none'], { env });
    expect(run.code).toBe(0);
    expect(hec.events).toHaveLength(0);
  }, 30_000);

  it('refuses what it cannot run, with messages that say what to set, and never echoes the connection string', async () => {
    const cases: [string[], Record<string, string | undefined>, RegExp][] = [
      [[], { EVENTHUB_CONSUMER_GROUP: undefined }, /--consumer-group <name> is required/],
      [[], { EVENTHUB_CONSUMER_GROUP: '$Default' }, /\$Default is shared/],
      [[], { EVENTHUB_CONNECTION: undefined }, /needs EVENTHUB_CONNECTION/],
      [[], { FORWARDER_STORAGE_CONNECTION: undefined }, /set FORWARDER_STORAGE_CONNECTION .* or FORWARDER_STORAGE__accountName/],
      [['--input', 'x.json'], {}, /leave out --input/],
      [['--dry-run'], {}, /for a dry run/],
      [['--namespace', 'ns.servicebus.windows.net'], { EVENTHUB_NAME: undefined }, /--eventhub <name> is required with --namespace/],
      [[], { EVENTHUB_CONNECTION: 'Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=k;SharedAccessKey=s3cret;UseDevelopmentEmulator=true' }, /the Event Hub is not named/],
      [[], { CHECKPOINT_CONTAINER: 'Bad_Name' }, /--checkpoint-container Bad_Name/],
      [[], { DELIVERY_BUDGET_SECONDS: '1' }, /DELIVERY_BUDGET_SECONDS=1: expected a number of seconds from 5 to 300/],
      [[], { FORWARDER_OWNERSHIP_EXPIRY_MS: '5s' }, /FORWARDER_OWNERSHIP_EXPIRY_MS=5s: expected milliseconds/],
    ];
    for (const [args, overrides, message] of cases) {
      const run = await cli(['forward', '--from-eventhub', '--rules', rulesFile, ...args], { env: { ...env, ...overrides } });
      expect(run.code, message.source).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toContain('s3cret');
      expect(run.stderr).not.toContain('AccountKey=');
    }
    // The stores' container settings are checked for every command that opens them.
    for (const command of [['forward', '--input', rulesFile], ['redrive'], ['status'], ['forward', '--from-eventhub']]) {
      const argv = [...command, '--rules', rulesFile].slice(0, command[0] === 'status' ? 1 : undefined);
      const badContainer = await cli(argv, { env: { ...env, LEDGER_CONTAINER: 'Bad_Name' } });
      expect(badContainer.code, command.join(' ')).toBe(2);
      expect(badContainer.stderr).toMatch(/LEDGER_CONTAINER=Bad_Name: /);
      // Identity-based storage is checked the same way (the connection string would win over it: unset here).
      const badAccount = await cli(argv, { env: { ...env, FORWARDER_STORAGE_CONNECTION: undefined, FORWARDER_STORAGE__accountName: 'Not_An_Account' } });
      expect(badAccount.code, command.join(' ')).toBe(2);
      expect(badAccount.stderr).toMatch(/FORWARDER_STORAGE__accountName must be a storage account name/);
    }
    const noInput = await cli(['forward', '--rules', rulesFile], { env });
    expect(noInput.code).toBe(2);
    expect(noInput.stderr).toMatch(/--input <path\.\.\.> .* or --from-eventhub/);
  });

  it('stops cleanly on SIGTERM: the batch in flight finishes, is checkpointed, and the process exits 0', async () => {
    hub.append(hubName, '0', Array.from({ length: 40 }, (_, n) => alert(2000 + n).body));
    const child = spawn(process.execPath, [path.join(root, 'bin/defender-forwarder.js'), 'forward', '--from-eventhub', '--rules', rulesFile, '--report', 'none'], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(() => hec.events.length >= 40, 15_000);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    expect(stderr).toMatch(/SIGTERM: stopping cleanly/);
    expect(stderr).toMatch(/"scope":"run"/);
    expect((await checkpointsOf(checkpoints.containerClient))['0']).toBe(39);
  }, 30_000);
});

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
