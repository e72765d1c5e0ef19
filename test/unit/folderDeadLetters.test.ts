import { mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../src/delivery/contracts.js';
import { deadLetterBlobMetadata, deadLetterBlobName, encodeDeadLetter } from '../../src/storage/deadLetterEntry.js';
import type { DeadLetterListing } from '../../src/storage/deadLetterStore.js';
import { FolderDeadLetterStore } from '../../src/storage/folderDeadLetters.js';
import { StoreError } from '../../src/storage/storeError.js';

/** A webhook delivery of a record read from a file that failed for good. */
function fileLetter(overrides: Partial<DeadLetter> = {}): DeadLetter {
  return {
    format: 'defender-forwarder.deadletter/v1',
    destination: 'webhook-pager',
    destinationType: 'webhook',
    input: 'samples/alerts.json#1',
    finding: { kind: 'alert', id: 'alert-1', severity: 'Medium', status: 'Active', title: 'Suspicious process' },
    error: { message: 'HTTP 500 after 5 attempts', reason: 'http-500', retryable: true, configuration: false },
    attempts: 5,
    firstAttemptAt: '2025-07-08T09:10:00.000Z',
    lastAttemptAt: '2025-07-08T09:10:11.000Z',
    deadLetteredAt: '2025-07-08T09:10:11.000Z',
    dedupeKey: '["webhook-pager","alert","alert-1","active"]',
    payload: [{ name: 'webhook-pager/alert-1.json', content: '{"id":"alert-1"}' }],
    record: { SystemAlertId: 'alert-1', Status: 'Active' },
    ...overrides,
  };
}

async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

describe('FolderDeadLetterStore', () => {
  let stateDir: string;

  beforeEach(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), 'deadletter-'));
  });

  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('writes the blob store\'s document under <stateDir>/deadletter/<the blob store\'s name>', async () => {
    const store = new FolderDeadLetterStore(stateDir);
    const letter = fileLetter();
    await store.put(letter);
    expect(store.folder).toBe(path.join(stateDir, 'deadletter'));
    const files = await listFiles(stateDir);
    expect(files).toEqual([`deadletter/${deadLetterBlobName(letter)}`]);
    expect(files[0]).toMatch(/^deadletter\/webhook-pager\/2025\/07\/08\/samples-alerts\.json-1-[0-9a-f]{12}\.json$/);
    const text = await readFile(store.pathFor(letter), 'utf8');
    expect(text).toBe(encodeDeadLetter(letter));
    expect(JSON.parse(text)).toEqual(letter);
  });

  it('uses partition and sequence names for Event Hub records, dated by enqueued time in UTC', async () => {
    const store = new FolderDeadLetterStore(stateDir);
    await store.put(fileLetter({ input: 'eh:1/77', metadata: { partitionId: '1', sequenceNumber: 77, enqueuedTimeUtc: '2025-12-31T22:30:00-02:00' } }));
    // A zoneless time is UTC, not the machine's local time.
    await store.put(fileLetter({ input: 'eh:1/78#0', metadata: { partitionId: '1', sequenceNumber: 78, enqueuedTimeUtc: '2025-05-06T23:59:59.999' } }));
    expect(await listFiles(path.join(stateDir, 'deadletter'))).toEqual([
      expect.stringMatching(/^webhook-pager\/2025\/05\/06\/1-78-0-[0-9a-f]{12}\.json$/),
      expect.stringMatching(/^webhook-pager\/2026\/01\/01\/1-77-[0-9a-f]{12}\.json$/),
    ]);
  });

  it('overwrites a letter written again, leaving no temporary files', async () => {
    const store = new FolderDeadLetterStore(stateDir);
    await store.put(fileLetter());
    await store.put(fileLetter({ attempts: 9, lastAttemptAt: '2025-07-08T09:20:00.000Z' }));
    const files = await listFiles(stateDir);
    expect(files).toHaveLength(1);
    expect(JSON.parse(await readFile(path.join(stateDir, files[0] ?? ''), 'utf8'))).toMatchObject({ attempts: 9, lastAttemptAt: '2025-07-08T09:20:00.000Z' });
  });

  it('keeps one record\'s letters for different destinations, statuses and inputs apart', async () => {
    const store = new FolderDeadLetterStore(stateDir);
    const base = fileLetter();
    await store.put(base);
    await store.put(fileLetter({ destination: 'email-soc', destinationType: 'email' }));
    await store.put(fileLetter({ finding: { ...base.finding, status: 'Resolved' } }));
    // Two labels that slug alike.
    await store.put(fileLetter({ input: 'samples/alerts?json#1' }));
    await store.put(fileLetter({ input: 'samples/alerts json#1' }));
    const files = await listFiles(path.join(stateDir, 'deadletter'));
    expect(files).toHaveLength(5);
    expect(files.filter((name) => name.startsWith('email-soc/'))).toHaveLength(1);
  });

  it('keeps names inside the folder whatever the label or destination', async () => {
    const store = new FolderDeadLetterStore(stateDir);
    for (const [destination, input] of [
      ['../../etc', '../../etc/passwd'],
      ['..', '..'],
      ['teams', ''],
      ['ünï', 'C:\\Users\\x\\export.json'],
    ] as const) {
      const letter = fileLetter({ destination, input });
      const name = deadLetterBlobName(letter);
      expect(name.split('/')).not.toContain('..');
      expect(name).toMatch(/^[A-Za-z0-9_][A-Za-z0-9._-]*\/\d{4}\/\d{2}\/\d{2}\/[A-Za-z0-9_][A-Za-z0-9._-]*-[0-9a-f]{12}\.json$/);
      await store.put(letter);
    }
    expect(await listFiles(stateDir)).toHaveLength(4);
    expect((await listFiles(stateDir)).every((name) => name.startsWith('deadletter/'))).toBe(true);
  });

  it('rejects with a StoreError naming the folder when it cannot write', async () => {
    const blocker = path.join(stateDir, 'not-a-folder');
    await writeFile(blocker, 'a file where the state folder should be');
    const store = new FolderDeadLetterStore(blocker);
    const failure = await store.put(fileLetter()).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StoreError);
    const error = failure as StoreError;
    const folder = path.join(blocker, 'deadletter');
    expect(error.message).toBe(
      `dead-letter store refused the request: folder "${folder}": cannot write "${deadLetterBlobName(fileLetter())}": ${(error.cause as Error).message}`,
    );
    expect(error.message).toMatch(/ENOTDIR|EEXIST/);
    expect(error.store).toBe(`folder "${folder}"`);
    expect(error.unreachable).toBe(false);
  });
});

describe('dead letter documents', () => {
  it('describes the letter in header-safe blob metadata', () => {
    expect(deadLetterBlobMetadata(fileLetter())).toEqual({
      destination: 'webhook-pager',
      reason: 'http-500',
      attempts: '5',
      kind: 'alert',
      deadletteredat: '2025-07-08T09:10:11.000Z',
    });
    const odd = deadLetterBlobMetadata(
      fileLetter({ error: { message: 'x', reason: ` smtp 550\r\nrejected: ünknown ${'y'.repeat(400)}`, retryable: false, configuration: false } }),
    );
    expect(odd['reason']).toMatch(/^smtp 550\?\?rejected: \?nknown y+$/);
    expect(odd['reason']?.length).toBe(256);
    expect(deadLetterBlobMetadata(fileLetter({ error: { message: 'x', reason: '  ', retryable: false, configuration: false } }))['reason']).toBe('unknown');
  });

  it('keeps a record JSON cannot carry, as text', () => {
    const cyclic: Record<string, unknown> = { id: 'x', big: 10n };
    cyclic['self'] = cyclic;
    const document = JSON.parse(encodeDeadLetter(fileLetter({ record: cyclic }))) as DeadLetter;
    expect(typeof document.record).toBe('string');
    expect(document.record).toContain("id: 'x'");
    expect((JSON.parse(encodeDeadLetter(fileLetter({ record: undefined }))) as DeadLetter).record).toBeNull();
  });
});

async function listAll(store: FolderDeadLetterStore, options: { destination?: string; expired?: boolean } = {}): Promise<DeadLetterListing[]> {
  const entries: DeadLetterListing[] = [];
  for await (const entry of store.list(options)) entries.push(entry);
  return entries;
}

describe('FolderDeadLetterStore for re-drive', () => {
  let stateDir: string;
  let store: FolderDeadLetterStore;

  beforeEach(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), 'deadletter-redrive-'));
    store = new FolderDeadLetterStore(stateDir);
  });

  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('lists the live letters in name order with their metadata, per destination if asked', async () => {
    expect(await listAll(store)).toEqual([]); // no folder yet
    const pager = fileLetter();
    const email = fileLetter({ destination: 'email-soc', destinationType: 'email', deadLetteredAt: '2025-07-09T00:00:00.000Z' });
    // Slugs to the same folder as "webhook-pager": the listing per destination still tells them apart.
    const lookalike = fileLetter({ destination: 'webhook pager', input: 'other.json' });
    for (const letter of [pager, email, lookalike]) await store.put(letter);
    const all = await listAll(store);
    expect(all.map((entry) => entry.name)).toEqual([deadLetterBlobName(email), ...[deadLetterBlobName(lookalike), deadLetterBlobName(pager)].sort()]);
    expect(all.find((entry) => entry.name === deadLetterBlobName(pager))).toEqual({
      name: deadLetterBlobName(pager),
      destination: 'webhook-pager',
      reason: 'http-500',
      deadLetteredAt: new Date('2025-07-08T09:10:11.000Z'),
      redrive: { attempts: 0 },
      metadata: deadLetterBlobMetadata(pager),
      version: 'none',
    });
    expect((await listAll(store, { destination: 'webhook-pager' })).map((entry) => entry.name)).toEqual([deadLetterBlobName(pager)]);
    expect((await listAll(store, { destination: 'email-soc' })).map((entry) => entry.destination)).toEqual(['email-soc']);
    expect(await listAll(store, { destination: 'nobody' })).toEqual([]);
    expect(await listAll(store, { expired: true })).toEqual([]);
  });

  it('reads a letter back, and reports one that does not parse instead of failing', async () => {
    const letter = fileLetter();
    await store.put(letter);
    const [entry] = await listAll(store);
    expect(await store.read(entry as DeadLetterListing)).toEqual({ status: 'ok', letter });

    const broken = 'webhook-pager/2025/07/08/broken-000000000000.json';
    const wrongFormat = 'webhook-pager/2025/07/08/other-000000000000.json';
    await writeFile(path.join(store.folder, ...broken.split('/')), '{"format": "defender-forwarder.deadletter/v1", ');
    await writeFile(path.join(store.folder, ...wrongFormat.split('/')), JSON.stringify({ ...letter, format: 'something/v9' }));
    const listed = await listAll(store);
    const brokenEntry = listed.find((one) => one.name === broken);
    expect(brokenEntry).toMatchObject({ destination: 'webhook-pager', reason: 'unreadable', version: 'none' });
    expect(await store.read(brokenEntry as DeadLetterListing)).toEqual({ status: 'unreadable', problem: expect.stringMatching(/^not JSON: /) });
    expect(await store.read(listed.find((one) => one.name === wrongFormat) as DeadLetterListing)).toEqual({
      status: 'unreadable',
      problem: 'format is "something/v9", expected "defender-forwarder.deadletter/v1"',
    });
    // Reading never removes anything.
    expect(await listAll(store)).toHaveLength(3);
    await rm(path.join(store.folder, ...broken.split('/')));
    expect(await store.read(brokenEntry as DeadLetterListing)).toEqual({ status: 'gone' });
  });

  it('records a re-drive attempt in a sidecar, leaving the letter itself as written', async () => {
    const letter = fileLetter();
    await store.put(letter);
    const [entry] = await listAll(store);
    const state = { attempts: 1, nextAttemptAt: '2025-07-08T10:00:00.000Z', lastAttemptAt: '2025-07-08T09:59:00.000Z', lastReason: 'http-503' };
    const updated = await store.recordAttempt(entry as DeadLetterListing, state);
    expect(updated).toMatchObject({ name: entry?.name, redrive: state });
    expect(updated?.version).not.toBe(entry?.version);
    expect(await listAll(store)).toEqual([updated]);
    expect(await readFile(store.pathFor(letter), 'utf8')).toBe(encodeDeadLetter(letter));
    expect(JSON.parse(await readFile(`${store.pathFor(letter)}.redrive`, 'utf8'))).toEqual({ format: 'defender-forwarder.redrive/v1', ...state });
    // No lock or temporary file is left behind.
    expect(await listFiles(store.folder)).toEqual([deadLetterBlobName(letter), `${deadLetterBlobName(letter)}.redrive`]);
  });

  it('lets exactly one of two concurrent writers take a letter, and refuses a writer holding an older version', async () => {
    await store.put(fileLetter());
    const [entry] = await listAll(store);
    const claim = (attempts: number): Promise<DeadLetterListing | undefined> =>
      new FolderDeadLetterStore(stateDir).recordAttempt(entry as DeadLetterListing, { attempts, lastReason: `writer-${attempts}` });
    const results = await Promise.all([claim(1), claim(2), claim(3), claim(4)]);
    const winners = results.filter((result) => result !== undefined);
    expect(winners).toHaveLength(1);
    const [listed] = await listAll(store);
    expect(listed?.redrive).toEqual(winners[0]?.redrive);
    // Later, sequentially: the version it holds is not the sidecar's any more.
    expect(await claim(5)).toBeUndefined();
    expect(await store.delete(entry as DeadLetterListing)).toBe(false);
    expect(await store.expire(entry as DeadLetterListing, { attempts: 9, expiredAt: '2025-07-20T00:00:00.000Z' })).toBe(false);
    expect(await listAll(store)).toEqual([listed]);
  });

  it('clears a lock left by a writer that died holding it, once it is stale', async () => {
    await store.put(fileLetter());
    const [entry] = await listAll(store);
    const lock = `${store.pathFor(fileLetter())}.redrive.none.lock`;
    await writeFile(lock, '12345\n');
    expect(await store.recordAttempt(entry as DeadLetterListing, { attempts: 1 })).toBeUndefined();
    // A fresh lock is respected; one older than a minute belongs to a dead writer.
    await utimes(lock, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    expect(await store.recordAttempt(entry as DeadLetterListing, { attempts: 1 })).toBeUndefined();
    expect(await store.recordAttempt(entry as DeadLetterListing, { attempts: 1 })).toMatchObject({ redrive: { attempts: 1 } });
  });

  it('deletes a delivered letter with its sidecar', async () => {
    await store.put(fileLetter());
    const [entry] = await listAll(store);
    const claimed = await store.recordAttempt(entry as DeadLetterListing, { attempts: 1 });
    expect(await store.delete(claimed as DeadLetterListing)).toBe(true);
    expect(await listFiles(stateDir)).toEqual([]);
    expect(await store.delete(claimed as DeadLetterListing)).toBe(false);
  });

  it('moves an expired letter and its state to expired/, out of the live backlog', async () => {
    const letter = fileLetter();
    await store.put(letter);
    const [entry] = await listAll(store);
    const claimed = await store.recordAttempt(entry as DeadLetterListing, { attempts: 4, lastReason: 'http-500' });
    const final = { attempts: 4, lastReason: 'http-500', expiredAt: '2025-07-20T00:00:00.000Z' };
    expect(await store.expire(claimed as DeadLetterListing, final)).toBe(true);
    expect(await listAll(store)).toEqual([]);
    const name = `expired/${deadLetterBlobName(letter)}`;
    expect(await listFiles(store.folder)).toEqual([name, `${name}.redrive`]);
    const [expired] = await listAll(store, { expired: true });
    expect(expired).toMatchObject({ name, destination: 'webhook-pager', reason: 'http-500', redrive: final });
    expect(await store.read(expired as DeadLetterListing)).toEqual({ status: 'ok', letter });
    expect((await listAll(store, { expired: true, destination: 'webhook-pager' })).map((one) => one.name)).toEqual([name]);
  });

  it('keeps the letters of a destination named "expired" in the live backlog', async () => {
    const letter = fileLetter({ destination: 'expired' });
    await store.put(letter);
    await mkdir(path.join(store.folder, 'expired', 'x'), { recursive: true });
    expect((await listAll(store)).map((entry) => entry.name)).toEqual([deadLetterBlobName(letter)]);
    expect(await listAll(store, { expired: true })).toEqual([]);
    const [entry] = await listAll(store);
    expect(await store.expire(entry as DeadLetterListing, { attempts: 1, expiredAt: '2025-07-20T00:00:00.000Z' })).toBe(true);
    expect(await listAll(store)).toEqual([]);
    expect((await listAll(store, { expired: true, destination: 'expired' })).map((one) => one.name)).toEqual([`expired/${deadLetterBlobName(letter)}`]);
  });
});
