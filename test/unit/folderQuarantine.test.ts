import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { QuarantineEntry } from '../../src/pipeline/quarantine.js';
import { FolderQuarantineStore } from '../../src/storage/folderQuarantine.js';
import {
  encodeQuarantineDocument,
  quarantineBlobMetadata,
  quarantineBlobName,
  type QuarantineDocument,
} from '../../src/storage/quarantineDocument.js';
import { QuarantineStoreError } from '../../src/storage/quarantineStoreError.js';

function fileEntry(overrides: Partial<QuarantineEntry> = {}): QuarantineEntry {
  return {
    input: 'samples/broken.json',
    code: 'not-json',
    reason: 'body is not JSON: Unexpected token } at line 1 column 9',
    kind: null,
    errors: [],
    raw: '{"a": 1,}',
    quarantinedAt: '2025-07-08T09:10:11.000Z',
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

describe('FolderQuarantineStore', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'quarantine-'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes the blob store\'s document under the blob store\'s name', async () => {
    const store = new FolderQuarantineStore(path.join(root, 'q'));
    const entry = fileEntry();
    await store.put(entry);
    const files = await listFiles(path.join(root, 'q'));
    expect(files).toEqual([quarantineBlobName(entry)]);
    expect(files[0]).toMatch(/^2025\/07\/08\/samples-broken\.json-[0-9a-f]{10}\.json$/);
    const text = await readFile(store.pathFor(entry), 'utf8');
    expect(text).toBe(encodeQuarantineDocument(entry));
    const document = JSON.parse(text) as QuarantineDocument;
    expect(document).toMatchObject({
      format: 'defender-forwarder.quarantine/v1',
      input: 'samples/broken.json',
      code: 'not-json',
      kind: null,
      errors: [],
      index: null,
      metadata: null,
      rawType: 'text',
      raw: '{"a": 1,}',
    });
  });

  it('uses partition and sequence names for Event Hub records, like the blob store', async () => {
    const store = new FolderQuarantineStore(root);
    const entry = fileEntry({
      input: 'eh:1/77#3',
      index: 3,
      metadata: { partitionId: '1', sequenceNumber: 77, enqueuedTimeUtc: '2025-01-02T03:04:05Z' },
    });
    await store.put(entry);
    expect(await listFiles(root)).toEqual(['2025/01/02/1-77-3.json']);
  });

  it('overwrites an entry written again, leaving no temporary files', async () => {
    const store = new FolderQuarantineStore(root);
    await store.put(fileEntry());
    await store.put(fileEntry({ reason: 'second run' }));
    const files = await listFiles(root);
    expect(files).toHaveLength(1);
    const document = JSON.parse(await readFile(path.join(root, files[0] ?? ''), 'utf8')) as QuarantineDocument;
    expect(document.reason).toBe('second run');
  });

  it('rejects with a QuarantineStoreError naming the folder when it cannot write', async () => {
    const blocker = path.join(root, 'not-a-folder');
    await writeFile(blocker, 'a file where the folder should be');
    const store = new FolderQuarantineStore(blocker);
    const failure = await store.put(fileEntry()).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(QuarantineStoreError);
    const error = failure as QuarantineStoreError;
    expect(error.message).toMatch(
      new RegExp(`^quarantine store refused the write: folder "${blocker.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}": cannot write "2025/07/08/samples-broken\\.json-[0-9a-f]{10}\\.json": .*(ENOTDIR|EEXIST)`),
    );
    expect(error.store).toBe(`folder "${blocker}"`);
    expect(error.unreachable).toBe(false);
    expect(error.cause).toBeInstanceOf(Error);
  });
});

describe('quarantine names', () => {
  const eventHub = { partitionId: '0', sequenceNumber: 42 } as const;

  it('dates Event Hub records by enqueued time in UTC, whatever the offset given', () => {
    expect(quarantineBlobName(fileEntry({ metadata: { ...eventHub, enqueuedTimeUtc: '2025-12-31T22:30:00-02:00' } }))).toBe(
      '2026/01/01/0-42.json',
    );
  });

  it('reads an enqueued time without a zone as UTC, not local time', () => {
    expect(quarantineBlobName(fileEntry({ metadata: { ...eventHub, enqueuedTimeUtc: '2025-05-06T23:59:59.999' } }))).toBe(
      '2025/05/06/0-42.json',
    );
  });

  it('falls back to quarantinedAt when the enqueued time is missing or unreadable', () => {
    expect(quarantineBlobName(fileEntry({ metadata: { ...eventHub, enqueuedTimeUtc: 'yesterday' } }))).toBe('2025/07/08/0-42.json');
  });

  it('treats metadata without a sequence number like a file', () => {
    const name = quarantineBlobName(fileEntry({ input: 'eh:0/?', metadata: { partitionId: '0' } }));
    expect(name).toMatch(/^2025\/07\/08\/eh-0-[0-9a-f]{10}\.json$/);
  });

  it('keeps names inside the store whatever the label', () => {
    for (const input of ['../../etc/passwd', '/abs/path/../x.json', '..', '', 'C:\\Users\\x\\export.json', 'ünïcødé räcörd.json']) {
      const name = quarantineBlobName(fileEntry({ input }));
      expect(name).toMatch(/^2025\/07\/08\/[A-Za-z0-9_][A-Za-z0-9._-]*-[0-9a-f]{10}\.json$/);
      expect(name.split('/')).not.toContain('..');
    }
    expect(quarantineBlobName(fileEntry({ input: '../../etc/passwd' }))).toMatch(/\/etc-passwd-[0-9a-f]{10}\.json$/);
  });

  it('tells apart labels that slug alike', () => {
    expect(quarantineBlobName(fileEntry({ input: 'a b.json' }))).not.toBe(quarantineBlobName(fileEntry({ input: 'a?b.json' })));
  });

  it('keeps the end of a long label (the file name) readable', () => {
    const name = quarantineBlobName(fileEntry({ input: `${'deep/'.repeat(40)}export-2025.json` }));
    expect(name).toMatch(/-export-2025\.json-[0-9a-f]{10}\.json$/);
    expect(name.length).toBeLessThan(100);
  });

  it('puts the index at the end, once', () => {
    expect(quarantineBlobName(fileEntry({ input: 'x.json#4', index: 4 }))).toMatch(/^2025\/07\/08\/x\.json-[0-9a-f]{10}-4\.json$/);
  });

  it('describes the entry in blob metadata', () => {
    expect(quarantineBlobMetadata(fileEntry())).toEqual({ code: 'not-json', source: 'file' });
    expect(
      quarantineBlobMetadata(fileEntry({ code: 'schema', kind: 'alert', index: 2, metadata: { partitionId: '7', sequenceNumber: 9 } })),
    ).toEqual({ code: 'schema', source: 'eventhub', partition: '7', sequence: '9', index: '2', kind: 'alert' });
  });

  it('keeps a record JSON cannot carry, as text', () => {
    const cyclic: Record<string, unknown> = { id: 'x', big: 10n };
    cyclic['self'] = cyclic;
    const document = JSON.parse(encodeQuarantineDocument(fileEntry({ raw: cyclic }))) as QuarantineDocument;
    expect(document.rawType).toBe('text');
    expect(document.raw).toContain("id: 'x'");
    expect(JSON.parse(encodeQuarantineDocument(fileEntry({ raw: undefined }))) as QuarantineDocument).toMatchObject({
      rawType: 'json',
      raw: null,
    });
  });
});

describe('FolderQuarantineStore listing (for status)', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'quarantine-list-'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('lists every document with its code and quarantine time; an unreadable one with code unknown', async () => {
    const store = new FolderQuarantineStore(path.join(root, 'q'));
    const listAll = async (): Promise<{ name: string; code: string; quarantinedAt: Date | undefined }[]> => {
      const listed: { name: string; code: string; quarantinedAt: Date | undefined }[] = [];
      for await (const entry of store.list()) listed.push(entry);
      return listed;
    };
    expect(await listAll()).toEqual([]); // no folder yet
    expect(store.location).toBe(`folder "${path.join(root, 'q')}"`);
    await store.put(fileEntry());
    await store.put(fileEntry({ input: 'samples/other.json', code: 'schema', kind: 'alert', quarantinedAt: '2025-07-09T00:00:00.000Z' }));
    await writeFile(path.join(root, 'q', '2025', '07', '08', 'hand-edited.json'), '{ not json');
    await writeFile(path.join(root, 'q', '2025', '07', '08', 'notes.txt'), 'not a document');
    const listed = await listAll();
    expect(listed).toHaveLength(3);
    expect(listed.find((entry) => entry.name === quarantineBlobName(fileEntry()))).toEqual({
      name: quarantineBlobName(fileEntry()),
      code: 'not-json',
      quarantinedAt: new Date('2025-07-08T09:10:11.000Z'),
    });
    expect(listed.find((entry) => entry.code === 'schema')?.quarantinedAt).toEqual(new Date('2025-07-09T00:00:00.000Z'));
    expect(listed.find((entry) => entry.name === '2025/07/08/hand-edited.json')).toMatchObject({ code: 'unknown', quarantinedAt: expect.any(Date) });
  });
});
