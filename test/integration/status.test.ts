/**
 * `defender-forwarder status`, in-process: the dead-letter backlog per destination and reason, expired
 * letters and the quarantine per reason code, from a state folder and from blob storage (Azurite), and a
 * clear exit 2 when the store cannot be reached.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { DeadLetter } from '../../src/delivery/contracts.js';
import type { QuarantineEntry } from '../../src/pipeline/quarantine.js';
import { BlobDeadLetterStore } from '../../src/storage/blobDeadLetters.js';
import { BlobQuarantineStore } from '../../src/storage/blobQuarantine.js';
import type { DeadLetterStore } from '../../src/storage/deadLetterStore.js';
import { FolderDeadLetterStore } from '../../src/storage/folderDeadLetters.js';
import { FolderQuarantineStore } from '../../src/storage/folderQuarantine.js';
import { DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, devConnectionString, randomContainerName } from '../support/azurite.js';
import { cli } from '../support/cli.js';

const connectionString = inject('azuriteConnectionString');
const scratch = mkdtempSync(path.join(tmpdir(), 'df-status-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function letter(destination: string, id: string, reason: string, deadLetteredAt: string): DeadLetter {
  return {
    format: 'defender-forwarder.deadletter/v1',
    destination,
    destinationType: destination === 'splunk' ? 'splunk-hec' : 'teams',
    input: `eh:0/${id}`,
    finding: { kind: 'alert', id, severity: 'High', status: 'New', title: 'x' },
    error: { message: reason, reason, retryable: true, configuration: false },
    attempts: 5,
    firstAttemptAt: deadLetteredAt,
    lastAttemptAt: deadLetteredAt,
    deadLetteredAt,
    payload: [],
    record: { SystemAlertId: id },
  };
}

function quarantined(input: string, code: QuarantineEntry['code'], quarantinedAt: string): QuarantineEntry {
  return { input, code, reason: code, kind: null, errors: [], raw: '{', quarantinedAt };
}

/**
 * The backlog every test looks at (the CLI's clock says 2026-11-28T00:00Z): three live letters, one of them
 * re-driven three times and not due before 01:00; one expired letter; three quarantined records.
 */
async function fillBacklog(store: DeadLetterStore & { put(letter: DeadLetter): Promise<void> }, quarantine: { put(entry: QuarantineEntry): Promise<void> }): Promise<void> {
  await store.put(letter('teams', 'a', 'http-503', '2026-11-20T00:00:00.000Z'));
  await store.put(letter('teams', 'b', 'http-503', '2026-11-25T00:00:00.000Z'));
  await store.put(letter('splunk', 'c', 'hec-9', '2026-11-27T00:00:00.000Z'));
  await store.put(letter('teams', 'd', 'http-400', '2026-11-01T00:00:00.000Z'));
  for await (const entry of store.list()) {
    if (entry.name.includes('/2026/11/25/')) await store.recordAttempt(entry, { attempts: 3, lastReason: 'http-429', nextAttemptAt: '2026-11-28T01:00:00.000Z' });
    if (entry.name.includes('/2026/11/01/')) await store.expire(entry, { attempts: 6, lastReason: 'http-400', expiredAt: '2026-11-27T00:00:00.000Z' });
  }
  await quarantine.put(quarantined('bad-1.txt', 'not-json', '2026-11-26T00:00:00.000Z'));
  await quarantine.put(quarantined('bad-2.txt', 'not-json', '2026-11-27T00:00:00.000Z'));
  await quarantine.put(quarantined('odd.json', 'schema', '2026-11-27T00:00:00.000Z'));
}

const EXPECTED_DEAD_LETTERS = {
  total: 3,
  dueNow: 2,
  destinations: {
    teams: {
      count: 2,
      dueNow: 1,
      oldest: '2026-11-20T00:00:00.000Z',
      maxAttempts: 3,
      reasons: {
        'http-503': { count: 1, dueNow: 1, oldest: '2026-11-20T00:00:00.000Z', maxAttempts: 0 },
        'http-429': { count: 1, dueNow: 0, oldest: '2026-11-25T00:00:00.000Z', maxAttempts: 3 },
      },
    },
    splunk: { count: 1, dueNow: 1, oldest: '2026-11-27T00:00:00.000Z', maxAttempts: 0, reasons: { 'hec-9': { count: 1, dueNow: 1, oldest: '2026-11-27T00:00:00.000Z', maxAttempts: 0 } } },
  },
};
const EXPECTED_EXPIRED = { total: 1, destinations: { teams: { count: 1, oldest: '2026-11-01T00:00:00.000Z' } } };

describe('status over a state folder', () => {
  const state = path.join(scratch, 'state');

  it('reports nothing waiting for a state folder that does not exist yet', async () => {
    const run = await cli(['status', '--state-dir', path.join(scratch, 'empty'), '--report', 'json']);
    expect(run.code).toBe(0);
    expect(run.lines[0]).toMatchObject({ deadLetters: { total: 0, dueNow: 0, destinations: {} }, expired: { total: 0 }, quarantine: { total: 0, codes: {} } });
  });

  it('counts the backlog per destination and reason, the expired letters and the quarantine per code', async () => {
    await fillBacklog(new FolderDeadLetterStore(state), new FolderQuarantineStore(path.join(state, 'quarantine')));
    const json = await cli(['status', '--state-dir', state, '--report', 'json']);
    expect(json.code).toBe(0);
    expect(json.lines).toEqual([
      {
        at: '2026-11-28T00:00:00.000Z',
        deadLetters: { store: `folder "${path.join(state, 'deadletter')}"`, ...EXPECTED_DEAD_LETTERS },
        expired: EXPECTED_EXPIRED,
        quarantine: {
          store: `folder "${path.join(state, 'quarantine')}"`,
          total: 3,
          codes: { 'not-json': { count: 2, oldest: '2026-11-26T00:00:00.000Z' }, schema: { count: 1, oldest: '2026-11-27T00:00:00.000Z' } },
        },
      },
    ]);

    const text = await cli(['status', '--state-dir', state]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`dead letters in folder "${path.join(state, 'deadletter')}": 3 (2 due now), as of 2026-11-28T00:00:00.000Z`);
    expect(text.stdout).toMatch(/\n {2}DESTINATION +REASON +COUNT +DUE NOW +ATTEMPTS +OLDEST\n/);
    expect(text.stdout).toMatch(/\n {2}teams +http-429 +1 +0 +3 +2026-11-25T00:00:00\.000Z\n/);
    expect(text.stdout).toMatch(/\n {2}splunk +hec-9 +1 +1 +0 +2026-11-27T00:00:00\.000Z\n/);
    expect(text.stdout).toMatch(/expired letters \(kept under expired\/\): 1\n {2}DESTINATION +COUNT +OLDEST\n {2}teams +1 +2026-11-01T00:00:00\.000Z\n/);
    expect(text.stdout).toMatch(/quarantined records in folder ".*quarantine": 3\n {2}CODE +COUNT +OLDEST\n {2}not-json +2 +2026-11-26T00:00:00\.000Z\n {2}schema +1 /);
  });
});

describe('status over blob storage', () => {
  const containers = { DEADLETTER_CONTAINER: randomContainerName('status-dl'), QUARANTINE_CONTAINER: randomContainerName('status-q'), LEDGER_CONTAINER: randomContainerName('status-l') };
  const service = BlobServiceClient.fromConnectionString(connectionString);
  afterAll(async () => {
    await Promise.all(Object.values(containers).map((name) => service.getContainerClient(name).deleteIfExists()));
  });

  it('reads the same backlog from the containers FORWARDER_STORAGE_CONNECTION and the container settings name', async () => {
    await fillBacklog(
      new BlobDeadLetterStore(service.getContainerClient(containers.DEADLETTER_CONTAINER)),
      new BlobQuarantineStore(service.getContainerClient(containers.QUARANTINE_CONTAINER)),
    );
    const run = await cli(['status', '--report', 'json'], { env: { FORWARDER_STORAGE_CONNECTION: connectionString, ...containers } });
    expect(run.code).toBe(0);
    expect(run.lines[0]).toMatchObject({
      deadLetters: { store: `container "${containers.DEADLETTER_CONTAINER}"`, ...EXPECTED_DEAD_LETTERS },
      expired: EXPECTED_EXPIRED,
      // A blob's time is its creation time (no document is downloaded).
      quarantine: { store: `container "${containers.QUARANTINE_CONTAINER}"`, total: 3, codes: { 'not-json': { count: 2 }, schema: { count: 1 } } },
    });
  });

  it('exits 2 when the storage account cannot be reached, naming the container and never the connection string', async () => {
    const unreachable = devConnectionString(`http://127.0.0.1:9/${DEV_ACCOUNT_NAME}`);
    const run = await cli(['status'], { env: { FORWARDER_STORAGE_CONNECTION: unreachable } });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^defender-forwarder: dead-letter store unreachable: container "deadletter" at http:\/\/127\.0\.0\.1:9\/devstoreaccount1\/deadletter: cannot list: /);
    expect(run.stdout).toBe('');
    for (const secret of [DEV_ACCOUNT_KEY, unreachable, 'AccountKey']) expect(run.stderr).not.toContain(secret);
  });
});
