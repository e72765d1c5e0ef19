import { createServer } from 'node:net';
import { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { dedupeKey } from '../../src/routing/dedupe.js';
import { BlobLedger, DEFAULT_LEDGER_CONTAINER, createBlobLedger } from '../../src/storage/blobLedger.js';
import { ledgerBlobName, ledgerKeyHash, type LedgerDocument } from '../../src/storage/ledgerEntry.js';
import { StoreError } from '../../src/storage/storeError.js';
import {
  DEV_ACCOUNT_KEY,
  DEV_ACCOUNT_NAME,
  createTestContainer,
  devConnectionString,
  randomContainerName,
  type TestContainer,
} from '../support/azurite.js';
import { makeAlert, makeVulnerability } from '../support/findings.js';

const connectionString = inject('azuriteConnectionString');

/** Retries short enough for a test; the store's defaults are for production. */
const FAST_RETRIES = { maxTries: 2, retryDelayInMs: 50, maxRetryDelayInMs: 100, tryTimeoutInMs: 3_000 };
const HOUR_MS = 60 * 60_000;

/** A second client of the same container: another Function instance, with its own connections. */
function otherClient(containerName: string): ContainerClient {
  return BlobServiceClient.fromConnectionString(connectionString).getContainerClient(containerName);
}

function keyFor(i: number): string {
  return dedupeKey('teams-soc', makeAlert({ id: `alert-${i}-${'x'.repeat(40)}` }));
}

async function readEntry(container: ContainerClient, key: string): Promise<{ document: LedgerDocument; metadata: Record<string, string> | undefined; contentType: string | undefined }> {
  const blob = container.getBlockBlobClient(ledgerBlobName(key));
  const properties = await blob.getProperties();
  const document = JSON.parse((await blob.downloadToBuffer()).toString('utf8')) as LedgerDocument;
  return { document, metadata: properties.metadata, contentType: properties.contentType };
}

async function listNames(container: ContainerClient): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of container.listBlobsFlat()) names.push(blob.name);
  return names.sort();
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('BlobLedger against Azurite', () => {
  let container: TestContainer;

  beforeEach(async () => {
    container = await createTestContainer(connectionString, 'ledger');
  });

  afterEach(async () => {
    await container.dispose();
  });

  it('claims a key once, across ledger objects, and names the entry by the key hash', async () => {
    const key = dedupeKey('teams-soc', makeVulnerability());
    expect(key.length).toBeGreaterThan(200); // an ARM id: too long and too free for a name as is
    const ledger = new BlobLedger(container.containerClient);
    expect(await ledger.claim(key)).toBe(true);
    expect(await ledger.claim(key)).toBe(false);
    expect(await new BlobLedger(otherClient(container.containerName)).claim(key)).toBe(false);

    const hash = ledgerKeyHash(key);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await listNames(container.containerClient)).toEqual([`v1/${hash.slice(0, 2)}/${hash}.json`]);
    const entry = await readEntry(container.containerClient, key);
    expect(entry.contentType).toBe('application/json');
    expect(entry.metadata).toEqual({ state: 'pending' });
    expect(entry.document).toEqual({ key, state: 'pending', claimId: expect.any(String), claimedAt: expect.any(String) });
    expect(Number.isNaN(Date.parse(entry.document.claimedAt))).toBe(false);
  });

  it('lets exactly one of two instances claim each key when they race, over many keys', async () => {
    const a = new BlobLedger(container.containerClient);
    const b = new BlobLedger(otherClient(container.containerName));
    const keys = Array.from({ length: 40 }, (_, i) => keyFor(i));
    const answers = await Promise.all(keys.map((key) => Promise.all([a.claim(key), b.claim(key)])));
    for (const [index, pair] of answers.entries()) {
      expect(pair.filter(Boolean), `key ${index}: ${JSON.stringify(pair)}`).toHaveLength(1);
    }
    expect((await listNames(container.containerClient)).length).toBe(keys.length);
  });

  it('answers false for good once a claim is confirmed', async () => {
    const key = keyFor(1);
    const ledger = new BlobLedger(container.containerClient, { now: () => new Date('2025-08-21T10:00:00.000Z') });
    expect(await ledger.claim(key)).toBe(true);
    await ledger.confirm(key);
    const entry = await readEntry(container.containerClient, key);
    expect(entry.metadata).toEqual({ state: 'sent' });
    expect(entry.document).toMatchObject({ key, state: 'sent', claimedAt: '2025-08-21T10:00:00.000Z', sentAt: '2025-08-21T10:00:00.000Z' });

    expect(await ledger.claim(key)).toBe(false);
    // Even long after any lease: sent is sent.
    const muchLater = new BlobLedger(otherClient(container.containerName), { now: () => new Date(Date.now() + 1_000 * HOUR_MS) });
    expect(await muchLater.claim(key)).toBe(false);
  });

  it('lets the key be claimed again once released', async () => {
    const key = keyFor(2);
    const first = new BlobLedger(container.containerClient);
    const second = new BlobLedger(otherClient(container.containerName));
    expect(await first.claim(key)).toBe(true);
    expect(await second.claim(key)).toBe(false);
    await first.release(key);
    expect(await listNames(container.containerClient)).toEqual([]);
    expect(await second.claim(key)).toBe(true);
    // Releasing again (a retried settle) neither fails nor removes the other instance's claim.
    await first.release(key);
    expect(await first.claim(key)).toBe(false);
  });

  it('lets exactly one of two contenders take over a stale pending claim', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => keyFor(100 + i));
    const crashed = new BlobLedger(container.containerClient, { now: () => new Date(Date.now() - HOUR_MS) });
    for (const key of keys) expect(await crashed.claim(key)).toBe(true);

    const b = new BlobLedger(container.containerClient);
    const c = new BlobLedger(otherClient(container.containerName));
    const answers = await Promise.all(keys.map((key) => Promise.all([b.claim(key), c.claim(key)])));
    for (const [index, pair] of answers.entries()) {
      expect(pair.filter(Boolean), `key ${index}: ${JSON.stringify(pair)}`).toHaveLength(1);
    }

    // The crashed run comes back: its confirm and release leave the new claims alone.
    const [first, second] = keys;
    if (first === undefined || second === undefined) throw new Error('no keys');
    const takenOver = await readEntry(container.containerClient, first);
    await crashed.confirm(first);
    await crashed.release(second);
    expect(await readEntry(container.containerClient, first)).toEqual(takenOver);
    expect((await readEntry(container.containerClient, second)).document.state).toBe('pending');

    // The winner settles its own claim.
    const winner = answers[0]?.[0] === true ? b : c;
    await winner.confirm(first);
    expect((await readEntry(container.containerClient, first)).document.state).toBe('sent');
  });

  it('does not take over a pending claim within its lease', async () => {
    const key = keyFor(3);
    const owner = new BlobLedger(container.containerClient, { now: () => new Date(Date.now() - 9 * 60_000) });
    expect(await owner.claim(key)).toBe(true);
    const others = [new BlobLedger(container.containerClient), new BlobLedger(otherClient(container.containerName))];
    expect(await Promise.all(others.map((ledger) => ledger.claim(key)))).toEqual([false, false]);
    // With a shorter lease the same claim is stale.
    const impatient = new BlobLedger(container.containerClient, { leaseMs: 5 * 60_000 });
    expect(await impatient.claim(key)).toBe(true);
  });

  it('treats an unreadable entry as a claim made when it was last written', async () => {
    const key = keyFor(4);
    const garbage = 'not a ledger document';
    await container.containerClient.getBlockBlobClient(ledgerBlobName(key)).upload(garbage, garbage.length);
    expect(await new BlobLedger(container.containerClient).claim(key)).toBe(false);
    const later = new BlobLedger(container.containerClient, { now: () => new Date(Date.now() + HOUR_MS) });
    expect(await later.claim(key)).toBe(true);
    expect((await readEntry(container.containerClient, key)).document).toMatchObject({ key, state: 'pending' });
  });

  it('settles entries it did not claim itself: confirm writes sent, release leaves them alone', async () => {
    const pendingKey = keyFor(5);
    const sentKey = keyFor(6);
    const claimer = new BlobLedger(container.containerClient);
    expect(await claimer.claim(pendingKey)).toBe(true);
    expect(await claimer.claim(sentKey)).toBe(true);
    await claimer.confirm(sentKey);

    const stranger = new BlobLedger(otherClient(container.containerName));
    await stranger.release(sentKey);
    await stranger.release(pendingKey);
    await stranger.release(keyFor(7)); // never claimed: nothing to do
    expect(await listNames(container.containerClient)).toEqual([ledgerBlobName(pendingKey), ledgerBlobName(sentKey)].sort());
    expect((await readEntry(container.containerClient, pendingKey)).document.state).toBe('pending');

    await stranger.confirm(pendingKey);
    expect((await readEntry(container.containerClient, pendingKey)).document.state).toBe('sent');
    expect(await claimer.claim(pendingKey)).toBe(false);
  });

  it('creates a missing container once, lazily, named "ledger" by default', async () => {
    expect(DEFAULT_LEDGER_CONTAINER).toBe('ledger');
    expect(createBlobLedger({ connectionString }).containerName).toBe('ledger');
    const containerName = randomContainerName('lazy');
    const ledger = createBlobLedger({ connectionString, containerName, retryOptions: FAST_RETRIES });
    const probe = new ContainerClient(connectionString, containerName);
    try {
      expect(await probe.exists()).toBe(false); // nothing is sent before the first call
      expect(await Promise.all([ledger.claim(keyFor(8)), ledger.claim(keyFor(9))])).toEqual([true, true]);
      expect(await probe.exists()).toBe(true);
      expect((await listNames(probe)).length).toBe(2);
    } finally {
      await probe.deleteIfExists();
    }
  });

  it('refuses an invalid container name or lease at construction', () => {
    expect(() => createBlobLedger({ connectionString, containerName: 'Ledger_1' })).toThrow(
      /ledger container name "Ledger_1" may hold only lower-case letters, digits and hyphens/,
    );
    expect(() => createBlobLedger({ connectionString, leaseMs: 0 })).toThrow(RangeError);
  });

  it('rejects, naming the container and no key material, when the store is unreachable', async () => {
    const port = await closedPort();
    const unreachable = devConnectionString(`http://127.0.0.1:${port}/${DEV_ACCOUNT_NAME}`);
    const ledger = createBlobLedger({ connectionString: unreachable, retryOptions: FAST_RETRIES });
    const failure = await ledger.claim(keyFor(10)).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StoreError);
    const error = failure as StoreError;
    expect(error.message).toMatch(
      new RegExp(`^ledger store unreachable: container "ledger" at http://127\\.0\\.0\\.1:${port}/${DEV_ACCOUNT_NAME}/ledger: cannot create the container: .*ECONNREFUSED`),
    );
    expect(error.unreachable).toBe(true);
    expect(error.store).toBe('container "ledger"');
    expect(error.entryName).toBe(ledgerBlobName(keyFor(10)));
    for (const secret of [DEV_ACCOUNT_KEY, 'AccountKey', unreachable]) expect(error.message).not.toContain(secret);

    // Without container creation every call fails on its own request, just as precisely.
    const noCreate = createBlobLedger({
      connectionString: unreachable,
      containerName: 'ledger-b',
      retryOptions: FAST_RETRIES,
      createContainerIfMissing: false,
    });
    const name = ledgerBlobName(keyFor(11)).replace(/[/.]/g, '\\$&');
    await expect(noCreate.claim(keyFor(11))).rejects.toThrow(new RegExp(`^ledger store unreachable: container "ledger-b" at [^ ]+/ledger-b: cannot claim "${name}": .*ECONNREFUSED`));
    await expect(noCreate.confirm(keyFor(11))).rejects.toThrow(/^ledger store unreachable: container "ledger-b" .*: cannot confirm "/);
  });

  it('says the store refused when it answers with an error (wrong key: 403), without the key', async () => {
    const wrongKey = Buffer.from('not the key of this account, not at all').toString('base64');
    const ledger = createBlobLedger({
      connectionString: devConnectionString(inject('azuriteBlobEndpoint')).replace(DEV_ACCOUNT_KEY, wrongKey),
      containerName: container.containerName,
      retryOptions: FAST_RETRIES,
    });
    const failure = await ledger.claim(keyFor(12)).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StoreError);
    const error = failure as StoreError;
    expect(error.message).toMatch(new RegExp(`^ledger store refused the request: container "${container.containerName}" at [^ ]+: cannot claim "v1/[0-9a-f]{2}/[0-9a-f]{64}\\.json": HTTP 403 `));
    expect(error.unreachable).toBe(false);
    expect(error.message).not.toContain(wrongKey);
  });
});
