/**
 * The Event Hub function's handler over a mixed batch, as the host would call it: `new InvocationContext`
 * with real trigger metadata, the real pipeline, and the real blob quarantine in Azurite.
 */
import { InvocationContext } from '@azure/functions';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createEventHubHandler, envelopesFromBatch } from '../../src/host/eventHubBatch.js';
import { MemoryLedger } from '../../src/routing/dedupe.js';
import { parseRules } from '../../src/routing/load.js';
import { createBlobQuarantineStore } from '../../src/storage/blobQuarantine.js';
import type { QuarantineDocument } from '../../src/storage/quarantineDocument.js';
import { createTestContainer, type TestContainer } from '../support/azurite.js';

const connectionString = inject('azuriteConnectionString');
const fixtures = path.resolve(import.meta.dirname, '../fixtures/defender');
const alertText = readFileSync(path.join(fixtures, 'eh_alert_K8S_AdmissionController_informational__sumologic.json'), 'utf8');
const invalidText = readFileSync(path.join(fixtures, 'eh_alert_legacy_SUSPECT_SVCHOST__asc-repo.INVALID-JSON.txt'), 'utf8');
const compliance = JSON.parse(readFileSync(path.join(fixtures, 'eh_regulatory_compliance_Failed__sumologic.json'), 'utf8')) as Record<string, unknown>;

const RULES = parseRules(
  `
destinations:
  splunk: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}"}
  teams: {type: teams, url: "\${TEAMS_URL}"}
routes:
  - name: all
    match: {}
    to: [splunk]
    continue: true
  - name: k8s
    match: {alertType: "K8S_*"}
    to: [teams]
`,
  'inline.yaml',
);

interface Logged {
  level: string;
  message: string;
}

function context(logs: Logged[], retryCount?: number): InvocationContext {
  const count = 5;
  return new InvocationContext({
    invocationId: 'inv-1',
    functionName: 'forwardDefenderExport',
    logHandler: (level, ...args) => logs.push({ level, message: args.map(String).join(' ') }),
    triggerMetadata: {
      partitionContext: { partitionId: '2', eventHubName: 'defender', consumerGroup: 'forwarder', fullyQualifiedNamespace: 'ns.servicebus.windows.net' },
      sequenceNumberArray: [100, 101, 102, 103, 104].slice(0, count),
      offsetArray: ['4096', '8192', '12288', '16384', '20480'],
      enqueuedTimeUtcArray: ['2026-11-27T10:00:00Z', '2026-11-27T10:00:01Z', '2026-11-27T10:00:02Z', '2026-11-27T10:00:03Z', '2026-11-27T10:00:04Z'],
      partitionKeyArray: [],
    },
    ...(retryCount !== undefined ? { retryContext: { retryCount, maxRetryCount: -1 } } : {}),
  });
}

/**
 * What the library would hand over with dataType string (the function registers binary, whose Buffers the
 * fault suite and the registration test send): strings it could parse arrive as objects, the rest as
 * strings; numbers as numbers. The handler takes these too.
 */
const BATCH: unknown[] = [
  JSON.parse(alertText), // a valid alert, already parsed by the library
  invalidText, // not JSON: stays a string
  { type: 'Microsoft.Compute/virtualMachines', id: '/subscriptions/s/x' }, // not a Defender record
  [JSON.parse(alertText), compliance], // an array body: two records
  42, // a number body
];

let test: TestContainer;
beforeEach(async () => {
  test = await createTestContainer(connectionString, 'quarantine');
});
afterEach(async () => {
  await test.dispose();
});

describe('Event Hub function handler', () => {
  it('gives every record of a mixed batch an outcome and quarantines the bad ones in blob storage', async () => {
    const logs: Logged[] = [];
    const handler = createEventHubHandler({
      rules: RULES,
      ledger: new MemoryLedger(),
      quarantine: createBlobQuarantineStore({ connectionString, containerName: test.containerName }),
      now: () => new Date('2026-11-27T10:05:00Z'),
    });
    const summary = await handler(BATCH, context(logs));

    expect(summary.records).toBe(6);
    expect(summary.outcomes).toEqual({ routed: 3, unrouted: 0, muted: 0, quarantined: 3 });
    expect(summary.delivered).toEqual({ splunk: 3, teams: 1 });
    // The same alert twice in one batch: Teams is told once.
    expect(summary.duplicates).toEqual({ teams: 1 });
    expect(summary.quarantined).toEqual({ 'not-json': 1, 'unknown-kind': 1, 'not-an-object': 1 });

    const names: string[] = [];
    for await (const blob of test.containerClient.listBlobsFlat({ includeMetadata: true })) names.push(blob.name);
    expect(names.sort()).toEqual(['2026/11/27/2-101.json', '2026/11/27/2-102.json', '2026/11/27/2-104.json']);

    const notJson = JSON.parse((await test.containerClient.getBlobClient('2026/11/27/2-101.json').downloadToBuffer()).toString()) as QuarantineDocument;
    expect(notJson).toMatchObject({
      input: 'eh:2/101',
      code: 'not-json',
      raw: invalidText,
      metadata: { partitionId: '2', sequenceNumber: 101, offset: '8192', enqueuedTimeUtc: '2026-11-27T10:00:01.000Z' },
    });
    expect(notJson.reason).toMatch(/^body is not JSON: .* at line 33 column 4$/);
    const unknown = JSON.parse((await test.containerClient.getBlobClient('2026/11/27/2-102.json').downloadToBuffer()).toString()) as QuarantineDocument;
    expect(unknown).toMatchObject({ code: 'unknown-kind', reason: 'unknown record type "Microsoft.Compute/virtualMachines"', raw: BATCH[2] });

    const warnings = logs.filter((log) => log.level === 'warning').map((log) => JSON.parse(log.message) as { input: string });
    expect(warnings.map((warning) => warning.input)).toEqual(['eh:2/101', 'eh:2/102', 'eh:2/104']);
    const done = logs.filter((log) => log.message.includes('"run.summary"'));
    expect(done).toHaveLength(1);
    expect(JSON.parse(done[0]?.message ?? '{}')).toMatchObject({
      event: 'run.summary',
      host: 'function',
      source: 'eh:2',
      partitionId: '2',
      events: 5,
      received: 6,
      routed: 3,
      quarantined: 3,
      quarantinedBy: { 'not-json': 1, 'unknown-kind': 1, 'not-an-object': 1 },
      delivered: { splunk: 3, teams: 1 },
      duplicates: { teams: 1 },
    });
  });

  it('a re-run of the batch (host retry) writes the same quarantine blobs again, no new ones', async () => {
    const handler = createEventHubHandler({
      rules: RULES,
      ledger: new MemoryLedger(),
      quarantine: createBlobQuarantineStore({ connectionString, containerName: test.containerName }),
    });
    await handler(BATCH, context([]));
    await handler(BATCH, context([], 1));
    let count = 0;
    for await (const blob of test.containerClient.listBlobsFlat()) count += blob.name.endsWith('.json') ? 1 : 0;
    expect(count).toBe(3);
  });

  it('throws when the quarantine store is unreachable, so the retry policy re-runs the batch', async () => {
    const logs: Logged[] = [];
    const handler = createEventHubHandler({
      rules: RULES,
      ledger: new MemoryLedger(),
      quarantine: createBlobQuarantineStore({
        connectionString: 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;',
        retryOptions: { maxTries: 1, tryTimeoutInMs: 2000 },
      }),
    });
    await expect(handler(BATCH, context(logs))).rejects.toThrow(/quarantine store unreachable/);
    const failed = logs.find((log) => log.level === 'error');
    expect(failed && JSON.parse(failed.message)).toMatchObject({ event: 'batch.failed', partitionId: '2', events: 5, firstInput: 'eh:2/100' });
    // No account key or connection string leaks into what is logged.
    expect(logs.map((log) => log.message).join('\n')).not.toMatch(/AccountKey|Eby8vdM02/);
  });

  it('a batch that failed on the store and is retried is decided afresh: nobody is skipped as a duplicate', async () => {
    const ledger = new MemoryLedger();
    const unreachable = createBlobQuarantineStore({
      connectionString: 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;',
      retryOptions: { maxTries: 1, tryTimeoutInMs: 2000 },
    });
    const first = createEventHubHandler({ rules: RULES, ledger, quarantine: unreachable });
    await expect(first(BATCH, context([]))).rejects.toThrow(/quarantine store unreachable/);
    // Storage is back; the host re-runs the same batch on the same instance.
    const retried = createEventHubHandler({
      rules: RULES,
      ledger,
      quarantine: createBlobQuarantineStore({ connectionString, containerName: test.containerName }),
    });
    const summary = await retried(BATCH, context([], 1));
    expect(summary.delivered).toEqual({ splunk: 3, teams: 1 });
    expect(summary.duplicates).toEqual({ teams: 1 });
  });

  it('a defect met by one record costs that record, not the batch', async () => {
    const handler = createEventHubHandler({
      rules: RULES,
      ledger: new MemoryLedger(),
      quarantine: createBlobQuarantineStore({ connectionString, containerName: test.containerName }),
    });
    // A getter that throws stands in for any defect while a record is read.
    const booby = Object.defineProperty({ SystemAlertId: 'x', AlertType: 'K8S_X' }, 'Severity', {
      enumerable: true,
      get() {
        throw new Error('boom');
      },
    });
    const summary = await handler([booby, JSON.parse(alertText)], context([]));
    expect(summary.outcomes).toMatchObject({ routed: 1, quarantined: 1 });
    expect(summary.quarantined).toEqual({ 'internal-error': 1 });
  });
});

describe('envelopesFromBatch', () => {
  it('labels events by partition and sequence number and keeps their metadata', () => {
    const envelopes = envelopesFromBatch(['a', 'b'], {
      partitionContext: { partitionId: '7' },
      sequenceNumberArray: [5, '6'],
      offsetArray: ['10', 11],
      enqueuedTimeUtcArray: ['2026-01-01T00:00:00Z'],
    });
    expect(envelopes).toEqual([
      { input: 'eh:7/5', body: 'a', metadata: { partitionId: '7', sequenceNumber: 5, offset: '10', enqueuedTimeUtc: '2026-01-01T00:00:00.000Z' } },
      { input: 'eh:7/6', body: 'b', metadata: { partitionId: '7', sequenceNumber: 6, offset: '11' } },
    ]);
  });

  it('survives missing or malformed trigger metadata', () => {
    expect(envelopesFromBatch('lone', undefined)).toEqual([{ input: 'eh:?/#0', body: 'lone', metadata: {} }]);
    expect(envelopesFromBatch([1, 2], { partitionContext: 'nonsense', sequenceNumberArray: 'x' }).map((e) => e.input)).toEqual(['eh:?/#0', 'eh:?/#1']);
  });
});
