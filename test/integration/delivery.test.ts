/**
 * Delivery end to end through the Event Hub handler: real HEC, Teams and SMTP stand-ins, the ledger and
 * dead letters in Azurite. Proves notify-once across a Function retry and two instances in parallel, and
 * that every failure ends delivered or dead-lettered.
 */
import { InvocationContext } from '@azure/functions';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createDelivery } from '../../src/delivery/deliver.js';
import type { DeadLetterSink } from '../../src/delivery/contracts.js';
import type { RetryPolicy } from '../../src/delivery/retry.js';
import { createEventHubHandler } from '../../src/host/eventHubBatch.js';
import { parseRules } from '../../src/routing/load.js';
import { closeHttpClient, createHttpClient } from '../../src/sinks/http.js';
import { closeSinks, createSinks } from '../../src/sinks/registry.js';
import type { Sink } from '../../src/sinks/sink.js';
import { createBlobDeadLetterStore } from '../../src/storage/blobDeadLetters.js';
import { createBlobLedger } from '../../src/storage/blobLedger.js';
import { createBlobQuarantineStore } from '../../src/storage/blobQuarantine.js';
import { createTestContainer, type TestContainer } from '../support/azurite.js';
import { startHecReceiver, type HecReceiver } from '../support/hecReceiver.js';
import { startSmtpServer, SMTP_ANSWERS, type SmtpStandIn } from '../support/smtpServer.js';
import { answer, startTeamsReceiver, type TeamsReceiver } from '../support/teamsReceiver.js';

const connectionString = inject('azuriteConnectionString');
const fixtures = path.resolve(import.meta.dirname, '../fixtures/defender');
const alert = JSON.parse(readFileSync(path.join(fixtures, 'eh_alert_K8S_AdmissionController_informational__sumologic.json'), 'utf8')) as Record<string, unknown>;
const recommendation = readFileSync(path.join(fixtures, 'eh_assessment_insert_NotApplicable__sumologic.json'), 'utf8');

const TOKEN = '11111111-2222-3333-4444-555555555555';
const FAST: RetryPolicy = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50, maxTotalMs: 10_000 };

const RULES = parseRules(
  `
destinations:
  splunk: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}", index: defender}
  teams: {type: teams, url: "\${TEAMS_URL}"}
  email: {type: email, smtpUrl: "\${SMTP_URL}", from: alerts@contoso.example, to: [oncall@contoso.example]}
routes:
  - name: all
    match: {}
    to: [splunk]
    continue: true
  - name: high
    match: {kind: alert, minSeverity: High}
    to: [teams, email]
`,
  'delivery.yaml',
);

function highAlert(id: string, status = 'New'): Record<string, unknown> {
  return { ...alert, SystemAlertId: id, Severity: 'High', Status: status, AlertDisplayName: `High alert ${id}` };
}

interface Logged {
  level: string;
  message: string;
}

/** The context the host would pass for a batch; `logs`, when given, receives what the handler logs. */
function context(partition = '0', first = 100, count = 10, logs?: Logged[]): InvocationContext {
  return new InvocationContext({
    invocationId: `inv-${partition}-${first}`,
    functionName: 'forwardDefenderExport',
    logHandler: (level, ...args) => logs?.push({ level, message: args.map(String).join(' ') }),
    triggerMetadata: {
      partitionContext: { partitionId: partition },
      sequenceNumberArray: Array.from({ length: count }, (_, i) => first + i),
      enqueuedTimeUtcArray: Array.from({ length: count }, () => '2026-11-27T10:00:00Z'),
    },
  });
}

let hec: HecReceiver;
let teams: TeamsReceiver;
let smtp: SmtpStandIn;
let ledgerContainer: TestContainer;
let deadLetterContainer: TestContainer;
let quarantineContainer: TestContainer;
const http = createHttpClient();
const openSinks: Map<string, Sink>[] = [];

beforeAll(async () => {
  hec = await startHecReceiver({ token: TOKEN });
  teams = await startTeamsReceiver();
  smtp = await startSmtpServer();
});
afterAll(async () => {
  for (const sinks of openSinks) await closeSinks(sinks);
  closeHttpClient(http);
  await Promise.all([hec.stop(), teams.close(), smtp.stop()]);
});
beforeEach(async () => {
  [ledgerContainer, deadLetterContainer, quarantineContainer] = await Promise.all([
    createTestContainer(connectionString, 'ledger'),
    createTestContainer(connectionString, 'deadletter'),
    createTestContainer(connectionString, 'quarantine'),
  ]);
  hec.events.length = 0;
  teams.messages.length = 0;
});
afterEach(async () => {
  await Promise.all([ledgerContainer.dispose(), deadLetterContainer.dispose(), quarantineContainer.dispose()]);
});

/**
 * One Function instance: its own sinks, ledger client and stores, sharing the storage account. A test may
 * give the HEC token (a wrong one) or a dead-letter store (an unreachable one).
 */
function instance(overrides: { hecToken?: string; deadLetters?: DeadLetterSink } = {}): ReturnType<typeof createEventHubHandler> {
  const sinks = createSinks(RULES, {
    env: { HEC_URL: hec.url, HEC_TOKEN: overrides.hecToken ?? TOKEN, TEAMS_URL: teams.url, SMTP_URL: `smtp://127.0.0.1:${smtp.port}` },
    http,
  });
  openSinks.push(sinks);
  const ledger = createBlobLedger({ connectionString, containerName: ledgerContainer.containerName });
  return createEventHubHandler({
    rules: RULES,
    ledger,
    quarantine: createBlobQuarantineStore({ connectionString, containerName: quarantineContainer.containerName }),
    delivery: createDelivery({
      rules: RULES,
      sinks,
      ledger,
      deadLetters: overrides.deadLetters ?? createBlobDeadLetterStore({ connectionString, containerName: deadLetterContainer.containerName }),
      policy: FAST,
    }),
  });
}

async function blobNames(container: TestContainer): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of container.containerClient.listBlobsFlat()) names.push(blob.name);
  return names.sort();
}

describe('delivery through the Event Hub handler', () => {
  it('a run that died between claim and delivery does not lose the notification: the re-run keeps it as claim-pending', async () => {
    // The crashed run: its claim is in the ledger, its delivery never happened.
    const { dedupeKey } = await import('../../src/routing/dedupe.js');
    const [inspected] = (await import('../../src/pipeline/run.js')).inspectEnvelope({ input: 'x', body: JSON.stringify(highAlert('c-1')) });
    if (!inspected?.ok) throw new Error('fixture rejected');
    const crashed = createBlobLedger({ connectionString, containerName: ledgerContainer.containerName });
    expect(await crashed.claim(dedupeKey('teams', inspected.finding))).toBe(true);
    const summary = await instance()([JSON.stringify(highAlert('c-1'))], context('6', 1, 1));
    expect(teams.messages).toHaveLength(0);
    expect(summary.deadLettered).toEqual({ teams: 1 });
    expect(summary.delivered).toMatchObject({ splunk: 1, email: 1 });
    const letters = await blobNames(deadLetterContainer);
    expect(letters).toHaveLength(1);
    const letter = JSON.parse((await deadLetterContainer.containerClient.getBlobClient(letters[0] ?? '').downloadToBuffer()).toString()) as {
      error: { reason: string; retryable: boolean };
      dedupeKey: string;
      record: unknown;
    };
    expect(letter.error).toMatchObject({ reason: 'claim-pending', retryable: true });
    expect(letter.dedupeKey).toBe(dedupeKey('teams', inspected.finding));
    expect(letter.record).toEqual(highAlert('c-1'));
  });

  it('delivers a mixed batch: Splunk gets every valid record, Teams and email each High alert once', async () => {
    const batch = [JSON.stringify(highAlert('a-1')), recommendation, '{not json', JSON.stringify(highAlert('a-2')), JSON.stringify(highAlert('a-1'))];
    const requestsBefore = hec.eventRequests().length;
    const summary = await instance()(batch, context('0', 100, batch.length));
    expect(summary.outcomes).toEqual({ routed: 4, unrouted: 0, muted: 0, quarantined: 1 });
    expect(summary.delivered).toEqual({ splunk: 4, teams: 2, email: 2 });
    expect(summary.duplicates).toEqual({ teams: 1, email: 1 });
    expect(summary.deadLettered).toEqual({});
    expect(hec.events).toHaveLength(4);
    // One HEC request for the batch, not one per record; the event is the original record.
    expect(hec.eventRequests().length - requestsBefore).toBe(1);
    expect(hec.events[0]?.['event']).toEqual(highAlert('a-1'));
    expect(teams.messages).toHaveLength(2);
    expect(smtp.messages.filter((m) => /High alert a-[12]/.test(m.parsed.subject ?? ''))).toHaveLength(2);
    expect(await blobNames(quarantineContainer)).toEqual(['2026/11/27/0-102.json']);
  });

  it('notify once: the same batch run twice (a Function retry, on another instance) sends no second card or email', async () => {
    const batch = [JSON.stringify(highAlert('r-1')), JSON.stringify(highAlert('r-2'))];
    const mailsBefore = smtp.messages.length;
    await instance()(batch, context('1', 200, 2));
    const second = await instance()(batch, context('1', 200, 2));
    expect(second.duplicates).toEqual({ teams: 2, email: 2 });
    expect(teams.messages).toHaveLength(2);
    expect(smtp.messages.length - mailsBefore).toBe(2);
    // Splunk is the system of record: it gets the records again, harmlessly.
    expect(hec.events).toHaveLength(4);
  });

  it('notify once: two instances running the same records in parallel send one card and one email per record', async () => {
    const batch = Array.from({ length: 6 }, (_, i) => JSON.stringify(highAlert(`p-${i}`)));
    const mailsBefore = smtp.messages.length;
    const [one, two] = await Promise.all([instance()(batch, context('2', 300, 6)), instance()(batch, context('2', 300, 6))]);
    expect((one.delivered['teams'] ?? 0) + (two.delivered['teams'] ?? 0)).toBe(6);
    // The other instance saw each claim either settled (a duplicate) or still held (kept as a
    // `claim-pending` dead letter for re-drive, which finds it sent): never a second message.
    const notSent = (summary: typeof one): number => (summary.duplicates['teams'] ?? 0) + (summary.deadLettered['teams'] ?? 0);
    expect(notSent(one) + notSent(two)).toBe(6);
    expect(teams.messages).toHaveLength(6);
    expect(smtp.messages.length - mailsBefore).toBe(6);
    for (const name of await blobNames(deadLetterContainer)) {
      const letter = JSON.parse((await deadLetterContainer.containerClient.getBlobClient(name).downloadToBuffer()).toString()) as { error: { reason: string } };
      expect(letter.error.reason).toBe('claim-pending');
    }
  });

  it('a new status is news: the same alert Resolved notifies again', async () => {
    const handler = instance();
    await handler([JSON.stringify(highAlert('s-1', 'New'))], context('3', 1, 1));
    await handler([JSON.stringify(highAlert('s-1', 'Resolved'))], context('3', 2, 1));
    expect(teams.messages).toHaveLength(2);
  });

  it('retries what may succeed (HEC busy twice) and dead-letters what cannot (Teams 400, SMTP 550), losing nothing', async () => {
    hec.script({ fail: 'busy', times: 2 });
    // The answer quotes the request URL, signature included, as some gateways do: it must not reach the letter.
    teams.script(answer(400, `{"error":{"code":"InvalidRequestContent","message":"bad card posted to ${teams.url}"}}`));
    smtp.failNext('rcpt', SMTP_ANSWERS.recipientNotFound550);
    const logs: Logged[] = [];
    const summary = await instance()([JSON.stringify(highAlert('f-1'))], context('4', 7, 1, logs));
    // Each retry is in the invocation's log.
    const retries = logs.map((log) => JSON.parse(log.message) as Record<string, unknown>).filter((line) => line['event'] === 'delivery.retry');
    expect(retries).toEqual([
      expect.objectContaining({ destination: 'splunk', attempt: 1, records: 1, reason: 'hec-9' }),
      expect.objectContaining({ destination: 'splunk', attempt: 2, records: 1, reason: 'hec-9' }),
    ]);
    expect(summary.delivered).toEqual({ splunk: 1 });
    expect(summary.deadLettered).toEqual({ teams: 1, email: 1 });
    expect(hec.events).toHaveLength(1);
    const letters = await blobNames(deadLetterContainer);
    expect(letters.map((name) => name.split('/')[0])).toEqual(['email', 'teams']);
    const teamsLetter = JSON.parse(
      (await deadLetterContainer.containerClient.getBlobClient(letters.find((name) => name.startsWith('teams/')) ?? '').downloadToBuffer()).toString(),
    ) as { error: { reason: string; retryable: boolean }; attempts: number; payload: { content: string }[]; record: unknown; metadata: unknown };
    expect(teamsLetter.error).toMatchObject({ reason: 'http-400', retryable: false });
    expect(teamsLetter.attempts).toBe(1);
    expect(teamsLetter.record).toEqual(highAlert('f-1'));
    expect(teamsLetter.metadata).toMatchObject({ partitionId: '4', sequenceNumber: 7 });
    expect(teamsLetter.payload[0]?.content).toContain('AdaptiveCard');
    expect(JSON.stringify(teamsLetter)).not.toContain(teams.signature);
    // The failed notification's claim was released: once Teams is fixed, a re-drive or re-run notifies.
    const again = await instance()([JSON.stringify(highAlert('f-1'))], context('4', 7, 1));
    expect(again.delivered).toMatchObject({ teams: 1, email: 1 });
    expect(teams.messages).toHaveLength(1);
  });

  it('a misconfigured destination (HEC refuses the token) is dead-lettered and logged loudly, at error level', async () => {
    const handler = instance({ hecToken: 'wrong-token-value' });
    const logs: Logged[] = [];
    const summary = await handler([JSON.stringify(highAlert('m-1'))], context('7', 1, 1, logs));
    expect(summary.deadLettered).toEqual({ splunk: 1 });
    const loud = logs.filter((log) => log.level === 'error').map((log) => JSON.parse(log.message) as Record<string, unknown>);
    expect(loud).toEqual([expect.objectContaining({ event: 'destination.misconfigured', destination: 'splunk', reason: 'hec-4', attempts: 1 })]);
    expect(logs.map((log) => log.message).join('\n')).not.toContain('wrong-token-value');
  });

  it('when the dead-letter store is unreachable the handler throws, and a re-run neither repeats nor loses a notification', async () => {
    const broken = instance({
      deadLetters: createBlobDeadLetterStore({
        connectionString:
          'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;',
        retryOptions: { maxTries: 1, tryTimeoutInMs: 2000 },
      }),
    });
    // Teams fails for good (needs a dead letter, whose store is down); email is delivered.
    teams.script(answer(400, 'bad card'));
    await expect(broken([JSON.stringify(highAlert('d-1'))], context('5', 1, 1))).rejects.toThrow(/dead-letter store/);
    const mailsAfterFirst = smtp.messages.length;
    // The host re-runs the batch (storage is back): Teams is notified now, the email is not sent twice.
    const rerun = await instance()([JSON.stringify(highAlert('d-1'))], context('5', 1, 1));
    expect(rerun.delivered).toMatchObject({ teams: 1 });
    expect(rerun.duplicates).toMatchObject({ email: 1 });
    expect(smtp.messages.length).toBe(mailsAfterFirst);
    expect(teams.messages).toHaveLength(1);
  });

  it('confirms a notification in the ledger as soon as Teams accepts it, while HEC is still being retried', async () => {
    const { dedupeKey } = await import('../../src/routing/dedupe.js');
    const { ledgerBlobName } = await import('../../src/storage/ledgerEntry.js');
    const [inspected] = (await import('../../src/pipeline/run.js')).inspectEnvelope({ input: 'x', body: JSON.stringify(highAlert('early-1')) });
    if (!inspected?.ok) throw new Error('fixture rejected');
    hec.script({ fail: 'busy', retryAfter: '2' });
    const running = instance()([JSON.stringify(highAlert('early-1'))], context('8', 1, 1));
    const entry = ledgerContainer.containerClient.getBlobClient(ledgerBlobName(dedupeKey('teams', inspected.finding)));
    const deadline = Date.now() + 1500;
    let state: string | undefined;
    while (Date.now() < deadline && state !== 'sent') {
      state = (await entry.exists()) ? (await entry.getProperties()).metadata?.['state'] : undefined;
      if (state !== 'sent') await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Sent and confirmed while Splunk waits out its Retry-After: a crash now would not notify again.
    expect(state).toBe('sent');
    expect(teams.messages).toHaveLength(1);
    expect(hec.events).toHaveLength(0);
    const summary = await running;
    expect(summary.delivered).toMatchObject({ splunk: 1, teams: 1, email: 1 });
  });

  it('a confirmation lost to a store outage is completed, not re-sent, when the batch runs again', async () => {
    const { rememberUnconfirmed } = await import('../../src/delivery/unconfirmed.js');
    const blobLedger = createBlobLedger({ connectionString, containerName: ledgerContainer.containerName });
    let failConfirms = 2; // the store is down for the Teams and email confirmations of the first run
    const flaky: typeof blobLedger = Object.assign(Object.create(blobLedger) as typeof blobLedger, {
      claimOutcome: (key: string) => blobLedger.claimOutcome(key),
      claim: (key: string) => blobLedger.claim(key),
      release: (key: string) => blobLedger.release(key),
      confirm: async (key: string) => {
        if (failConfirms-- > 0) throw new Error('ledger store unreachable (test)');
        return blobLedger.confirm(key);
      },
    });
    const ledger = rememberUnconfirmed(flaky);
    const sinks = createSinks(RULES, { env: { HEC_URL: hec.url, HEC_TOKEN: TOKEN, TEAMS_URL: teams.url, SMTP_URL: `smtp://127.0.0.1:${smtp.port}` }, http });
    openSinks.push(sinks);
    const handler = createEventHubHandler({
      rules: RULES,
      ledger,
      quarantine: createBlobQuarantineStore({ connectionString, containerName: quarantineContainer.containerName }),
      delivery: createDelivery({ rules: RULES, sinks, ledger, deadLetters: createBlobDeadLetterStore({ connectionString, containerName: deadLetterContainer.containerName }), policy: FAST }),
    });
    const batch = [JSON.stringify(highAlert('lost-confirm-1'))];
    await expect(handler(batch, context('9', 1, 1))).rejects.toThrow(/ledger store unreachable/);
    expect(teams.messages).toHaveLength(1);
    const emailsBefore = smtp.messages.length;
    // The host runs the batch again: the notifications are known to be delivered; their entries are written.
    const summary = await handler(batch, context('9', 1, 1));
    expect(summary.duplicates).toEqual({ teams: 1, email: 1 });
    expect(summary.deadLettered).toEqual({});
    expect(teams.messages).toHaveLength(1);
    expect(smtp.messages.length).toBe(emailsBefore);
    expect(await blobNames(deadLetterContainer)).toEqual([]);
  });
});
