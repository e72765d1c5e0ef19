import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dedupeKey } from '../../src/routing/dedupe.js';
import { FolderLedger } from '../../src/storage/folderLedger.js';
import { ledgerKeyHash, type LedgerDocument } from '../../src/storage/ledgerEntry.js';
import { StoreError } from '../../src/storage/storeError.js';
import { makeAlert, makeVulnerability } from '../support/findings.js';

const HOUR_MS = 60 * 60_000;

function keyFor(i: number): string {
  return dedupeKey('teams-soc', makeAlert({ id: `alert-${i}-${'x'.repeat(40)}` }));
}

async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

async function readEntry(ledger: FolderLedger, key: string): Promise<LedgerDocument> {
  return JSON.parse(await readFile(ledger.pathFor(key), 'utf8')) as LedgerDocument;
}

/** The lock a replacer of the entry's current text takes (the protocol of the module comment). */
async function lockPathOf(ledger: FolderLedger, key: string): Promise<string> {
  const text = await readFile(ledger.pathFor(key), 'utf8');
  return `${ledger.pathFor(key)}.${createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 32)}.lock`;
}

describe('FolderLedger', () => {
  let stateDir: string;

  beforeEach(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), 'ledger-'));
  });

  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('claims a key once and names the entry <stateDir>/ledger/<aa>/<hash>.json', async () => {
    const key = dedupeKey('email-soc', makeVulnerability());
    const claimedAt = new Date();
    const ledger = new FolderLedger(stateDir, { now: () => claimedAt });
    expect(await ledger.claim(key)).toBe(true);
    expect(await ledger.claim(key)).toBe(false);
    expect(await new FolderLedger(stateDir).claim(key)).toBe(false);

    const hash = ledgerKeyHash(key);
    expect(ledger.folder).toBe(path.join(stateDir, 'ledger'));
    expect(await listFiles(stateDir)).toEqual([`ledger/${hash.slice(0, 2)}/${hash}.json`]);
    expect(await readEntry(ledger, key)).toEqual({ key, state: 'pending', claimId: expect.any(String), claimedAt: claimedAt.toISOString() });
  });

  it('lets exactly one of two ledgers on the same folder claim each key when they race', async () => {
    const a = new FolderLedger(stateDir);
    const b = new FolderLedger(stateDir);
    const keys = Array.from({ length: 60 }, (_, i) => keyFor(i));
    const answers = await Promise.all(keys.map((key) => Promise.all([a.claim(key), b.claim(key)])));
    for (const [index, pair] of answers.entries()) {
      expect(pair.filter(Boolean), `key ${index}: ${JSON.stringify(pair)}`).toHaveLength(1);
    }
    expect((await listFiles(stateDir)).length).toBe(keys.length);
  });

  it('answers false for good once a claim is confirmed, rewriting the entry atomically', async () => {
    const key = keyFor(1);
    const ledger = new FolderLedger(stateDir, { now: () => new Date('2025-08-21T10:00:00.000Z') });
    expect(await ledger.claim(key)).toBe(true);
    await ledger.confirm(key);
    expect(await readEntry(ledger, key)).toMatchObject({ key, state: 'sent', claimedAt: '2025-08-21T10:00:00.000Z', sentAt: '2025-08-21T10:00:00.000Z' });
    expect(await ledger.claim(key)).toBe(false);
    expect(await new FolderLedger(stateDir, { now: () => new Date(Date.now() + 1_000 * HOUR_MS) }).claim(key)).toBe(false);
    // No temporary file or lock is left behind.
    expect((await listFiles(stateDir)).filter((name) => !name.endsWith(`${ledgerKeyHash(key)}.json`))).toEqual([]);
  });

  it('lets the key be claimed again once released, and a second release does nothing', async () => {
    const key = keyFor(2);
    const first = new FolderLedger(stateDir);
    const second = new FolderLedger(stateDir);
    expect(await first.claim(key)).toBe(true);
    expect(await second.claim(key)).toBe(false);
    await first.release(key);
    expect(await listFiles(stateDir)).toEqual([]);
    expect(await second.claim(key)).toBe(true);
    await first.release(key);
    expect(await first.claim(key)).toBe(false);
  });

  it('lets exactly one of two contenders take over a stale pending claim', async () => {
    const keys = Array.from({ length: 20 }, (_, i) => keyFor(100 + i));
    const crashed = new FolderLedger(stateDir, { now: () => new Date(Date.now() - HOUR_MS) });
    for (const key of keys) expect(await crashed.claim(key)).toBe(true);

    const b = new FolderLedger(stateDir);
    const c = new FolderLedger(stateDir);
    const answers = await Promise.all(keys.map((key) => Promise.all([b.claim(key), c.claim(key)])));
    for (const [index, pair] of answers.entries()) {
      expect(pair.filter(Boolean), `key ${index}: ${JSON.stringify(pair)}`).toHaveLength(1);
    }

    // The crashed run comes back: its confirm and release leave the new claims alone.
    const [first, second] = keys;
    if (first === undefined || second === undefined) throw new Error('no keys');
    const takenOver = await readEntry(b, first);
    await crashed.confirm(first);
    await crashed.release(second);
    expect(await readEntry(b, first)).toEqual(takenOver);
    expect((await readEntry(b, second)).state).toBe('pending');

    const winner = answers[0]?.[0] === true ? b : c;
    await winner.confirm(first);
    expect((await readEntry(b, first)).state).toBe('sent');
    expect((await listFiles(stateDir)).filter((name) => !name.endsWith('.json'))).toEqual([]);
  });

  it('does not take over a pending claim within its lease', async () => {
    const key = keyFor(3);
    const owner = new FolderLedger(stateDir, { now: () => new Date(Date.now() - 9 * 60_000) });
    expect(await owner.claim(key)).toBe(true);
    expect(await Promise.all([new FolderLedger(stateDir).claim(key), new FolderLedger(stateDir).claim(key)])).toEqual([false, false]);
    expect(await new FolderLedger(stateDir, { leaseMs: 5 * 60_000 }).claim(key)).toBe(true);
  });

  it('ages an unreadable entry (a claimer that died before writing) by its modification time', async () => {
    const key = keyFor(4);
    const ledger = new FolderLedger(stateDir);
    await mkdir(path.dirname(ledger.pathFor(key)), { recursive: true });
    await writeFile(ledger.pathFor(key), '');
    expect(await ledger.claim(key)).toBe(false);
    const longAgo = new Date(Date.now() - HOUR_MS);
    await utimes(ledger.pathFor(key), longAgo, longAgo);
    expect(await ledger.claim(key)).toBe(true);
    expect(await readEntry(ledger, key)).toMatchObject({ key, state: 'pending' });
  });

  it('waits while another process holds the takeover lock, and clears a lock its holder left behind', async () => {
    const key = keyFor(5);
    const crashed = new FolderLedger(stateDir, { now: () => new Date(Date.now() - HOUR_MS) });
    expect(await crashed.claim(key)).toBe(true);
    const lock = await lockPathOf(crashed, key);
    await writeFile(lock, '4242\n');

    const contender = new FolderLedger(stateDir);
    expect(await contender.claim(key)).toBe(false); // someone is taking it over right now
    expect(await readFile(lock, 'utf8')).toBe('4242\n');

    const longAgo = new Date(Date.now() - HOUR_MS);
    await utimes(lock, longAgo, longAgo);
    expect(await contender.claim(key)).toBe(false); // clears the dead holder's lock
    await expect(readFile(lock, 'utf8')).rejects.toThrow(/ENOENT/);
    expect(await contender.claim(key)).toBe(true);
  });

  it('settles entries it did not claim itself: confirm writes sent, release leaves them alone', async () => {
    const key = keyFor(6);
    const claimer = new FolderLedger(stateDir);
    expect(await claimer.claim(key)).toBe(true);
    const stranger = new FolderLedger(stateDir);
    await stranger.release(key);
    expect((await readEntry(claimer, key)).state).toBe('pending');
    await stranger.confirm(key);
    expect((await readEntry(claimer, key)).state).toBe('sent');
    await stranger.confirm(keyFor(7)); // never claimed anywhere: recorded as sent
    expect(await claimer.claim(keyFor(7))).toBe(false);
  });

  it('refuses a lease that is not a positive number', () => {
    expect(() => new FolderLedger(stateDir, { leaseMs: -1 })).toThrow(/leaseMs must be a positive number of milliseconds, not -1/);
  });

  it('rejects with a StoreError naming the folder when it cannot write', async () => {
    const blocker = path.join(stateDir, 'not-a-folder');
    await writeFile(blocker, 'a file where the state folder should be');
    const ledger = new FolderLedger(blocker);
    const key = keyFor(8);
    const failure = await ledger.claim(key).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StoreError);
    const error = failure as StoreError;
    const folder = path.join(blocker, 'ledger');
    const hash = ledgerKeyHash(key);
    expect(error.message).toBe(
      `ledger store refused the request: folder "${folder}": cannot claim "${hash.slice(0, 2)}/${hash}.json": ${(error.cause as Error).message}`,
    );
    expect(error.message).toMatch(/ENOTDIR|EEXIST/);
    expect(error.store).toBe(`folder "${folder}"`);
    expect(error.unreachable).toBe(false);
    await expect(ledger.confirm(key)).rejects.toThrow(/^ledger store refused the request: folder ".*": cannot confirm "/);
  });
});
