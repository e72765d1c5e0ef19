/**
 * What both fault-injection runs share: the destinations (HEC, Teams, SMTP stand-ins, HEC and SMTP behind
 * TCP fault proxies), the blob store behind a proxy (for the outage), the generated records, and the
 * accounting that proves nothing was lost: what the stand-ins received, counted per record.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { expect } from 'vitest';
import { devConnectionString } from '../support/azurite.js';
import { startHecReceiver, type HecReceiver } from '../support/hecReceiver.js';
import { SMTP_ANSWERS, startSmtpServer, type SmtpStandIn } from '../support/smtpServer.js';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.js';
import { CLOSE, HANG, startTeamsReceiver, type TeamsReceiver } from '../support/teamsReceiver.js';
import { FAULT_DESTINATIONS, FAULT_ROUTES_FILE, type GeneratedRecord } from '../support/generateRecords.js';
import { cli } from '../support/cli.js';
import { randomContainerName } from '../support/azurite.js';

export const HEC_TOKEN = 'f4a1e2b3-0c9d-4e8f-a7b6-c5d4e3f2a1b0';

export interface FaultRig {
  readonly hec: HecReceiver;
  readonly hecProxy: TcpProxy;
  readonly teams: TeamsReceiver;
  readonly smtp: SmtpStandIn;
  readonly smtpProxy: TcpProxy;
  /** In front of Azurite: the forwarder's stores and checkpoints go through it. */
  readonly storeProxy: TcpProxy;
  /** Storage connection string through the proxy. */
  readonly storage: string;
  readonly containers: { readonly QUARANTINE_CONTAINER: string; readonly DEADLETTER_CONTAINER: string; readonly LEDGER_CONTAINER: string; readonly CHECKPOINT_CONTAINER: string };
  /** The destinations' settings for test/faults/routes.yaml, and the stores'. */
  readonly env: Record<string, string>;
  /** Faults injected, by name, for the table. */
  readonly faults: Map<string, number>;
  fault(name: string, times?: number): void;
  close(): Promise<void>;
}

export async function startFaultRig(azuriteBlobEndpoint: string): Promise<FaultRig> {
  const azurite = new URL(azuriteBlobEndpoint);
  const [hec, teams, smtp] = await Promise.all([startHecReceiver({ token: HEC_TOKEN }), startTeamsReceiver(), startSmtpServer()]);
  const [hecProxy, smtpProxy, storeProxy] = await Promise.all([
    startTcpProxy({ target: { host: '127.0.0.1', port: Number(new URL(hec.url).port) } }),
    startTcpProxy({ target: { host: '127.0.0.1', port: smtp.port } }),
    startTcpProxy({ target: { host: '127.0.0.1', port: Number(azurite.port) } }),
  ]);
  const storage = devConnectionString(`http://127.0.0.1:${storeProxy.port}${azurite.pathname.replace(/\/$/, '')}`);
  const containers = {
    QUARANTINE_CONTAINER: randomContainerName('fq'),
    DEADLETTER_CONTAINER: randomContainerName('fd'),
    LEDGER_CONTAINER: randomContainerName('fl'),
    CHECKPOINT_CONTAINER: randomContainerName('fc'),
  };
  const faults = new Map<string, number>();
  return {
    hec,
    hecProxy,
    teams,
    smtp,
    smtpProxy,
    storeProxy,
    storage,
    containers,
    env: {
      HEC_URL: hecProxy.url('http'),
      HEC_TOKEN,
      TEAMS_URL: teams.url,
      SMTP_URL: `smtp://127.0.0.1:${smtpProxy.port}`,
      FORWARDER_STORAGE_CONNECTION: storage,
      ...containers,
    },
    faults,
    fault(name, times = 1) {
      faults.set(name, (faults.get(name) ?? 0) + times);
    },
    async close() {
      await Promise.all([hecProxy.close(), smtpProxy.close(), storeProxy.close()]);
      await Promise.all([hec.stop(), teams.close(), smtp.stop()]);
    },
  };
}

/**
 * Re-drives dead letters with the real command line until none is left (at most `rounds` runs). A letter
 * whose notification claim is held by a run that stopped (killed, or its claim write lost to the store
 * outage) waits for the claim's lease: then the next run waits `leaseMs` first.
 */
export async function redriveUntilEmpty(env: Record<string, string>, leaseMs: number, rounds = 4): Promise<{ runs: number; redriven: number; waitedForLease: number }> {
  let runs = 0;
  let redriven = 0;
  let waitedForLease = 0;
  for (let round = 0; round < rounds; round++) {
    const run = await cli(['redrive', '--rules', FAULT_ROUTES_FILE, '--force', '--report', 'json', '--summary', 'json'], { env, now: new Date() });
    runs += 1;
    for (const line of run.lines.filter((entry) => entry['event'] === 'run.summary')) {
      redriven += Object.values((line['redriven'] ?? {}) as Record<string, number>).reduce((total, count) => total + count, 0);
    }
    const status = await cli(['status', '--report', 'json'], { env, now: new Date() });
    const left = Number(((status.lines[0] ?? {})['deadLetters'] as { total?: number } | undefined)?.total ?? -1);
    if (left === 0) break;
    waitedForLease += 1;
    await sleep(leaseMs);
  }
  return { runs, redriven, waitedForLease };
}

/** Queues the protocol-level bursts: HEC 503 (code 9, Retry-After) and 500 (code 8), Teams 429, SMTP 421 / 451. */
export function scriptDestinationBursts(rig: FaultRig): void {
  rig.hec.script({ fail: 'busy', retryAfter: '1', times: 3 }, { fail: 'internal', times: 3 });
  rig.fault('HEC 503 code 9 (Retry-After: 1)', 3);
  rig.fault('HEC 500 code 8', 3);
  rig.teams.throttle(3, 1);
  rig.fault('Teams 429 (Retry-After: 1)', 3);
  rig.smtp.failNext('data', SMTP_ANSWERS.closing421, 2);
  rig.fault('SMTP 421', 2);
  rig.smtp.failNext('rcpt', SMTP_ANSWERS.busy451, 2);
  rig.fault('SMTP 451', 2);
}

/** Queues a Teams gateway that drops two connections after reading the request, then one that never answers. */
export function scriptTeamsDropsAndHang(rig: FaultRig): void {
  rig.teams.script(CLOSE, CLOSE, HANG);
  rig.fault('Teams connection dropped', 2);
  rig.fault('Teams hang (3 s timeout)');
}

/** Sets a proxy's mode for `ms`, then back to pass. */
export async function outage(proxy: TcpProxy, mode: 'reset' | 'hang' | 'refuse', ms: number): Promise<void> {
  proxy.setMode(mode);
  await sleep(ms);
  proxy.setMode('pass');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what()}`);
    await sleep(100);
  }
}

/** The email sink's `X-Defender-Id`: the id with characters outside a header token replaced, 500 at most. */
function emailIdToken(id: string): string {
  return id.replace(/[^A-Za-z0-9._:/@+=-]/g, '_').slice(0, 500);
}

/** Every "ID: <id>" text of a Teams message (the card shows the record's id). */
function teamsIds(message: unknown, found: string[] = []): string[] {
  if (typeof message === 'string') {
    // The card's text is Markdown: the id's `_` and other punctuation are backslash-escaped.
    const match = /^ID: (.+)$/.exec(message);
    if (match?.[1] !== undefined) found.push(match[1].replace(/\\(.)/g, '$1'));
  } else if (Array.isArray(message)) {
    for (const item of message) teamsIds(item, found);
  } else if (message !== null && typeof message === 'object') {
    for (const value of Object.values(message)) teamsIds(value, found);
  }
  return found;
}

/** What the destinations and the quarantine hold, against what the generator says they must. */
export interface Accounting {
  readonly bodies: number;
  readonly records: number;
  readonly valid: number;
  readonly invalid: number;
  readonly splunkDelivered: number;
  readonly splunkDuplicates: number;
  readonly splunkMissing: readonly string[];
  readonly teamsExpected: number;
  readonly teamsDelivered: number;
  readonly teamsDuplicates: readonly string[];
  readonly teamsMissing: readonly string[];
  readonly teamsUnexpected: readonly string[];
  readonly emailExpected: number;
  readonly emailDelivered: number;
  readonly emailDuplicates: readonly string[];
  /**
   * Emails received twice with ONE Message-ID: SMTP's own ambiguity (the connection broke after the server
   * took the message, before the client heard "250"), which the mailbox's duplicate detection drops.
   */
  readonly emailResent: number;
  readonly emailMissing: readonly string[];
  readonly emailUnexpected: readonly string[];
  /** Quarantine code -> records expected / found. */
  readonly quarantineExpected: Readonly<Record<string, number>>;
  readonly quarantineFound: Readonly<Record<string, number>>;
  readonly deadLettersLeft: number;
  readonly expiredLetters: number;
  /** Records missing anywhere they had to be. */
  readonly lost: number;
}

export async function account(rig: FaultRig, records: readonly GeneratedRecord[]): Promise<Accounting> {
  const valid = records.filter((record) => record.expected.valid);
  const key = (kind: string | undefined, id: string | undefined, status: string | undefined): string => `${kind ?? ''}|${id ?? ''}|${status ?? ''}`;

  const splunk = new Map<string, number>();
  for (const event of rig.hec.events) {
    const fields = (event['fields'] ?? {}) as Record<string, unknown>;
    const k = key(String(fields['kind'] ?? ''), String(fields['id'] ?? ''), String(fields['status'] ?? ''));
    splunk.set(k, (splunk.get(k) ?? 0) + 1);
  }
  const keyOf = (record: GeneratedRecord): string => key(record.expected.kind, record.expected.id, record.expected.status);
  const splunkMissing = valid.filter((record) => !splunk.has(keyOf(record))).map(keyOf);

  const tally = (ids: readonly string[]): Map<string, number> => {
    const counts = new Map<string, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    return counts;
  };
  const compare = (expectedIds: readonly string[], got: Map<string, number>) => {
    const expected = new Set(expectedIds);
    return {
      duplicates: [...got].filter(([, count]) => count > 1).map(([id]) => id),
      missing: [...expected].filter((id) => !got.has(id)),
      unexpected: [...got.keys()].filter((id) => !expected.has(id)),
      delivered: [...got.keys()].filter((id) => expected.has(id)).length,
    };
  };
  const teamsGot = tally(rig.teams.messages.flatMap((message) => teamsIds(message).slice(0, 1)));
  const teamsExpected = valid.filter((record) => record.expected.destinations.includes(FAULT_DESTINATIONS.teams)).map((record) => record.expected.id ?? '');
  const teams = compare(teamsExpected, teamsGot);
  // One email per (record, Message-ID): copies that share the Message-ID are one message to a mailbox.
  const emailCopies = new Map<string, number>();
  for (const message of rig.smtp.messages) {
    const copy = `${String(message.parsed.headers.get('x-defender-id') ?? '')}\n${message.parsed.messageId ?? ''}`;
    emailCopies.set(copy, (emailCopies.get(copy) ?? 0) + 1);
  }
  const emailGot = tally([...emailCopies.keys()].map((copy) => copy.split('\n')[0] ?? ''));
  const emailResent = [...emailCopies.values()].reduce((sum, copies) => sum + copies - 1, 0);
  const emailExpected = valid.filter((record) => record.expected.destinations.includes(FAULT_DESTINATIONS.email)).map((record) => emailIdToken(record.expected.id ?? ''));
  const email = compare(emailExpected, emailGot);

  const service = BlobServiceClient.fromConnectionString(rig.storage);
  const quarantineFound: Record<string, number> = {};
  for await (const blob of service.getContainerClient(rig.containers.QUARANTINE_CONTAINER).listBlobsFlat({ includeMetadata: true })) {
    const code = blob.metadata?.['code'] ?? 'unknown';
    quarantineFound[code] = (quarantineFound[code] ?? 0) + 1;
  }
  const quarantineExpected: Record<string, number> = {};
  for (const record of records) {
    const code = record.expected.quarantineCode;
    if (code !== undefined) quarantineExpected[code] = (quarantineExpected[code] ?? 0) + record.expected.records;
  }
  let deadLettersLeft = 0;
  let expiredLetters = 0;
  const letters = service.getContainerClient(rig.containers.DEADLETTER_CONTAINER);
  if (await letters.exists()) {
    for await (const blob of letters.listBlobsFlat()) {
      if (blob.name.startsWith('expired/')) expiredLetters += 1;
      else deadLettersLeft += 1;
    }
  }
  const quarantineLost = Object.entries(quarantineExpected).reduce((sum, [code, count]) => sum + Math.max(0, count - (quarantineFound[code] ?? 0)), 0);
  return {
    bodies: records.length,
    records: records.reduce((sum, record) => sum + record.expected.records, 0),
    valid: valid.length,
    invalid: records.length - valid.length,
    splunkDelivered: splunk.size,
    splunkDuplicates: rig.hec.events.length - splunk.size,
    splunkMissing,
    teamsExpected: teamsExpected.length,
    teamsDelivered: teams.delivered,
    teamsDuplicates: teams.duplicates,
    teamsMissing: teams.missing,
    teamsUnexpected: teams.unexpected,
    emailExpected: emailExpected.length,
    emailDelivered: email.delivered,
    emailDuplicates: email.duplicates,
    emailResent,
    emailMissing: email.missing,
    emailUnexpected: email.unexpected,
    quarantineExpected,
    quarantineFound,
    deadLettersLeft,
    expiredLetters,
    lost: splunkMissing.length + teams.missing.length + email.missing.length + quarantineLost,
  };
}

/**
 * What both runs must show: every valid record in Splunk, every notification exactly once (none missing, none
 * twice, none unexpected), every invalid record quarantined with its code, no dead letter left or expired.
 */
export function expectNothingLostOrRepeated(result: Accounting): void {
  const sample = { splunk: result.splunkMissing.slice(0, 5), teams: result.teamsMissing.slice(0, 3), email: result.emailMissing.slice(0, 3) };
  expect(result.lost, JSON.stringify(sample)).toBe(0);
  expect(result.splunkMissing).toEqual([]);
  expect(result.teamsDuplicates).toEqual([]);
  expect(result.emailDuplicates).toEqual([]);
  expect(result.teamsMissing).toEqual([]);
  expect(result.emailMissing).toEqual([]);
  expect(result.teamsUnexpected).toEqual([]);
  expect(result.emailUnexpected).toEqual([]);
  expect(result.quarantineFound).toEqual(result.quarantineExpected);
  expect(result.deadLettersLeft).toBe(0);
  expect(result.expiredLetters).toBe(0);
}

/** The table the suite prints (and the README quotes). */
export function renderTable(title: string, rig: FaultRig, result: Accounting, extra: Readonly<Record<string, string | number>> = {}): string {
  const rows: [string, string | number][] = [
    ['faults injected', [...rig.faults.values()].reduce((sum, count) => sum + count, 0)],
    ...[...rig.faults].map(([name, count]): [string, number] => [`  ${name}`, count]),
    ['records in (bodies)', `${result.records} (${result.bodies})`],
    ['  valid / invalid bodies', `${result.valid} / ${result.invalid}`],
    ['delivered to splunk (distinct)', `${result.splunkDelivered} of ${result.valid}`],
    ['delivered to oncall-teams', `${result.teamsDelivered} of ${result.teamsExpected}`],
    ['delivered to oncall-email', `${result.emailDelivered} of ${result.emailExpected}`],
    ['quarantined (records)', `${sum(result.quarantineFound)} of ${sum(result.quarantineExpected)}`],
    ['duplicates in splunk', result.splunkDuplicates],
    ['duplicate notifications', result.teamsDuplicates.length + result.emailDuplicates.length],
    ['  emails re-sent with the same Message-ID', result.emailResent],
    ['notifications nobody expected', result.teamsUnexpected.length + result.emailUnexpected.length],
    ['dead letters left / expired', `${result.deadLettersLeft} / ${result.expiredLetters}`],
    ...Object.entries(extra),
    ['lost', result.lost],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return [`${title}`, ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join('\n');
}

function sum(map: Readonly<Record<string, number>>): number {
  return Object.values(map).reduce((total, count) => total + count, 0);
}
