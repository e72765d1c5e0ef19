/**
 * Re-drive end to end, over both dead-letter stores (blob storage in Azurite, a state folder) and both
 * ledgers, delivering to real HEC and Teams stand-ins: delivered letters are deleted, duplicates are deleted
 * without a second notification, claims held by another run are respected until they expire, failures are
 * spaced out and finally expired, and two re-drivers never send the same letter twice. Then the timer
 * Function's handler as the host calls it (`new InvocationContext`): one `run.summary` line per invocation,
 * a warning per expired letter, and a throw only when the store cannot be reached.
 */
import { InvocationContext, type Timer } from '@azure/functions';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { DeadLetter, DeliveryLedger } from '../../src/delivery/contracts.js';
import { redriveDeadLetters, type RedriveLetterEvent, type RedriveOptions, type RedriveResult } from '../../src/delivery/redrive.js';
import { createRedriveTimerHandler } from '../../src/host/redriveTimer.js';
import { inspectEnvelope } from '../../src/pipeline/run.js';
import { dedupeKey } from '../../src/routing/dedupe.js';
import { loadRulesFile } from '../../src/routing/load.js';
import type { RoutingRules } from '../../src/routing/types.js';
import { closeHttpClient, createHttpClient } from '../../src/sinks/http.js';
import { closeSinks, createSinks } from '../../src/sinks/registry.js';
import type { Sink } from '../../src/sinks/sink.js';
import { BlobDeadLetterStore, createBlobDeadLetterStore } from '../../src/storage/blobDeadLetters.js';
import { BlobLedger } from '../../src/storage/blobLedger.js';
import { deadLetterBlobName } from '../../src/storage/deadLetterEntry.js';
import type { DeadLetterListing, DeadLetterStore } from '../../src/storage/deadLetterStore.js';
import { FolderDeadLetterStore } from '../../src/storage/folderDeadLetters.js';
import { FolderLedger } from '../../src/storage/folderLedger.js';
import { StoreError } from '../../src/storage/storeError.js';
import { createTestContainer, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, devConnectionString, type TestContainer } from '../support/azurite.js';
import { startHecReceiver, type HecReceiver } from '../support/hecReceiver.js';
import { answer, startTeamsReceiver, type TeamsReceiver } from '../support/teamsReceiver.js';

const connectionString = inject('azuriteConnectionString');
const root = path.resolve(import.meta.dirname, '../..');
const SAMPLE_ALERT = JSON.parse(readFileSync(path.join(root, 'samples/02-alert-k8s-node-crypto-miner.json'), 'utf8')) as Record<string, unknown>;
const TOKEN = '0f0e0d0c-1111-2222-3333-444455556666';
const T0 = new Date('2026-11-20T10:00:00.000Z');
const MINUTE = 60_000;
const TIMER: Timer = {
  isPastDue: false,
  schedule: { adjustForDST: true },
  scheduleStatus: { last: '2026-11-09T00:55:00.000Z', next: '2026-11-09T01:05:00.000Z', lastUpdated: '2026-11-09T00:55:00.000Z' },
};

let hec: HecReceiver;
let teams: TeamsReceiver;
let scratch: string;
let rules: RoutingRules;
let sinks: Map<string, Sink>;
const http = createHttpClient();

beforeAll(async () => {
  [hec, teams] = await Promise.all([startHecReceiver({ token: TOKEN }), startTeamsReceiver()]);
  scratch = await mkdtemp(path.join(tmpdir(), 'df-redrive-'));
  const rulesFile = path.join(scratch, 'routes.yaml');
  await writeFile(
    rulesFile,
    [
      'destinations:',
      '  splunk: {type: splunk-hec, url: "${HEC_URL}", token: "${HEC_TOKEN}", index: defender}',
      '  teams: {type: teams, url: "${TEAMS_URL}"}',
      'routes:',
      '  - name: all',
      '    match: {}',
      '    to: [splunk, teams]',
      '',
    ].join('\n'),
  );
  rules = await loadRulesFile(rulesFile);
  sinks = createSinks(rules, { env: { HEC_URL: hec.url, HEC_TOKEN: TOKEN, TEAMS_URL: teams.url }, http });
});

afterAll(async () => {
  await closeSinks(sinks);
  closeHttpClient(http);
  await Promise.all([hec.stop(), teams.close()]);
  await rm(scratch, { recursive: true, force: true });
});

/** A dead letter of the sample alert (with its own id) for `destination`, written at `deadLetteredAt`. */
function letterFor(destination: 'splunk' | 'teams' | 'old-teams', id: string, overrides: Partial<DeadLetter> = {}): DeadLetter {
  const record = { ...SAMPLE_ALERT, SystemAlertId: id };
  const input = `eh:0/${id}`;
  const inspected = inspectEnvelope({ input, body: record })[0];
  if (inspected === undefined || !inspected.ok) throw new Error('the sample alert no longer passes');
  const { finding } = inspected;
  const at = overrides.deadLetteredAt ?? T0.toISOString();
  return {
    format: 'defender-forwarder.deadletter/v1',
    destination,
    destinationType: destination === 'splunk' ? 'splunk-hec' : 'teams',
    input,
    finding: { kind: finding.kind, id: finding.id, severity: finding.severity, status: finding.status, title: finding.title },
    error: { message: `${destination}: HTTP 503`, reason: 'http-503', retryable: true, configuration: false },
    attempts: 5,
    firstAttemptAt: at,
    lastAttemptAt: at,
    deadLetteredAt: at,
    ...(destination === 'splunk' ? {} : { dedupeKey: dedupeKey(destination, finding) }),
    payload: [],
    record,
    ...overrides,
  };
}

/** One store under test, with a way to open ledgers on the same state and to write a raw document. */
interface Harness {
  readonly store: DeadLetterStore & { put(letter: DeadLetter): Promise<void> };
  ledger(now?: () => Date): DeliveryLedger;
  writeRaw(name: string, text: string): Promise<void>;
  /** The re-drive state exactly as stored: the blob's metadata, or the sidecar file's JSON. */
  storedState(name: string): Promise<Record<string, unknown>>;
  dispose(): Promise<void>;
}

async function blobHarness(): Promise<Harness> {
  const [letters, ledger] = await Promise.all([createTestContainer(connectionString, 'redrive'), createTestContainer(connectionString, 'redrive-ledger')]);
  return {
    store: new BlobDeadLetterStore(letters.containerClient),
    ledger: (now) => new BlobLedger(ledger.containerClient, now ? { now } : {}),
    writeRaw: async (name, text) => {
      await letters.containerClient.getBlockBlobClient(name).upload(text, Buffer.byteLength(text), { metadata: { destination: 'teams', reason: 'http-503' } });
    },
    storedState: async (name) => (await letters.containerClient.getBlockBlobClient(name).getProperties()).metadata ?? {},
    dispose: async () => {
      await Promise.all([letters.dispose(), ledger.dispose()]);
    },
  };
}

async function folderHarness(): Promise<Harness> {
  const stateDir = await mkdtemp(path.join(scratch, 'state-'));
  const store = new FolderDeadLetterStore(stateDir);
  return {
    store,
    ledger: (now) => new FolderLedger(stateDir, now ? { now } : {}),
    writeRaw: async (name, text) => {
      const file = path.join(store.folder, ...name.split('/'));
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, text);
    },
    storedState: async (name) => JSON.parse(readFileSync(path.join(store.folder, ...name.split('/')) + '.redrive', 'utf8')) as Record<string, unknown>,
    dispose: () => rm(stateDir, { recursive: true, force: true }),
  };
}

async function listing(store: DeadLetterStore, expired = false): Promise<DeadLetterListing[]> {
  const listed: DeadLetterListing[] = [];
  for await (const entry of store.list({ expired })) listed.push(entry);
  return listed;
}

async function names(store: DeadLetterStore, expired = false): Promise<string[]> {
  return (await listing(store, expired)).map((entry) => entry.name);
}

describe.each([
  ['blob storage (Azurite)', blobHarness],
  ['a state folder', folderHarness],
])('re-drive over %s', (_label, open) => {
  let harness: Harness;
  const events: RedriveLetterEvent[] = [];

  beforeEach(async () => {
    harness = await open();
    events.length = 0;
  });
  afterEach(async () => {
    await harness.dispose();
  });

  /** One re-drive at `at`, waits collapsed (the retry loop's own sleep; no fake timers with real I/O). */
  const redrive = (at: Date, overrides: Partial<RedriveOptions> = {}): Promise<RedriveResult> =>
    redriveDeadLetters({
      store: harness.store,
      rules,
      sinks,
      ledger: harness.ledger(() => at),
      now: () => at,
      retry: { sleep: async () => undefined },
      onLetter: (event) => events.push(event),
      ...overrides,
    });

  it('re-delivers HEC letters in one request and deletes them', async () => {
    for (const id of ['hec-1', 'hec-2', 'hec-3']) await harness.store.put(letterFor('splunk', id));
    const requestsBefore = hec.eventRequests().length;
    const eventsBefore = hec.events.length;
    const result = await redrive(new Date(T0.getTime() + MINUTE));
    expect(result.totals).toMatchObject({ redriven: 3, failed: 0, duplicates: 0 });
    expect(result.byDestination['splunk']?.redriven).toBe(3);
    expect(hec.eventRequests().length - requestsBefore).toBe(1);
    const indexed = hec.events.slice(eventsBefore).map((event) => (event['event'] as Record<string, unknown>)['SystemAlertId']);
    expect(indexed.sort()).toEqual(['hec-1', 'hec-2', 'hec-3']);
    expect(await names(harness.store)).toEqual([]);
    expect(await names(harness.store, true)).toEqual([]);
  });

  it('deletes a Teams letter whose ledger key is already sent, without a second card', async () => {
    const letter = letterFor('teams', 'dup-1');
    // Another run notified and confirmed after this letter was written.
    const other = harness.ledger();
    expect(await other.claimOutcome(letter.dedupeKey ?? '')).toBe('claimed');
    await other.confirm(letter.dedupeKey ?? '');
    await harness.store.put(letter);
    const requestsBefore = teams.requests.length;
    const result = await redrive(new Date(T0.getTime() + MINUTE));
    expect(result.totals).toMatchObject({ duplicates: 1, redriven: 0 });
    expect(teams.requests.length).toBe(requestsBefore);
    expect(await names(harness.store)).toEqual([]);
    expect(events).toEqual([expect.objectContaining({ outcome: 'duplicate', destination: 'teams', input: 'eh:0/dup-1' })]);
  });

  it('leaves a claim-pending letter while the other claim holds, and notifies once after it expired', async () => {
    const letter = letterFor('teams', 'pending-1', {
      error: { message: 'another run holds the claim', reason: 'claim-pending', retryable: true, configuration: false },
    });
    // A run that claimed at T0 and died: its claim is pending, with the ledger's 10-minute lease.
    expect(await harness.ledger(() => T0).claimOutcome(letter.dedupeKey ?? '')).toBe('claimed');
    await harness.store.put(letter);
    const messagesBefore = teams.messages.length;

    const early = await redrive(new Date(T0.getTime() + 2 * MINUTE));
    expect(early.totals).toMatchObject({ held: 1, redriven: 0 });
    expect(teams.messages.length).toBe(messagesBefore);
    const [kept] = await listing(harness.store);
    expect(kept?.redrive).toMatchObject({ attempts: 1, lastReason: 'claim-pending', nextAttemptAt: new Date(T0.getTime() + 3 * MINUTE).toISOString() });

    const late = await redrive(new Date(T0.getTime() + 11 * MINUTE));
    expect(late.totals).toMatchObject({ redriven: 1, held: 0 });
    expect(teams.messages.length).toBe(messagesBefore + 1);
    expect(await names(harness.store)).toEqual([]);
    // Confirmed in the ledger: nobody notifies again.
    expect(await harness.ledger(() => new Date(T0.getTime() + 60 * MINUTE)).claimOutcome(letter.dedupeKey ?? '')).toBe('sent');
    const again = await redrive(new Date(T0.getTime() + 60 * MINUTE), { force: true });
    expect(again.letters).toBe(0);
    expect(teams.messages.length).toBe(messagesBefore + 1);
  });

  it('spaces the attempts of a destination that still fails, then expires the letter past its max age', async () => {
    const letter = letterFor('teams', 'failing-1');
    await harness.store.put(letter);
    const name = deadLetterBlobName(letter);
    const failing = answer(503, `{"error":{"code":"ServiceUnavailable","message":"busy, posted to ${teams.url}"}}`);
    const requestsBefore = teams.requests.length;

    teams.script(failing, failing);
    const first = new Date(T0.getTime() + MINUTE);
    expect((await redrive(first)).totals).toMatchObject({ failed: 1 });
    // The one retry loop, with the re-drive policy: two attempts.
    expect(teams.requests.length - requestsBefore).toBe(2);
    const [afterFirst] = await listing(harness.store);
    expect(afterFirst?.redrive).toMatchObject({ attempts: 1, lastReason: 'http-503', nextAttemptAt: new Date(first.getTime() + MINUTE).toISOString() });
    expect(await harness.storedState(name)).toMatchObject(
      harness.store instanceof BlobDeadLetterStore
        ? { redriveattempts: '1', lastreason: 'http-503', nextattemptat: new Date(first.getTime() + MINUTE).toISOString() }
        : { attempts: 1, lastReason: 'http-503', nextAttemptAt: new Date(first.getTime() + MINUTE).toISOString() },
    );

    const tooSoon = await redrive(new Date(first.getTime() + 59_000));
    expect(tooSoon.totals).toMatchObject({ notDue: 1, failed: 0 });
    expect(teams.requests.length - requestsBefore).toBe(2);

    teams.script(failing, failing);
    const second = new Date(first.getTime() + MINUTE);
    expect((await redrive(second)).totals).toMatchObject({ failed: 1 });
    const [afterSecond] = await listing(harness.store);
    // Doubled: 2 minutes after the second attempt.
    expect(afterSecond?.redrive).toMatchObject({ attempts: 2, nextAttemptAt: new Date(second.getTime() + 2 * MINUTE).toISOString() });

    teams.script(failing, failing);
    const pastMaxAge = new Date(T0.getTime() + 8 * 24 * 60 * MINUTE);
    const last = await redrive(pastMaxAge);
    expect(last.totals).toMatchObject({ expired: 1, failed: 0 });
    expect(events.at(-1)).toMatchObject({ outcome: 'expired', name: `expired/${name}`, reason: 'http-503', attempts: 3 });
    expect(await names(harness.store)).toEqual([]);
    const [expired] = await listing(harness.store, true);
    expect(expired).toMatchObject({ name: `expired/${name}`, destination: 'teams', redrive: { attempts: 3, lastReason: 'http-503', expiredAt: pastMaxAge.toISOString() } });
    // Kept whole, and never re-driven again.
    const read = await harness.store.read(expired as DeadLetterListing);
    expect(read).toMatchObject({ status: 'ok', letter: { input: 'eh:0/failing-1' } });
    expect((await redrive(new Date(pastMaxAge.getTime() + 60 * MINUTE), { force: true })).letters).toBe(0);

    // The Teams URL's signature never reaches the stored state or the reported events.
    expect(JSON.stringify(await harness.storedState(`expired/${name}`))).not.toContain(teams.signature);
    expect(JSON.stringify(events)).not.toContain(teams.signature);
    expect(JSON.stringify(events)).not.toContain(TOKEN);
  });

  it('a dry run lists what is due and changes nothing', async () => {
    await harness.store.put(letterFor('splunk', 'dry-1'));
    await harness.store.put(letterFor('teams', 'dry-2'));
    await harness.store.put(letterFor('old-teams', 'dry-3'));
    const before = await listing(harness.store);
    const sent = { hec: hec.eventRequests().length, teams: teams.requests.length };
    const result = await redrive(new Date(T0.getTime() + MINUTE), { dryRun: true, sinks: new Map() });
    expect(result.dryRun).toBe(true);
    expect(result.totals).toMatchObject({ due: 2, destinationGone: 1, redriven: 0 });
    expect({ hec: hec.eventRequests().length, teams: teams.requests.length }).toEqual(sent);
    expect(await listing(harness.store)).toEqual(before);
  });

  it('two re-drivers at once send each letter once', async () => {
    const ids = ['race-1', 'race-2', 'race-3', 'race-4', 'race-5', 'race-6'];
    for (const id of ids) await harness.store.put(letterFor('splunk', id));
    const eventsBefore = hec.events.length;
    const at = new Date(T0.getTime() + MINUTE);
    const [a, b] = await Promise.all([redrive(at), redrive(at)]);
    expect((a?.totals.redriven ?? 0) + (b?.totals.redriven ?? 0)).toBe(6);
    const indexed = hec.events.slice(eventsBefore).map((event) => (event['event'] as Record<string, unknown>)['SystemAlertId']);
    expect(indexed.sort()).toEqual(ids);
    expect(await names(harness.store)).toEqual([]);
  });

  it('reports a letter that does not parse, records the attempt, and never deletes it', async () => {
    const name = 'teams/2026/11/20/broken-000000000000.json';
    await harness.writeRaw(name, '{"format": "defender-forwarder.deadletter/v1", "destination": "teams", cut short');
    const result = await redrive(new Date(T0.getTime() + MINUTE));
    expect(result.totals).toMatchObject({ unreadable: 1, redriven: 0 });
    expect(events[0]).toMatchObject({ outcome: 'unreadable', name, reason: 'unreadable', message: expect.stringMatching(/^not JSON/) });
    const [kept] = await listing(harness.store);
    expect(kept).toMatchObject({ name, redrive: { attempts: 1, lastReason: 'unreadable' } });
    // Not deleted even long past any max age.
    await redrive(new Date(T0.getTime() + 30 * 24 * 60 * MINUTE), { force: true });
    expect(await names(harness.store)).toEqual([name]);
  });

  it('leaves letters whose destination left the rules, and expires them like the others', async () => {
    await harness.store.put(letterFor('old-teams', 'gone-1'));
    expect((await redrive(new Date(T0.getTime() + MINUTE))).totals).toMatchObject({ destinationGone: 1 });
    expect(await names(harness.store)).toHaveLength(1);
    expect((await redrive(new Date(T0.getTime() + 8 * 24 * 60 * MINUTE))).totals).toMatchObject({ expired: 1 });
    expect(await names(harness.store)).toEqual([]);
    expect(await names(harness.store, true)).toHaveLength(1);
  });

  it('only the destinations asked for, and stops claiming once the signal aborts', async () => {
    await harness.store.put(letterFor('splunk', 'only-1'));
    await harness.store.put(letterFor('teams', 'only-2'));
    const messagesBefore = teams.messages.length;
    const result = await redrive(new Date(T0.getTime() + MINUTE), { destinations: ['splunk'] });
    expect(result.totals).toMatchObject({ redriven: 1 });
    expect(teams.messages.length).toBe(messagesBefore);
    expect(await names(harness.store)).toHaveLength(1);

    const aborted = await redrive(new Date(T0.getTime() + MINUTE), { signal: AbortSignal.abort() });
    expect(aborted).toMatchObject({ aborted: true, letters: 0 });
    expect(await names(harness.store)).toHaveLength(1);
  });
});

describe('re-drive when the store is unreachable', () => {
  let container: TestContainer | undefined;
  afterEach(async () => {
    await container?.dispose();
  });

  it('rejects with the StoreError, never skips silently', async () => {
    container = await createTestContainer(connectionString, 'redrive-unreachable');
    const store = createBlobDeadLetterStore({
      connectionString: devConnectionString(`http://127.0.0.1:9/${DEV_ACCOUNT_NAME}`),
      retryOptions: { maxTries: 1, tryTimeoutInMs: 2_000 },
    });
    const failure = await redriveDeadLetters({ store, rules, sinks, ledger: new BlobLedger(container.containerClient) }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StoreError);
    expect((failure as StoreError).unreachable).toBe(true);
    expect((failure as StoreError).message).toMatch(/^dead-letter store unreachable: container "deadletter" at http:\/\/127\.0\.0\.1:9\/devstoreaccount1\/deadletter: cannot list: /);
  });
});

interface Logged {
  readonly level: string;
  readonly message: string;
}

function context(logs: Logged[]): InvocationContext {
  return new InvocationContext({
    invocationId: 'redrive-invocation-1',
    functionName: 'redriveDeadLetters',
    logHandler: (level, ...args) => logs.push({ level, message: args.map(String).join(' ') }),
  });
}

describe('redriveDeadLetters timer handler', () => {
  let letters: TestContainer;
  let ledger: TestContainer;

  beforeEach(async () => {
    [letters, ledger] = await Promise.all([createTestContainer(connectionString, 'timer-dl'), createTestContainer(connectionString, 'timer-ledger')]);
  });
  afterEach(async () => {
    await Promise.all([letters.dispose(), ledger.dispose()]);
  });

  it('re-drives, logs one run.summary line and a warning per expired letter, and no secret', async () => {
    const store = new BlobDeadLetterStore(letters.containerClient);
    await store.put(letterFor('splunk', 'timer-1'));
    await store.put(letterFor('splunk', 'timer-2'));
    await store.put(letterFor('teams', 'timer-3'));
    const busy = answer(503, `{"error":{"code":"ServiceUnavailable","message":"busy at ${teams.url}"}}`);
    teams.script(busy, busy);
    const now = new Date(T0.getTime() + 8 * 24 * 60 * MINUTE);
    const handler = createRedriveTimerHandler({
      store,
      rules,
      sinks,
      ledger: new BlobLedger(ledger.containerClient, { now: () => now }),
      now: () => now,
      retry: { sleep: async () => undefined },
      maxAgeMs: 7 * 24 * 60 * MINUTE,
    });
    const logs: Logged[] = [];
    const result = await handler(TIMER, context(logs));
    expect(result.totals).toMatchObject({ redriven: 2, expired: 1, failed: 0 });

    const summaries = logs.filter((line) => line.message.includes('"run.summary"'));
    expect(summaries).toHaveLength(1);
    expect(summaries[0]?.level).toBe('information');
    expect(JSON.parse(summaries[0]?.message ?? '{}')).toMatchObject({
      event: 'run.summary',
      host: 'redrive',
      source: `container "${letters.containerName}"`,
      startedAt: now.toISOString(),
      received: 0,
      redriven: { splunk: 2 },
      duplicates: {},
      expired: { teams: 1 },
      failed: {},
      letters: 3,
      invocationId: 'redrive-invocation-1',
      isPastDue: false,
    });
    const expired = logs.filter((line) => line.message.includes('"deadLetter.expired"'));
    expect(expired).toHaveLength(1);
    expect(expired[0]?.level).toBe('warning');
    expect(JSON.parse(expired[0]?.message ?? '{}')).toMatchObject({
      name: expect.stringMatching(/^expired\/teams\//),
      destination: 'teams',
      input: 'eh:0/timer-3',
      attempts: 1,
      reason: 'http-503',
      deadLetteredAt: T0.toISOString(),
    });
    // The one retry the re-drive policy allows, logged like the Event Hub function's.
    expect(logs.filter((line) => line.message.includes('"delivery.retry"')).map((line) => line.level)).toEqual(['warning']);
    for (const line of logs) {
      expect(line.message).not.toContain(TOKEN);
      expect(line.message).not.toContain(teams.signature);
    }
  });

  it('throws the StoreError when the dead-letter store cannot be reached, after logging it', async () => {
    const handler = createRedriveTimerHandler({
      store: createBlobDeadLetterStore({ connectionString: devConnectionString(`http://127.0.0.1:9/${DEV_ACCOUNT_NAME}`), retryOptions: { maxTries: 1 } }),
      rules,
      sinks,
      ledger: new BlobLedger(ledger.containerClient),
    });
    const logs: Logged[] = [];
    await expect(handler(TIMER, context(logs))).rejects.toBeInstanceOf(StoreError);
    expect(logs.filter((line) => line.message.includes('"run.summary"'))).toEqual([]);
    expect(logs).toEqual([{ level: 'error', message: expect.stringContaining('"event":"redrive.failed"') }]);
    expect(JSON.parse(logs[0]?.message ?? '{}')).toMatchObject({ store: 'container "deadletter"', unreachable: true });
    expect(logs[0]?.message).not.toContain(DEV_ACCOUNT_KEY);
  });
});
