/**
 * `defender-forwarder redrive`, in-process, over the letters a real `forward` run dead-lettered: with the
 * state in a local folder and in blob storage (FORWARDER_STORAGE_CONNECTION at Azurite), delivering to HEC
 * and Teams stand-ins.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { randomContainerName } from '../support/azurite.js';
import { cli } from '../support/cli.js';
import { startHecReceiver, type HecReceiver } from '../support/hecReceiver.js';
import { answer, startTeamsReceiver, type TeamsReceiver } from '../support/teamsReceiver.js';

const connectionString = inject('azuriteConnectionString');
const root = path.resolve(import.meta.dirname, '../..');
const alert = path.join(root, 'samples/02-alert-k8s-node-crypto-miner.json');
const scratch = mkdtempSync(path.join(tmpdir(), 'df-redrive-cli-'));
const rules = path.join(scratch, 'routes.yaml');
const TOKEN = '12345678-aaaa-bbbb-cccc-1234567890ab';
/**
 * The re-drive's clock: letters written by `forward` here are dated by the real clock, so the re-drive runs
 * an hour later (on the minute, to compare the next attempt times as text).
 */
const LATER = new Date(Math.ceil(Date.now() / 60_000) * 60_000 + 3_600_000);
const at = (offsetMs: number): string => new Date(LATER.getTime() + offsetMs).toISOString();

let hec: HecReceiver;
let teams: TeamsReceiver;
let env: Record<string, string>;

beforeAll(async () => {
  [hec, teams] = await Promise.all([startHecReceiver({ token: TOKEN }), startTeamsReceiver()]);
  env = { HEC_URL: hec.url, HEC_TOKEN: TOKEN, TEAMS_URL: teams.url };
  writeFileSync(
    rules,
    ['destinations:', '  splunk: {type: splunk-hec, url: "${HEC_URL}", token: "${HEC_TOKEN}"}', '  teams: {type: teams, url: "${TEAMS_URL}"}', 'routes:', '  - name: all', '    match: {}', '    to: [splunk, teams]', ''].join('\n'),
  );
});
afterAll(async () => {
  await Promise.all([hec.stop(), teams.close()]);
  rmSync(scratch, { recursive: true, force: true });
});

/** `forward` the sample alert while Teams refuses it: one Teams dead letter in the state. */
async function deadLetterOneCard(stateEnv: Record<string, string>, state: string): Promise<void> {
  teams.script(answer(400, `{"error":{"code":"InvalidRequestContent","message":"posted to ${teams.url}"}}`));
  const run = await cli(['forward', '--input', alert, '--rules', rules, '--state-dir', state], { env: { ...env, ...stateEnv } });
  expect(run.code).toBe(1);
  expect(run.lines[0]).toMatchObject({ destinations: ['splunk'], deadLettered: ['teams'] });
}

function noSecretIn(...texts: string[]): void {
  for (const text of texts) {
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(teams.signature);
    expect(text).not.toContain(connectionString);
  }
}

describe('redrive with the state in a local folder', () => {
  const state = path.join(scratch, 'state');
  const letters = (): string[] =>
    readdirSync(path.join(state, 'deadletter'), { recursive: true })
      .map(String)
      .filter((name) => name.endsWith('.json'));

  it('--dry-run lists the due letter and changes nothing; the real run delivers it once and deletes it', async () => {
    await deadLetterOneCard({}, state);
    const before = readdirSync(path.join(state, 'deadletter'), { recursive: true }).map(String).sort();
    const cards = teams.messages.length;

    const dry = await cli(['redrive', '--rules', rules, '--state-dir', state, '--dry-run', '--report', 'json'], { env: {} });
    expect(dry.code).toBe(0);
    expect(dry.lines).toEqual([expect.objectContaining({ destination: 'teams', outcome: 'due', attempts: 0 })]);
    expect(dry.stderr).toMatch(/redrive \(dry run: nothing was sent or changed\): 1 letter in folder ".*deadletter"/);
    expect(readdirSync(path.join(state, 'deadletter'), { recursive: true }).map(String).sort()).toEqual(before);
    expect(teams.messages.length).toBe(cards);

    const run = await cli(['redrive', '--rules', rules, '--state-dir', state, '--report', 'json', '--summary', 'json'], { env });
    expect(run.code).toBe(0);
    expect(run.lines[0]).toMatchObject({ destination: 'teams', outcome: 'redriven', attempts: 1, input: alert });
    expect(run.lines[1]).toMatchObject({ event: 'run.summary', host: 'redrive', redriven: { teams: 1 }, failed: {}, letters: 1, received: 0 });
    expect(run.stderr).toMatch(/redriven 1 · duplicate 0 · held 0 · failed 0/);
    expect(teams.messages.length).toBe(cards + 1);
    expect(letters()).toEqual([]);

    // The ledger was confirmed: the same alert forwarded again is a duplicate for Teams.
    const again = await cli(['forward', '--input', alert, '--rules', rules, '--state-dir', state], { env });
    expect(again.lines[0]).toMatchObject({ destinations: ['splunk'], duplicates: ['teams'] });
    expect(teams.messages.length).toBe(cards + 1);
    noSecretIn(dry.stdout, dry.stderr, run.stdout, run.stderr);
  });

  it('a destination still failing: exit 1 and the next attempt; not due until then (or --force); expired past REDRIVE_MAX_AGE_HOURS', async () => {
    const failingState = path.join(scratch, 'state-failing');
    await deadLetterOneCard({}, failingState);
    const refuse = answer(400, `{"error":{"code":"InvalidRequestContent","message":"posted to ${teams.url}"}}`);

    teams.script(refuse);
    const failed = await cli(['redrive', '--rules', rules, '--state-dir', failingState, '--report', 'table'], { env, now: LATER });
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/^OUTCOME\s+DESTINATION\s+ATTEMPTS\s+LETTER\s+WHY \/ NEXT ATTEMPT\n/);
    expect(failed.stdout).toMatch(new RegExp(`failed\\s+teams\\s+1\\s+.*\\.json http-400, next ${at(60_000)}`));
    expect(failed.stderr).toMatch(new RegExp(`still failing\n\\s+teams/.*\\.json: http-400 \\(re-drive attempt 1; next attempt ${at(60_000)}\\)`));

    const tooSoon = await cli(['redrive', '--rules', rules, '--state-dir', failingState, '--report', 'json'], { env, now: new Date(LATER.getTime() + 30_000) });
    expect(tooSoon.code).toBe(0);
    expect(tooSoon.lines).toEqual([expect.objectContaining({ outcome: 'notDue', nextAttemptAt: at(60_000) })]);

    teams.script(refuse);
    const forced = await cli(['redrive', '--rules', rules, '--state-dir', failingState, '--report', 'json', '--force'], { env, now: new Date(LATER.getTime() + 30_000) });
    expect(forced.code).toBe(1);
    expect(forced.lines).toEqual([expect.objectContaining({ outcome: 'failed', attempts: 2 })]);

    teams.script(refuse);
    // The Function's setting is the command's default too (--max-age overrides it).
    const expired = await cli(['redrive', '--rules', rules, '--state-dir', failingState, '--report', 'json', '--summary', 'json'], {
      env: { ...env, REDRIVE_MAX_AGE_HOURS: '12' },
      now: new Date(LATER.getTime() + 13 * 3_600_000),
    });
    expect(expired.code).toBe(1);
    expect(expired.lines[0]).toMatchObject({ outcome: 'expired', name: expect.stringMatching(/^expired\/teams\//) });
    expect(expired.lines[1]).toMatchObject({ event: 'run.summary', expired: { teams: 1 } });
    expect(expired.stderr).toMatch(/expired: too old, kept under expired\//);
    const kept = readdirSync(path.join(failingState, 'deadletter', 'expired'), { recursive: true }).map(String);
    expect(kept.filter((name) => name.endsWith('.json'))).toHaveLength(1);
    noSecretIn(failed.stdout, failed.stderr, forced.stdout, expired.stdout, expired.stderr);
  });

  it('usage and configuration errors exit 2, naming the problem and no secret', async () => {
    const badAge = await cli(['redrive', '--rules', rules, '--state-dir', state, '--max-age', '7x'], { env });
    expect(badAge.code).toBe(2);
    expect(badAge.stderr).toMatch(/--max-age <duration>' argument '7x' is invalid\. expected a duration such as 7d, 12h, 90m or 1d12h/);
    const badSetting = await cli(['redrive', '--rules', rules, '--state-dir', state], { env: { ...env, REDRIVE_MAX_AGE_HOURS: 'a week' } });
    expect(badSetting.code).toBe(2);
    expect(badSetting.stderr).toMatch(/REDRIVE_MAX_AGE_HOURS must be a number of hours from 1 to 8760/);
    const overridden = await cli(['redrive', '--rules', rules, '--state-dir', state, '--max-age', '7d', '--dry-run'], { env: { ...env, REDRIVE_MAX_AGE_HOURS: 'a week' } });
    expect(overridden.code).toBe(0);

    const noToken = await cli(['redrive', '--rules', rules, '--state-dir', state], { env: { ...env, HEC_TOKEN: '' } });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/destinations\.splunk\.token: environment variable HEC_TOKEN is not set/);
    noSecretIn(noToken.stderr);

    const noRules = await cli(['redrive', '--state-dir', state], { env });
    expect(noRules.code).toBe(2);
    expect(noRules.stderr).toContain('--rules <file> is required');
  });
});

describe('redrive with the state in blob storage', () => {
  const containers = { DEADLETTER_CONTAINER: randomContainerName('cli-dl'), LEDGER_CONTAINER: randomContainerName('cli-ledger'), QUARANTINE_CONTAINER: randomContainerName('cli-q') };
  const stateEnv = { FORWARDER_STORAGE_CONNECTION: connectionString, ...containers };
  const service = BlobServiceClient.fromConnectionString(connectionString);
  const blobNames = async (): Promise<string[]> => {
    const names: string[] = [];
    for await (const blob of service.getContainerClient(containers.DEADLETTER_CONTAINER).listBlobsFlat()) names.push(blob.name);
    return names;
  };
  afterAll(async () => {
    await Promise.all(Object.values(containers).map((name) => service.getContainerClient(name).deleteIfExists()));
  });

  it('re-drives the container the Function writes, only for the destinations asked for', async () => {
    await deadLetterOneCard(stateEnv, path.join(scratch, 'unused-state'));
    expect(await blobNames()).toEqual([expect.stringMatching(/^teams\/\d{4}\/\d{2}\/\d{2}\/.*\.json$/)]);
    const cards = teams.messages.length;

    const other = await cli(['redrive', '--rules', rules, '--destination', 'splunk', '--report', 'json'], { env: { ...env, ...stateEnv } });
    expect(other.code).toBe(0);
    expect(other.lines).toEqual([]);
    expect(other.stderr).toMatch(/0 letters in container "cli-dl-[0-9a-f]+"/);

    const run = await cli(['redrive', '--rules', rules, '--destination', 'teams', '--report', 'json', '--summary', 'json'], { env: { ...env, ...stateEnv } });
    expect(run.code).toBe(0);
    expect(run.lines[0]).toMatchObject({ outcome: 'redriven', destination: 'teams' });
    expect(run.lines[1]).toMatchObject({ event: 'run.summary', host: 'redrive', source: `container "${containers.DEADLETTER_CONTAINER}"`, redriven: { teams: 1 } });
    expect(teams.messages.length).toBe(cards + 1);
    expect(await blobNames()).toEqual([]);
    noSecretIn(run.stdout, run.stderr);
  });
});
