import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../src/delivery/contracts.js';
import { deadLetterBlobMetadata, deadLetterBlobName, encodeDeadLetter } from '../../src/storage/deadLetterEntry.js';
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
    expect(deadLetterBlobMetadata(fileLetter())).toEqual({ destination: 'webhook-pager', reason: 'http-500', attempts: '5', kind: 'alert' });
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
