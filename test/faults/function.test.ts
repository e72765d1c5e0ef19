/**
 * Fault injection, Function handler: the same generated records as the Functions host hands them over
 * (batches of 100 per partition, four partitions at once, `dataType: 'binary'` bodies as the Buffers the
 * library makes of them, trigger metadata) go through the real handler, `new InvocationContext(...)` per
 * invocation, while HEC, Teams, SMTP and the blob store fail. A handler that throws is run again with the
 * same batch, as the host's retry policy does (`retryContext` counting up). After a re-drive, what the
 * stand-ins received is counted.
 */
import { InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDelivery } from '../../src/delivery/deliver.js';
import { DEFAULT_RETRY_POLICY } from '../../src/delivery/retry.js';
import { rememberUnconfirmed } from '../../src/delivery/unconfirmed.js';
import { createEventHubHandler } from '../../src/host/eventHubBatch.js';
import { loadRulesFile } from '../../src/routing/load.js';
import { closeHttpClient, createHttpClient } from '../../src/sinks/http.js';
import { closeSinks, createSinks } from '../../src/sinks/registry.js';
import { createBlobDeadLetterStore } from '../../src/storage/blobDeadLetters.js';
import { createBlobLedger } from '../../src/storage/blobLedger.js';
import { createBlobQuarantineStore } from '../../src/storage/blobQuarantine.js';
import { FAULT_ROUTES_FILE, generateRecords, type GeneratedRecord } from '../support/generateRecords.js';
import { account, expectNothingLostOrRepeated, outage, redriveUntilEmpty, renderTable, scriptDestinationBursts, scriptTeamsDropsAndHang, sleep, startFaultRig, type FaultRig } from './harness.js';

const PARTITIONS = 4;
const BATCH = 100;
const LEASE_MS = 10_000;

let rig: FaultRig;
let records: GeneratedRecord[];
const http = createHttpClient();

beforeAll(async () => {
  rig = await startFaultRig(inject('azuriteBlobEndpoint'));
  records = generateRecords({ count: 5200, seed: 20261129 });
});
afterAll(async () => {
  closeHttpClient(http);
  await rig.close();
});

/** What the Node.js library hands the handler for a `dataType: 'binary'` event: its bytes, as a Buffer. */
function asTheLibraryPasses(body: string): unknown {
  return Buffer.from(body, 'utf8');
}

describe('fault injection: Function handler', () => {
  it('loses nothing and notifies once through destination and storage faults, host retries and re-drive', async () => {
    const rules = await loadRulesFile(FAULT_ROUTES_FILE);
    const sinks = createSinks(rules, { env: rig.env, http });
    const connectionString = rig.storage;
    // A claim whose write was cut by the store outage holds its notification for the lease (10 s here, like
    // LEDGER_LEASE_SECONDS=10); then the re-drive sends it.
    const ledger = rememberUnconfirmed(createBlobLedger({ connectionString, containerName: rig.containers.LEDGER_CONTAINER, leaseMs: LEASE_MS }));
    const handler = createEventHubHandler({
      rules,
      ledger,
      quarantine: createBlobQuarantineStore({ connectionString, containerName: rig.containers.QUARANTINE_CONTAINER }),
      delivery: createDelivery({
        rules,
        sinks,
        ledger,
        deadLetters: createBlobDeadLetterStore({ connectionString, containerName: rig.containers.DEADLETTER_CONTAINER }),
        // DELIVERY_BUDGET_SECONDS=5: the outages below outlast it.
        policy: { ...DEFAULT_RETRY_POLICY, maxTotalMs: 5000 },
      }),
    });

    // The host: per partition, one invocation at a time, in order; a batch that throws runs again.
    let invocations = 0;
    let hostRetries = 0;
    const logs: string[] = [];
    const nextSequence = new Map<number, number>();
    const runPartition = async (partition: number, bodies: readonly string[]): Promise<void> => {
      for (let start = 0; start < bodies.length; start += BATCH) {
        const batch = bodies.slice(start, start + BATCH);
        const first = nextSequence.get(partition) ?? 0;
        nextSequence.set(partition, first + batch.length);
        const messages = batch.map(asTheLibraryPasses);
        for (let retryCount = 0; ; retryCount++) {
          invocations += 1;
          const context = new InvocationContext({
            invocationId: `inv-${invocations}`,
            functionName: 'forwardDefenderExport',
            logHandler: (level, ...args) => {
              if (level === 'error' || level === 'warning') logs.push(`${level} ${args.map(String).join(' ')}`);
            },
            triggerMetadata: {
              partitionContext: { partitionId: String(partition), eventHubName: 'defender-export', consumerGroup: 'forwarder' },
              sequenceNumberArray: batch.map((_, i) => first + i),
              offsetArray: batch.map((_, i) => String((first + i) * 4096)),
              enqueuedTimeUtcArray: batch.map(() => new Date().toISOString()),
            },
            retryContext: { retryCount, maxRetryCount: -1 },
          });
          try {
            await handler(messages, context);
            break;
          } catch {
            hostRetries += 1;
            await sleep(500); // the host's exponential backoff, shortened
          }
        }
      }
    };
    const runSlice = (slice: readonly GeneratedRecord[]): Promise<void[]> => {
      const perPartition: string[][] = Array.from({ length: PARTITIONS }, () => []);
      slice.forEach((record, index) => perPartition[index % PARTITIONS]?.push(record.body));
      return Promise.all(perPartition.map((bodies, partition) => runPartition(partition, bodies)));
    };
    const slices = [0, 1000, 1800, 2600, 3400, records.length].map((start, index, all) => records.slice(start, all[index + 1] ?? start));

    try {
      // 1. HEC 503 / 500 bursts, Teams 429 with Retry-After, SMTP 421 / 451.
      scriptDestinationBursts(rig);
      await runSlice(slices[0] ?? []);

      // 2. HEC code 6 mid-batch, HEC and SMTP connection resets, a HEC hang.
      rig.hec.script({ fail: 'invalid-event', at: 3, code: 6, times: 2 });
      rig.fault('HEC 400 code 6 mid-batch', 2);
      const phase2 = runSlice(slices[1] ?? []);
      await outage(rig.hecProxy, 'reset', 1500);
      rig.fault('HEC connection reset (1.5 s)');
      await outage(rig.smtpProxy, 'reset', 1500);
      rig.fault('SMTP connection reset (1.5 s)');
      await outage(rig.hecProxy, 'hang', 4000);
      rig.fault('HEC hang (4 s)');
      scriptTeamsDropsAndHang(rig);
      await phase2;

      // 3. A HEC outage longer than the retry budget.
      const phase3 = runSlice(slices[2] ?? []);
      await outage(rig.hecProxy, 'refuse', 9000);
      rig.fault('HEC outage (9 s > 5 s budget)');
      await phase3;

      // 4. The blob store unreachable: quarantine, dead-letter and ledger writes fail, the handler throws, the
      //    host runs the batch again until the store is back.
      const storeDown = outage(rig.storeProxy, 'refuse', 6000);
      await sleep(200);
      const phase4 = runSlice(slices[3] ?? []);
      await storeDown;
      rig.fault('blob store outage (6 s)');
      await phase4;

      // 5. The rest, with Teams throttling again.
      rig.teams.throttle(2, 2);
      rig.fault('Teams 429 (Retry-After: 2)', 2);
      await runSlice(slices[4] ?? []);

      // Re-drive until nothing is left.
      const redrive = await redriveUntilEmpty({ ...rig.env, LEDGER_LEASE_SECONDS: String(LEASE_MS / 1000) }, LEASE_MS);

      const result = await account(rig, records);
      console.log(
        renderTable('fault injection: Function handler (4 partitions, batches of 100, host retries emulated)', rig, result, {
          'invocations (host re-runs after a throw)': `${invocations} (${hostRetries})`,
          're-drive runs / letters re-driven': `${redrive.runs} / ${redrive.redriven}`,
          're-drives that waited for a claim lease': redrive.waitedForLease,
        }),
      );
      expectNothingLostOrRepeated(result);
      // The faults bit: the store outage made the host re-run batches, and letters were re-driven.
      expect(hostRetries).toBeGreaterThan(0);
      expect(redrive.redriven).toBeGreaterThan(0);
      expect(logs.some((line) => line.includes('"batch.failed"'))).toBe(true);
      // No secret in anything the handler logged.
      const logged = logs.join('\n');
      expect(logged).not.toContain(rig.env['HEC_TOKEN']);
      expect(logged).not.toContain(rig.teams.signature);
    } finally {
      await closeSinks(sinks);
    }
  }, 300_000);
});
