import { createServer } from 'node:net';
import { ContainerClient } from '@azure/storage-blob';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { DeadLetter } from '../../src/delivery/contracts.js';
import {
  BlobDeadLetterStore,
  DEFAULT_DEAD_LETTER_CONTAINER,
  createBlobDeadLetterStore,
  type DeadLetterBlobLike,
  type DeadLetterContainerLike,
} from '../../src/storage/blobDeadLetters.js';
import type { DeadLetterListing } from '../../src/storage/deadLetterStore.js';
import { deadLetterBlobName } from '../../src/storage/deadLetterEntry.js';
import { StoreError } from '../../src/storage/storeError.js';
import {
  DEV_ACCOUNT_KEY,
  DEV_ACCOUNT_NAME,
  createTestContainer,
  devConnectionString,
  randomContainerName,
  type TestContainer,
} from '../support/azurite.js';

const connectionString = inject('azuriteConnectionString');
const blobEndpoint = inject('azuriteBlobEndpoint');

/** Retries short enough for a test; the store's defaults are for production. */
const FAST_RETRIES = { maxTries: 2, retryDelayInMs: 50, maxRetryDelayInMs: 100, tryTimeoutInMs: 3_000 };

/** A Teams notification of an Event Hub record (the second of its body) that failed for good. */
function eventHubLetter(overrides: Partial<DeadLetter> = {}): DeadLetter {
  return {
    format: 'defender-forwarder.deadletter/v1',
    destination: 'teams-soc',
    destinationType: 'teams',
    input: 'eh:3/1234#2',
    finding: { kind: 'alert', id: '2517538088322968242_B6C1A2F0', severity: 'High', status: 'New', title: 'Role binding to cluster-admin' },
    error: { message: 'HTTP 400: malformed card', reason: 'http-400', retryable: false, configuration: false },
    attempts: 1,
    firstAttemptAt: '2025-03-05T00:00:01.000Z',
    lastAttemptAt: '2025-03-05T00:00:01.000Z',
    // A later day than the enqueued time: the name must follow the event, not the clock.
    deadLetteredAt: '2025-03-05T00:00:02.000Z',
    dedupeKey: '["teams-soc","alert","2517538088322968242_b6c1a2f0","new"]',
    payload: [{ name: 'teams-soc/eh-3-1234-2.json', content: '{"type":"message","attachments":[]}' }],
    record: { SystemAlertId: '2517538088322968242_B6C1A2F0', Severity: 'High', Status: 'New', nested: { ü: '\u2028' } },
    metadata: { partitionId: '3', sequenceNumber: 1234, offset: '98765', enqueuedTimeUtc: '2025-03-04T23:59:59.123Z', partitionKey: 'pk-1' },
    ...overrides,
  };
}

async function listNames(container: ContainerClient): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of container.listBlobsFlat()) names.push(blob.name);
  return names.sort();
}

async function download(container: ContainerClient, name: string): Promise<unknown> {
  return JSON.parse((await container.getBlockBlobClient(name).downloadToBuffer()).toString('utf8')) as unknown;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('BlobDeadLetterStore against Azurite', () => {
  let container: TestContainer;

  beforeEach(async () => {
    container = await createTestContainer(connectionString, 'deadletter');
  });

  afterEach(async () => {
    await container.dispose();
  });

  it('names Event Hub letters <destination>/<enqueued day>/<partition>-<sequence>-<index>-<hash>.json', async () => {
    const store = new BlobDeadLetterStore(container.containerClient);
    expect(store.containerName).toBe(container.containerName);
    await store.put(eventHubLetter());
    await store.put(eventHubLetter({ input: 'eh:3/1235', metadata: { partitionId: '3', sequenceNumber: 1235 } }));
    const names = await listNames(container.containerClient);
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/^teams-soc\/2025\/03\/04\/3-1234-2-[0-9a-f]{12}\.json$/);
    // No enqueued time: the day the letter was written.
    expect(names[1]).toMatch(/^teams-soc\/2025\/03\/05\/3-1235-[0-9a-f]{12}\.json$/);
    expect(names).toContain(deadLetterBlobName(eventHubLetter()));
  });

  it('names file letters by a slug of the input label', async () => {
    const store = new BlobDeadLetterStore(container.containerClient);
    const { metadata: _dropped, ...fromFile } = eventHubLetter({ input: 'samples/bad export.json#4', deadLetteredAt: '2025-06-01T10:00:00Z' });
    await store.put(fromFile);
    expect(await listNames(container.containerClient)).toEqual([expect.stringMatching(/^teams-soc\/2025\/06\/01\/samples-bad-export\.json-4-[0-9a-f]{12}\.json$/)]);
  });

  it('stores the letter as application/json with destination, reason, attempts, kind and time as metadata', async () => {
    const store = new BlobDeadLetterStore(container.containerClient);
    const letter = eventHubLetter({ attempts: 6, error: { message: 'HTTP 503 (6 attempts)', reason: 'http-503', retryable: true, configuration: false } });
    await store.put(letter);
    const name = deadLetterBlobName(letter);
    const properties = await container.containerClient.getBlockBlobClient(name).getProperties();
    expect(properties.contentType).toBe('application/json');
    expect(properties.metadata).toEqual({ destination: 'teams-soc', reason: 'http-503', attempts: '6', kind: 'alert', deadletteredat: '2025-03-05T00:00:02.000Z' });
    expect(await download(container.containerClient, name)).toEqual(letter);
  });

  it('overwrites the same blob when the same letter is written again (batch re-run)', async () => {
    const store = new BlobDeadLetterStore(container.containerClient);
    await store.put(eventHubLetter());
    await store.put(eventHubLetter({ attempts: 3, deadLetteredAt: '2025-03-05T00:09:00.000Z' }));
    const names = await listNames(container.containerClient);
    expect(names).toEqual([deadLetterBlobName(eventHubLetter())]);
    expect(await download(container.containerClient, names[0] ?? '')).toMatchObject({ attempts: 3, deadLetteredAt: '2025-03-05T00:09:00.000Z' });
  });

  it('keeps one record\'s letters for different destinations and statuses apart', async () => {
    const store = new BlobDeadLetterStore(container.containerClient);
    const base = eventHubLetter();
    const letters = [
      base,
      eventHubLetter({ destination: 'email-soc', destinationType: 'email' }),
      eventHubLetter({ finding: { ...base.finding, status: 'Resolved' } }),
      // Case differences in id and status are the same notification (as in the ledger key): one name.
      eventHubLetter({ finding: { ...base.finding, id: base.finding.id.toLowerCase(), status: 'NEW' } }),
    ];
    for (const letter of letters) await store.put(letter);
    const names = await listNames(container.containerClient);
    expect(names).toHaveLength(3);
    expect(names.filter((name) => name.startsWith('teams-soc/2025/03/04/3-1234-2-'))).toHaveLength(2);
    expect(names.filter((name) => name.startsWith('email-soc/2025/03/04/3-1234-2-'))).toHaveLength(1);
  });

  it('creates a missing container once, lazily, named "deadletter" by default', async () => {
    expect(DEFAULT_DEAD_LETTER_CONTAINER).toBe('deadletter');
    expect(createBlobDeadLetterStore({ connectionString }).containerName).toBe('deadletter');
    const containerName = randomContainerName('lazy');
    const store = createBlobDeadLetterStore({ connectionString, containerName, retryOptions: FAST_RETRIES });
    const probe = new ContainerClient(connectionString, containerName);
    try {
      expect(await probe.exists()).toBe(false);
      await Promise.all([store.put(eventHubLetter()), store.put(eventHubLetter({ destination: 'email-soc' }))]);
      expect((await listNames(probe)).length).toBe(2);
    } finally {
      await probe.deleteIfExists();
    }
  });

  it('refuses an invalid container name at construction, naming it', () => {
    expect(() => createBlobDeadLetterStore({ connectionString, containerName: 'Dead_Letters' })).toThrow(
      /dead-letter container name "Dead_Letters" may hold only lower-case letters, digits and hyphens/,
    );
  });

  it('rejects, naming the container and no key material, when the store is unreachable', async () => {
    const port = await closedPort();
    const unreachable = devConnectionString(`http://127.0.0.1:${port}/${DEV_ACCOUNT_NAME}`);
    const store = createBlobDeadLetterStore({ connectionString: unreachable, retryOptions: FAST_RETRIES });
    const failure = await store.put(eventHubLetter()).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StoreError);
    const error = failure as StoreError;
    expect(error.message).toMatch(
      new RegExp(`^dead-letter store unreachable: container "deadletter" at http://127\\.0\\.0\\.1:${port}/${DEV_ACCOUNT_NAME}/deadletter: cannot create the container: .*ECONNREFUSED`),
    );
    expect(error.unreachable).toBe(true);
    expect(error.store).toBe('container "deadletter"');
    expect(error.entryName).toBe(deadLetterBlobName(eventHubLetter()));
    for (const secret of [DEV_ACCOUNT_KEY, 'AccountKey', unreachable]) expect(error.message).not.toContain(secret);

    const noCreate = createBlobDeadLetterStore({
      connectionString: unreachable,
      containerName: 'letters-b',
      retryOptions: FAST_RETRIES,
      createContainerIfMissing: false,
    });
    await expect(noCreate.put(eventHubLetter())).rejects.toThrow(
      /^dead-letter store unreachable: container "letters-b" at [^ ]+\/letters-b: cannot write "teams-soc\/2025\/03\/04\/3-1234-2-[0-9a-f]{12}\.json": .*ECONNREFUSED/,
    );
  });

  it('says the store refused the write when it answers with an error (wrong key: 403)', async () => {
    const wrongKey = Buffer.from('not the key of this account, not at all').toString('base64');
    const store = createBlobDeadLetterStore({
      connectionString: devConnectionString(blobEndpoint).replace(DEV_ACCOUNT_KEY, wrongKey),
      containerName: container.containerName,
      retryOptions: FAST_RETRIES,
    });
    const failure = await store.put(eventHubLetter()).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StoreError);
    const error = failure as StoreError;
    expect(error.message).toMatch(new RegExp(`^dead-letter store refused the request: container "${container.containerName}" at [^ ]+: cannot write "teams-soc/[^"]+": HTTP 403 `));
    expect(error.unreachable).toBe(false);
    expect(error.message).not.toContain(wrongKey);
  });
});

async function listAll(store: BlobDeadLetterStore, options: { destination?: string; expired?: boolean } = {}): Promise<DeadLetterListing[]> {
  const entries: DeadLetterListing[] = [];
  for await (const entry of store.list(options)) entries.push(entry);
  return entries;
}

/** The real container, counting the bodies downloaded through it (a listing must download none). */
function countingDownloads(container: ContainerClient): { container: DeadLetterContainerLike; downloads: () => number } {
  let downloads = 0;
  return {
    downloads: () => downloads,
    container: {
      containerName: container.containerName,
      url: container.url,
      listBlobsFlat: (options) => container.listBlobsFlat(options),
      getBlockBlobClient: (name): DeadLetterBlobLike => {
        const blob = container.getBlockBlobClient(name);
        return {
          upload: (body, length, options) => blob.upload(body, length, options),
          setMetadata: (metadata, options) => blob.setMetadata(metadata, options),
          delete: (options) => blob.delete(options),
          downloadToBuffer: (offset, count, options) => {
            downloads += 1;
            return blob.downloadToBuffer(offset, count, options);
          },
        };
      },
    },
  };
}

describe('BlobDeadLetterStore for re-drive, against Azurite', () => {
  let container: TestContainer;

  beforeEach(async () => {
    container = await createTestContainer(connectionString, 'deadletter-redrive');
  });

  afterEach(async () => {
    await container.dispose();
  });

  it('lists letters with their metadata and no body, in name order, per destination if asked', async () => {
    const counting = countingDownloads(container.containerClient);
    const store = new BlobDeadLetterStore(counting.container);
    const teams = eventHubLetter();
    const email = eventHubLetter({ destination: 'email-soc', destinationType: 'email' });
    // Slugs to the same prefix as "teams-soc": the metadata tells them apart.
    const lookalike = eventHubLetter({ destination: 'teams soc', input: 'eh:3/99', metadata: { partitionId: '3', sequenceNumber: 99 } });
    for (const letter of [teams, email, lookalike]) await store.put(letter);
    const all = await listAll(store);
    expect(all.map((entry) => entry.name)).toEqual([deadLetterBlobName(email), deadLetterBlobName(teams), deadLetterBlobName(lookalike)].sort());
    const entry = all.find((one) => one.name === deadLetterBlobName(teams));
    expect(entry).toMatchObject({
      destination: 'teams-soc',
      reason: 'http-400',
      deadLetteredAt: new Date('2025-03-05T00:00:02.000Z'),
      redrive: { attempts: 0 },
      metadata: { destination: 'teams-soc', reason: 'http-400', attempts: '1', kind: 'alert' },
      version: expect.stringMatching(/^"?0x[0-9A-F]+"?$/),
    });
    expect((await listAll(store, { destination: 'teams-soc' })).map((one) => one.name)).toEqual([deadLetterBlobName(teams)]);
    expect((await listAll(store, { destination: 'teams soc' })).map((one) => one.name)).toEqual([deadLetterBlobName(lookalike)]);
    expect(await listAll(store, { expired: true })).toEqual([]);
    expect(counting.downloads()).toBe(0);
    // A container that does not exist yet holds no letters.
    expect(await listAll(createBlobDeadLetterStore({ connectionString, containerName: randomContainerName('absent'), retryOptions: FAST_RETRIES }))).toEqual([]);
  });

  it('reads a letter back, and reports one that does not parse without deleting it', async () => {
    const store = new BlobDeadLetterStore(container.containerClient);
    await store.put(eventHubLetter());
    const name = 'teams-soc/2025/03/04/broken-000000000000.json';
    await container.containerClient.getBlockBlobClient(name).upload('not json at all', 15, { metadata: { destination: 'teams-soc', reason: 'http-503' } });
    const listed = await listAll(store);
    const broken = listed.find((one) => one.name === name);
    const good = listed.find((one) => one.name === deadLetterBlobName(eventHubLetter()));
    expect(broken).toMatchObject({ destination: 'teams-soc', reason: 'http-503', redrive: { attempts: 0 } });
    expect(await store.read(good as DeadLetterListing)).toEqual({ status: 'ok', letter: eventHubLetter() });
    expect(await store.read(broken as DeadLetterListing)).toEqual({ status: 'unreadable', problem: expect.stringMatching(/^not JSON: /) });
    expect(await listNames(container.containerClient)).toHaveLength(2);
  });

  it('records a re-drive attempt in the blob metadata under its etag: of two re-drivers exactly one takes the letter', async () => {
    const letter = eventHubLetter();
    await new BlobDeadLetterStore(container.containerClient).put(letter);
    const [entry] = await listAll(new BlobDeadLetterStore(container.containerClient));
    const claim = (attempts: number): Promise<DeadLetterListing | undefined> =>
      new BlobDeadLetterStore(container.containerClient).recordAttempt(entry as DeadLetterListing, {
        attempts,
        nextAttemptAt: '2025-03-05T00:10:00.000Z',
        lastAttemptAt: '2025-03-05T00:00:00.000Z',
      });
    const results = await Promise.all([claim(1), claim(2)]);
    const winners = results.filter((result) => result !== undefined);
    expect(winners).toHaveLength(1);
    const winner = winners[0] as DeadLetterListing;
    expect(winner.version).not.toBe(entry?.version);
    const properties = await container.containerClient.getBlockBlobClient(deadLetterBlobName(letter)).getProperties();
    expect(properties.metadata).toEqual({
      ...deadLetterBlobMetadataOf(letter),
      redriveattempts: String(winner.redrive.attempts),
      nextattemptat: '2025-03-05T00:10:00.000Z',
      lastattemptat: '2025-03-05T00:00:00.000Z',
    });
    expect(properties.etag).toBe(winner.version);
    expect(await download(container.containerClient, deadLetterBlobName(letter))).toEqual(letter);
    // The loser's version is stale for every write.
    const store = new BlobDeadLetterStore(container.containerClient);
    expect(await store.recordAttempt(entry as DeadLetterListing, { attempts: 7 })).toBeUndefined();
    expect(await store.delete(entry as DeadLetterListing)).toBe(false);
    expect(await store.expire(entry as DeadLetterListing, { attempts: 7, expiredAt: '2025-03-20T00:00:00.000Z' })).toBe(false);
    expect(await listNames(container.containerClient)).toEqual([deadLetterBlobName(letter)]);
    // A state without a field drops it from the metadata.
    const next = await store.recordAttempt(winner, { attempts: 3, lastReason: 'http-503' });
    expect((await container.containerClient.getBlockBlobClient(deadLetterBlobName(letter)).getProperties()).metadata).toEqual({
      ...deadLetterBlobMetadataOf(letter),
      redriveattempts: '3',
      lastreason: 'http-503',
    });
    expect((await listAll(store))[0]?.redrive).toEqual(next?.redrive);
  });

  it('deletes a delivered letter under its etag', async () => {
    const store = new BlobDeadLetterStore(container.containerClient);
    await store.put(eventHubLetter());
    const [entry] = await listAll(store);
    expect(await store.delete(entry as DeadLetterListing)).toBe(true);
    expect(await listNames(container.containerClient)).toEqual([]);
    expect(await store.delete(entry as DeadLetterListing)).toBe(false);
  });

  it('moves an expired letter to expired/<name> with its final state, out of the live backlog', async () => {
    const store = new BlobDeadLetterStore(container.containerClient);
    const letter = eventHubLetter();
    await store.put(letter);
    const [entry] = await listAll(store);
    const final = { attempts: 5, lastReason: 'http-400', expiredAt: '2025-03-20T00:00:00.000Z' };
    expect(await store.expire(entry as DeadLetterListing, final)).toBe(true);
    const name = `expired/${deadLetterBlobName(letter)}`;
    expect(await listNames(container.containerClient)).toEqual([name]);
    expect(await listAll(store)).toEqual([]);
    const [expired] = await listAll(store, { expired: true });
    expect(expired).toMatchObject({ name, destination: 'teams-soc', reason: 'http-400', redrive: final });
    expect(await download(container.containerClient, name)).toEqual(letter);
    expect(await store.read(expired as DeadLetterListing)).toEqual({ status: 'ok', letter });
  });

  it('rejects with a StoreError naming the container when it cannot list', async () => {
    const port = await closedPort();
    const store = createBlobDeadLetterStore({ connectionString: devConnectionString(`http://127.0.0.1:${port}/${DEV_ACCOUNT_NAME}`), retryOptions: FAST_RETRIES });
    const failure = await listAll(store).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StoreError);
    expect((failure as StoreError).message).toMatch(/^dead-letter store unreachable: container "deadletter" at http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1\/deadletter: cannot list: /);
    expect((failure as StoreError).message).not.toContain(DEV_ACCOUNT_KEY);
  });
});

function deadLetterBlobMetadataOf(letter: DeadLetter): Record<string, string> {
  return { destination: letter.destination, reason: letter.error.reason, attempts: String(letter.attempts), kind: letter.finding.kind, deadletteredat: letter.deadLetteredAt };
}
