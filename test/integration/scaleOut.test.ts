/**
 * Scale-out: two standalone consumers (child processes, the real command line) on one hub with 4 partitions
 * split the partitions through the checkpoint store's ownership blobs; when one is killed with SIGKILL the
 * other takes its partitions over from their last checkpoints, and no record is lost.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestContainer, randomContainerName, type TestContainer } from '../support/azurite.js';
import { startEventHubsStandIn, type EventHubsStandIn } from '../support/eventHubs.js';
import { startHecReceiver, type HecReceiver } from '../support/hecReceiver.js';
import { alertBody, hecEventId, writeSplunkOnlyRules } from '../support/consumerFixtures.js';

const connectionString = inject('azuriteConnectionString');
const root = path.resolve(import.meta.dirname, '../..');
const TOKEN = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const scratch = mkdtempSync(path.join(tmpdir(), 'df-scale-'));
const rulesFile = writeSplunkOnlyRules(scratch);
const PARTITIONS = ['0', '1', '2', '3'];
const BATCH = 20;

/** A consumer process and the partitions it says it owns (from its stderr). */
class Consumer {
  readonly owned = new Set<string>();
  stderr = '';
  readonly exited: Promise<number | null>;
  readonly #child: ChildProcessByStdio<null, null, Readable>;

  constructor(env: Record<string, string>) {
    this.#child = spawn(process.execPath, [path.join(root, 'bin/defender-forwarder.js'), 'forward', '--from-eventhub', '--rules', rulesFile, '--report', 'none', '--max-batch-size', String(BATCH)], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.#child.once('exit', (code) => resolve(code)));
    let pending = '';
    this.#child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString('utf8');
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const change = /^forward: partition (\d+) (claimed|released)/.exec(line);
        if (!change?.[1]) continue;
        if (change[2] === 'claimed') this.owned.add(change[1]);
        else this.owned.delete(change[1]);
      }
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }
}

let hub: EventHubsStandIn;
let hec: HecReceiver;
let checkpoints: TestContainer;
let stores: TestContainer;

beforeAll(async () => {
  [hub, hec, checkpoints, stores] = await Promise.all([
    startEventHubsStandIn(),
    startHecReceiver({ token: TOKEN }),
    createTestContainer(connectionString, 'cp'),
    createTestContainer(connectionString, 'st'),
  ]);
});
afterAll(async () => {
  await Promise.all([hub.close(), hec.stop(), checkpoints.dispose(), stores.dispose()]);
  rmSync(scratch, { recursive: true, force: true });
});

describe('two standalone consumers on one hub', () => {
  it('split 4 partitions; when one is killed the other resumes its partitions from their checkpoints, losing nothing', async () => {
    const hubName = randomContainerName('hub');
    hub.createHub(hubName, PARTITIONS.length);
    const env = {
      HEC_URL: hec.url,
      HEC_TOKEN: TOKEN,
      EVENTHUB_CONNECTION: hub.connectionString(hubName),
      EVENTHUB_CONSUMER_GROUP: 'forwarder',
      FORWARDER_STORAGE_CONNECTION: connectionString,
      CHECKPOINT_CONTAINER: checkpoints.containerName,
      QUARANTINE_CONTAINER: stores.containerName,
      DEADLETTER_CONTAINER: `${stores.containerName}-dl`,
      LEDGER_CONTAINER: `${stores.containerName}-lg`,
      // Quick hand-over for the test: ownership renewed every 300 ms, lost after 3 s without renewal.
      FORWARDER_LOAD_BALANCING_UPDATE_MS: '300',
      FORWARDER_OWNERSHIP_EXPIRY_MS: '3000',
    };

    // Events keep arriving on every partition while the consumers start, split, and one dies.
    const sent: string[] = [];
    const partitionOf = new Map<string, string>();
    let counter = 0;
    const producer = setInterval(() => {
      for (const partition of PARTITIONS) {
        const bodies: string[] = [];
        for (let i = 0; i < 5; i++) {
          const id = `scale-${counter++}`;
          sent.push(id);
          bodies.push(alertBody(id));
        }
        const stored = hub.append(hubName, partition, bodies);
        stored.forEach((event, i) => partitionOf.set(`scale-${counter - bodies.length + i}`, partition));
      }
    }, 100);

    // A runs alone first and takes the whole hub; B joins, as when a deployment scales out.
    const a = new Consumer(env);
    let b: Consumer | undefined;
    try {
      await waitFor(() => a.owned.size === 4 && hec.events.length > 50, 20_000, () => `a owns ${[...a.owned]}`);
      b = new Consumer(env);
      // Ownership settles: for a moment after a steal both may say they read a partition (the loser hears of
      // it at its next receive), so wait for a stable split, two each, disjoint, covering the hub.
      const split = (): boolean => a.owned.size === 2 && b?.owned.size === 2 && new Set([...a.owned, ...b.owned]).size === 4;
      await waitFor(split, 20_000, () => `owned: a ${[...a.owned]}, b ${[...(b?.owned ?? [])]}`);
      const joined = b;
      const aPartitions = [...a.owned];
      // Both are working: each has delivered from its own partitions.
      await waitFor(() => hec.events.length > 200, 10_000, () => `${hec.events.length} events`);

      a.kill('SIGKILL');
      await a.exited;
      const killedAt = Date.now();
      await waitFor(() => joined.owned.size === 4, 20_000, () => `b owns ${[...joined.owned]}`);
      const takeoverMs = Date.now() - killedAt;
      // Within the ownership expiry and a few load-balancing rounds.
      expect(takeoverMs).toBeLessThan(10_000);
      expect(joined.stderr).toMatch(new RegExp(`partition ${aPartitions[0]} claimed`));

      clearInterval(producer);
      const expected = new Set(sent);
      await waitFor(() => idsInSplunk().size === expected.size, 20_000, () => `${idsInSplunk().size} of ${expected.size} in Splunk`);
      joined.kill('SIGTERM');
      expect(await joined.exited).toBe(0);
      expect(joined.stderr).toMatch(/"scope":"run"/);

      // Nothing lost: every record sent is in Splunk.
      expect(idsInSplunk()).toEqual(expected);
      // Records read twice come from hand-overs only: a new owner starts at the checkpoint it read when it
      // claimed the partition, while the old owner goes on until its link is taken (or it dies). Splunk
      // keeps both copies (searchable by id); notifications are kept single by the ledger.
      const copies = new Map<string, number>();
      for (const id of hec.events.map(hecEventId)) copies.set(id, (copies.get(id) ?? 0) + 1);
      const duplicated = [...copies].filter(([, count]) => count > 1).map(([id]) => partitionOf.get(id));
      const handedOver = new Set([...aPartitions, ...[...a.stderr.matchAll(/^forward: partition (\d+) released \(OwnershipLost\)/gm)].map((match) => match[1])]);
      expect(new Set(duplicated).size).toBeLessThanOrEqual(handedOver.size);
      for (const partition of duplicated) expect(handedOver).toContain(partition);
      expect(hec.events.length - expected.size).toBeLessThan(expected.size / 5);
      // Every partition is checkpointed at its last event.
      const last: Record<string, number> = {};
      for (const partition of PARTITIONS) last[partition] = hub.events(hubName, partition).length - 1;
      const found: Record<string, number> = {};
      for await (const blob of checkpoints.containerClient.listBlobsFlat({ includeMetadata: true })) {
        const match = /\/checkpoint\/(\d+)$/.exec(blob.name);
        if (match?.[1] !== undefined) found[match[1]] = Number(blob.metadata?.['sequencenumber']);
      }
      expect(found).toEqual(last);
    } finally {
      clearInterval(producer);
      a.kill('SIGKILL');
      b?.kill('SIGKILL');
    }
  }, 90_000);
});

function idsInSplunk(): Set<string> {
  return new Set(hec.events.map(hecEventId));
}

async function waitFor(condition: () => boolean, timeoutMs: number, state: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting (${state()})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
