/**
 * Fault injection, standalone consumer: generated Defender records of every kind (valid and hostile) go
 * through the Event Hubs stand-in into the real command line (`forward --from-eventhub`, child processes),
 * while HEC, Teams, SMTP, the blob store and the Event Hubs connection fail in turn and the consumer is
 * killed with SIGKILL mid-batch and restarted. After a re-drive, what the stand-ins received is counted:
 * every valid record is in Splunk, every notification arrived exactly once, every invalid record is in
 * quarantine with its reason, nothing is lost.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cli } from '../support/cli.js';
import { startEventHubsStandIn, type EventHubsStandIn } from '../support/eventHubs.js';
import { FAULT_ROUTES_FILE, generateRecords, type GeneratedRecord } from '../support/generateRecords.js';
import { account, expectNothingLostOrRepeated, outage, redriveUntilEmpty, renderTable, scriptDestinationBursts, scriptTeamsDropsAndHang, sleep, startFaultRig, waitFor, type FaultRig } from './harness.js';

const root = path.resolve(import.meta.dirname, '../..');
const PARTITIONS = 4;
const HUB = 'defender-export';

class ConsumerProcess {
  stderr = '';
  readonly exited: Promise<number | null>;
  readonly #child: ChildProcessByStdio<null, null, Readable>;

  constructor(env: Record<string, string>, extra: readonly string[] = []) {
    this.#child = spawn(
      process.execPath,
      [path.join(root, 'bin/defender-forwarder.js'), 'forward', '--from-eventhub', '--rules', FAULT_ROUTES_FILE, '--report', 'none', '--max-batch-size', '50', ...extra],
      { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.exited = new Promise((resolve) => this.#child.once('exit', (code) => resolve(code)));
    this.#child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
  }

  /** Batches this process finished (its per-batch run.summary lines). */
  batches(): number {
    return this.stderr.match(/"event":"run.summary","host":"standalone"/g)?.length ?? 0;
  }

  kill(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }
}

let rig: FaultRig;
let hub: EventHubsStandIn;
let records: GeneratedRecord[];

beforeAll(async () => {
  rig = await startFaultRig(inject('azuriteBlobEndpoint'));
  hub = await startEventHubsStandIn({ hubs: { [HUB]: PARTITIONS } });
  records = generateRecords({ count: 5200, seed: 20261128 });
});
afterAll(async () => {
  await hub.close();
  await rig.close();
});

/** Appends bodies round-robin over the partitions (as a hub without partition keys spreads them). */
function publish(slice: readonly GeneratedRecord[]): void {
  const perPartition: string[][] = Array.from({ length: PARTITIONS }, () => []);
  slice.forEach((record, index) => perPartition[index % PARTITIONS]?.push(record.body));
  perPartition.forEach((bodies, partition) => hub.append(HUB, String(partition), bodies));
}

describe('fault injection: standalone consumer', () => {
  it('loses nothing and notifies once through destination, storage and Event Hubs faults, SIGKILL and re-drive', async () => {
    const env = {
      ...rig.env,
      EVENTHUB_CONNECTION: hub.connectionString(HUB),
      EVENTHUB_CONSUMER_GROUP: 'forwarder',
      // A short retry budget, so that the outages below outlast it and records are dead-lettered.
      DELIVERY_BUDGET_SECONDS: '5',
      FORWARDER_LOAD_BALANCING_UPDATE_MS: '300',
      FORWARDER_OWNERSHIP_EXPIRY_MS: '3000',
      // A notification claimed by the killed consumer blocks it for this long, then re-drive may send it.
      LEDGER_LEASE_SECONDS: '10',
    };
    const slices = [0, 1000, 1800, 2600, 3400, 4200, records.length].map((start, index, all) => records.slice(start, all[index + 1] ?? start));
    const delivered = (): number => rig.hec.events.length;
    let consumer = new ConsumerProcess(env);
    try {
      // 1. HEC 503 (code 9, Retry-After) and 500 (code 8) bursts, Teams 429 with Retry-After, SMTP 421 / 451.
      scriptDestinationBursts(rig);
      publish(slices[0] ?? []);
      await waitFor(() => delivered() >= 500, 60_000, () => `phase 1: ${delivered()} in Splunk`);

      // 2. HEC code 6 mid-batch (one event invalid: the rest of the request is indexed), connection resets
      //    and a hang (HEC's 3 s timeout), SMTP connection resets.
      rig.hec.script({ fail: 'invalid-event', at: 3, code: 6, times: 2 });
      rig.fault('HEC 400 code 6 mid-batch', 2);
      publish(slices[1] ?? []);
      await outage(rig.hecProxy, 'reset', 1500);
      rig.fault('HEC connection reset (1.5 s)');
      await outage(rig.smtpProxy, 'reset', 1500);
      rig.fault('SMTP connection reset (1.5 s)');
      await outage(rig.hecProxy, 'hang', 4000);
      rig.fault('HEC hang (4 s)');
      // Teams: a gateway that drops the connection, and one that never answers (the 3 s timeout).
      scriptTeamsDropsAndHang(rig);

      // 3. A HEC outage longer than the 5 s retry budget: what was in flight is dead-lettered.
      publish(slices[2] ?? []);
      await outage(rig.hecProxy, 'refuse', 9000);
      rig.fault('HEC outage (9 s > 5 s budget)');

      // 4. The blob store (quarantine, dead letters, ledger, checkpoints) unreachable: batches stay
      //    unacknowledged and run again once it is back.
      //    Half the slice first; once the consumer is working on it, the store goes away and the other half
      //    arrives meanwhile, so batches certainly meet the outage.
      const phase4 = slices[3] ?? [];
      const beforeOutage = consumer.batches();
      publish(phase4.slice(0, phase4.length / 2));
      await waitFor(() => consumer.batches() > beforeOutage, 60_000, () => 'phase 4: a batch before the store outage');
      const storeDown = outage(rig.storeProxy, 'refuse', 6000);
      publish(phase4.slice(phase4.length / 2));
      await waitFor(() => /a store is unreachable/.test(consumer.stderr), 6000, () => 'phase 4: a batch meeting the store outage');
      await storeDown;
      rig.fault('blob store outage (6 s)');

      // 5. The Event Hubs connection dropped, twice.
      publish(slices[4] ?? []);
      for (let drop = 0; drop < 2; drop++) {
        // Dropped once the consumer is connected (again): it reconnects by itself and resumes.
        await waitFor(() => hub.receivers(HUB).length > 0, 30_000, () => 'phase 5: the consumer to attach its receivers');
        await sleep(1000);
        rig.fault('Event Hubs connection drop', hub.dropConnections() > 0 ? 1 : 0);
      }

      // 6. The consumer killed with SIGKILL mid-batch, and restarted: it resumes from the checkpoints.
      //    Mid-batch: Splunk hangs, so batches sit in delivery (their notifications already sent and
      //    confirmed, their HEC requests pending, nothing checkpointed) when the process is killed.
      publish(slices[5] ?? []);
      const before = consumer.batches();
      await waitFor(() => consumer.batches() >= before + 3, 60_000, () => 'phase 6: batches after the restart of work');
      rig.hecProxy.setMode('hang');
      const notified = rig.teams.messages.length + rig.smtp.messages.length;
      await waitFor(() => rig.teams.messages.length + rig.smtp.messages.length > notified, 30_000, () => 'phase 6: a notification of a batch in flight');
      await sleep(300);
      consumer.kill('SIGKILL');
      await consumer.exited;
      rig.hecProxy.setMode('pass');
      rig.fault('consumer SIGKILL mid-batch + restart');
      const first = consumer;
      consumer = new ConsumerProcess(env, ['--exit-when-idle', '3']);
      expect(await Promise.race([consumer.exited, sleep(150_000).then(() => 'timeout')])).toBe(0);
      expect(first.stderr).toMatch(/a store is unreachable/);
      // Progress on stderr: events, rate and lag per partition.
      expect(first.stderr).toMatch(/^forward: [\d,]+ events, [\d,]+\/s, lag \d+:\d+/m);
      for (const secret of [rig.env['HEC_TOKEN'] ?? '', rig.teams.signature]) {
        expect(first.stderr + consumer.stderr).not.toContain(secret);
      }

      // Re-drive what was dead-lettered (HEC outage, code 6, exhausted budgets, notifications the killed
      // consumer had claimed: those wait for the claim's lease, 10 s here) until nothing is left.
      const redrive = await redriveUntilEmpty(env, 10_000);
      const status = await cli(['status', '--report', 'json'], { env, now: new Date() });
      expect(status.code).toBe(0);

      const result = await account(rig, records);

      console.log(
        renderTable('fault injection: standalone consumer (forward --from-eventhub, 4 partitions)', rig, result, {
          'consumer batches (1st / 2nd process)': `${first.batches()} / ${consumer.batches()}`,
          're-drive runs / letters re-driven': `${redrive.runs} / ${redrive.redriven}`,
          're-drives that waited for a claim lease': redrive.waitedForLease,
        }),
      );
      expectNothingLostOrRepeated(result);
      // The faults really happened: something was dead-lettered and re-driven, and batches were re-run.
      expect(redrive.redriven).toBeGreaterThan(0);
      expect(rig.faults.get('Event Hubs connection drop')).toBe(2);
    } finally {
      consumer.kill('SIGKILL');
    }
  }, 300_000);
});
