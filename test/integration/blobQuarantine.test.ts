import { createServer } from 'node:net';
import { ContainerClient } from '@azure/storage-blob';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { QuarantineEntry } from '../../src/pipeline/quarantine.js';
import {
  BlobQuarantineStore,
  DEFAULT_QUARANTINE_CONTAINER,
  createBlobQuarantineStore,
} from '../../src/storage/blobQuarantine.js';
import { quarantineBlobName, type QuarantineDocument } from '../../src/storage/quarantineDocument.js';
import { QuarantineStoreError } from '../../src/storage/quarantineStoreError.js';
import {
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

function eventHubEntry(overrides: Partial<QuarantineEntry> = {}): QuarantineEntry {
  return {
    input: 'eh:3/1234',
    code: 'schema',
    reason: 'properties.status.code: expected one of Healthy, Unhealthy, NotApplicable, got "Broken"',
    kind: 'recommendation',
    errors: [{ path: 'properties.status.code', message: 'not allowed', expected: 'Healthy|Unhealthy|NotApplicable', got: '"Broken"' }],
    raw: '{"id":"/subscriptions/x","properties":{"status":{"code":"Broken"}}}',
    metadata: {
      partitionId: '3',
      sequenceNumber: 1234,
      offset: '98765',
      enqueuedTimeUtc: '2025-03-04T23:59:59.123Z',
      partitionKey: 'pk-1',
    },
    // A later day than the enqueued time: the name must follow the event, not the clock.
    quarantinedAt: '2025-03-05T00:00:02.000Z',
    ...overrides,
  };
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

describe('BlobQuarantineStore against Azurite', () => {
  let container: TestContainer;

  beforeEach(async () => {
    container = await createTestContainer(connectionString, 'quarantine');
  });

  afterEach(async () => {
    await container.dispose();
  });

  it('accepts a ContainerClient as its container', async () => {
    // Compile-time as much as run-time: ContainerClient satisfies QuarantineContainerLike.
    const store = new BlobQuarantineStore(container.containerClient);
    expect(store.containerName).toBe(container.containerName);
    await store.put(eventHubEntry());
    expect(await listNames(container.containerClient)).toEqual(['2025/03/04/3-1234.json']);
  });

  it('names Event Hub records by enqueued day, partition, sequence and index', async () => {
    const store = new BlobQuarantineStore(container.containerClient);
    await store.put(eventHubEntry());
    await store.put(eventHubEntry({ input: 'eh:3/1234#0', index: 0 }));
    await store.put(eventHubEntry({ input: 'eh:3/1234#7', index: 7 }));
    // No enqueued time: the day of quarantinedAt.
    await store.put(eventHubEntry({ metadata: { partitionId: '0', sequenceNumber: 5 } }));
    expect(await listNames(container.containerClient)).toEqual([
      '2025/03/04/3-1234-0.json',
      '2025/03/04/3-1234-7.json',
      '2025/03/04/3-1234.json',
      '2025/03/05/0-5.json',
    ]);
  });

  it('names file records by a slug of the input label and a short hash', async () => {
    const store = new BlobQuarantineStore(container.containerClient);
    const fromFile = eventHubEntry({ input: 'samples/bad export.json', quarantinedAt: '2025-06-01T10:00:00Z' });
    const { metadata: _dropped, ...withoutMetadata } = fromFile;
    await store.put(withoutMetadata);
    await store.put({ ...withoutMetadata, input: 'samples/bad export.json#2', index: 2 });
    const names = await listNames(container.containerClient);
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/^2025\/06\/01\/samples-bad-export\.json-[0-9a-f]{10}-2\.json$/);
    expect(names[1]).toMatch(/^2025\/06\/01\/samples-bad-export\.json-[0-9a-f]{10}\.json$/);
    // Records of one file share the hash: they sort together.
    expect(names[0]?.slice(0, -'-2.json'.length)).toBe(names[1]?.slice(0, -'.json'.length));
  });

  it('stores the raw body, reason, code, kind, errors and metadata as application/json', async () => {
    const store = new BlobQuarantineStore(container.containerClient);
    const entry = eventHubEntry({ index: 1, input: 'eh:3/1234#1', raw: { id: 'x', nested: { n: 1 } } });
    await store.put(entry);
    const blob = container.containerClient.getBlockBlobClient('2025/03/04/3-1234-1.json');
    const properties = await blob.getProperties();
    expect(properties.contentType).toBe('application/json');
    expect(properties.metadata).toEqual({
      code: 'schema',
      source: 'eventhub',
      partition: '3',
      sequence: '1234',
      index: '1',
      kind: 'recommendation',
    });
    const document = JSON.parse((await blob.downloadToBuffer()).toString('utf8')) as QuarantineDocument;
    expect(document).toEqual({
      format: 'defender-forwarder.quarantine/v1',
      input: 'eh:3/1234#1',
      code: 'schema',
      reason: entry.reason,
      kind: 'recommendation',
      errors: entry.errors,
      index: 1,
      metadata: entry.metadata,
      quarantinedAt: entry.quarantinedAt,
      rawType: 'json',
      raw: { id: 'x', nested: { n: 1 } },
    });
  });

  it('keeps a text body verbatim, byte for byte', async () => {
    const store = new BlobQuarantineStore(container.containerClient);
    const text = '\uFEFF{"broken": json, "ü": "\u2028"}\n';
    await store.put(eventHubEntry({ code: 'not-json', kind: null, errors: [], raw: text }));
    const blob = container.containerClient.getBlockBlobClient('2025/03/04/3-1234.json');
    const document = JSON.parse((await blob.downloadToBuffer()).toString('utf8')) as QuarantineDocument;
    expect(document.rawType).toBe('text');
    expect(document.raw).toBe(text);
    expect(document.kind).toBeNull();
    expect((await blob.getProperties()).metadata).not.toHaveProperty('kind');
  });

  it('overwrites the same blob when the same entry is written again (batch re-run)', async () => {
    const store = new BlobQuarantineStore(container.containerClient);
    await store.put(eventHubEntry());
    await store.put(eventHubEntry({ quarantinedAt: '2025-03-05T00:07:00.000Z' }));
    expect(await listNames(container.containerClient)).toEqual(['2025/03/04/3-1234.json']);
    const blob = container.containerClient.getBlockBlobClient('2025/03/04/3-1234.json');
    const document = JSON.parse((await blob.downloadToBuffer()).toString('utf8')) as QuarantineDocument;
    expect(document.quarantinedAt).toBe('2025-03-05T00:07:00.000Z');
  });

  it('creates a missing container once, lazily (factory with a connection string)', async () => {
    const containerName = randomContainerName('lazy');
    const store = createBlobQuarantineStore({ connectionString, containerName, retryOptions: FAST_RETRIES });
    const probe = new ContainerClient(connectionString, containerName);
    try {
      expect(await probe.exists()).toBe(false); // nothing is sent before the first put
      await Promise.all([store.put(eventHubEntry()), store.put(eventHubEntry({ index: 1 }))]);
      await store.put(eventHubEntry({ index: 2 }));
      expect(await listNames(probe)).toEqual([
        '2025/03/04/3-1234-1.json',
        '2025/03/04/3-1234-2.json',
        '2025/03/04/3-1234.json',
      ]);
    } finally {
      await probe.deleteIfExists();
    }
  });

  it('uses container "quarantine" by default', () => {
    expect(DEFAULT_QUARANTINE_CONTAINER).toBe('quarantine');
    expect(createBlobQuarantineStore({ connectionString }).containerName).toBe('quarantine');
  });

  it('refuses an invalid container name at construction, naming it', () => {
    expect(() => createBlobQuarantineStore({ connectionString, containerName: 'Quarantine_1' })).toThrow(
      /quarantine container name "Quarantine_1" may hold only lower-case letters, digits and hyphens/,
    );
  });

  it('rejects quickly, naming the container, when the store is unreachable', async () => {
    const port = await closedPort();
    const store = createBlobQuarantineStore({
      connectionString: devConnectionString(`http://127.0.0.1:${port}/${DEV_ACCOUNT_NAME}`),
      retryOptions: FAST_RETRIES,
    });
    const started = performance.now();
    const failure = await store.put(eventHubEntry()).then(
      () => undefined,
      (error: unknown) => error,
    );
    const elapsedMs = performance.now() - started;
    expect(failure).toBeInstanceOf(QuarantineStoreError);
    const error = failure as QuarantineStoreError;
    expect(error.message).toMatch(
      new RegExp(`^quarantine store unreachable: container "quarantine" at http://127\\.0\\.0\\.1:${port}/${DEV_ACCOUNT_NAME}/quarantine: cannot create the container: .*ECONNREFUSED`),
    );
    expect(error.unreachable).toBe(true);
    expect(error.store).toBe('container "quarantine"');
    expect(error.entryName).toBe('2025/03/04/3-1234.json');
    expect(error.cause).toBeInstanceOf(Error);
    expect(elapsedMs).toBeLessThan(5_000);

    // Without container creation the upload itself fails, just as precisely.
    const noCreate = createBlobQuarantineStore({
      connectionString: devConnectionString(`http://127.0.0.1:${port}/${DEV_ACCOUNT_NAME}`),
      containerName: 'dead-letters',
      retryOptions: FAST_RETRIES,
      createContainerIfMissing: false,
    });
    await expect(noCreate.put(eventHubEntry())).rejects.toThrow(
      /^quarantine store unreachable: container "dead-letters" at http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1\/dead-letters: cannot write "2025\/03\/04\/3-1234\.json": .*ECONNREFUSED/,
    );
  });

  it('says the store refused the write when it answers with an error (wrong key: 403)', async () => {
    const wrongKey = Buffer.from('not the key of this account, not at all').toString('base64');
    const store = createBlobQuarantineStore({
      connectionString: `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT_NAME};AccountKey=${wrongKey};BlobEndpoint=${blobEndpoint};`,
      containerName: container.containerName,
      retryOptions: FAST_RETRIES,
    });
    const failure = await store.put(eventHubEntry()).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(QuarantineStoreError);
    const error = failure as QuarantineStoreError;
    // The 403 on container creation is tolerated; the write's own 403 is the answer.
    expect(error.message).toMatch(
      new RegExp(`^quarantine store refused the write: container "${container.containerName}" at [^ ]+: cannot write "2025/03/04/3-1234\\.json": HTTP 403 AuthorizationFailure: `),
    );
    expect(error.unreachable).toBe(false);
    expect(error.message).not.toContain(wrongKey);
  });

  it('writes where quarantineBlobName says', async () => {
    const store = new BlobQuarantineStore(container.containerClient);
    const entry = eventHubEntry({ metadata: { partitionId: '12', sequenceNumber: 9, enqueuedTimeUtc: '2024-12-31T23:00:00-02:00' } });
    await store.put(entry);
    expect(quarantineBlobName(entry)).toBe('2025/01/01/12-9.json');
    expect(await listNames(container.containerClient)).toEqual(['2025/01/01/12-9.json']);
  });
});

describe('BlobQuarantineStore listing (for status), against Azurite', () => {
  let container: TestContainer;

  beforeEach(async () => {
    container = await createTestContainer(connectionString, 'quarantine-list');
  });

  afterEach(async () => {
    await container.dispose();
  });

  it('lists every entry with its code and time from the listing alone', async () => {
    const store = new BlobQuarantineStore(container.containerClient);
    expect(store.location).toBe(`container "${container.containerName}"`);
    const before = Date.now();
    await store.put(eventHubEntry());
    await store.put(eventHubEntry({ input: 'eh:3/1235', code: 'not-json', kind: null, metadata: { partitionId: '3', sequenceNumber: 1235 } }));
    const listed: { name: string; code: string; quarantinedAt: Date | undefined }[] = [];
    for await (const entry of store.list()) listed.push(entry);
    expect(listed.map(({ name, code }) => ({ name, code }))).toEqual([
      { name: '2025/03/04/3-1234.json', code: 'schema' },
      { name: '2025/03/05/3-1235.json', code: 'not-json' },
    ]);
    // The blob's creation time (Azurite's clock, this machine's): no document is downloaded.
    for (const entry of listed) expect(Math.abs((entry.quarantinedAt?.getTime() ?? 0) - before)).toBeLessThan(60_000);
  });

  it('lists nothing for a container not created yet, and fails naming the container when unreachable', async () => {
    const absent = createBlobQuarantineStore({ connectionString, containerName: randomContainerName('absent'), retryOptions: FAST_RETRIES });
    const names: string[] = [];
    for await (const entry of absent.list()) names.push(entry.name);
    expect(names).toEqual([]);

    const port = await closedPort();
    const unreachable = createBlobQuarantineStore({ connectionString: devConnectionString(`http://127.0.0.1:${port}/${DEV_ACCOUNT_NAME}`), retryOptions: FAST_RETRIES });
    const failure = await (async () => {
      for await (const entry of unreachable.list()) names.push(entry.name);
    })().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(QuarantineStoreError);
    expect((failure as QuarantineStoreError).message).toMatch(/^quarantine store unreachable: container "quarantine" at http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1\/quarantine: cannot list the container: /);
  });
});
