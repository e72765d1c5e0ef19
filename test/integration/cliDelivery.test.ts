/**
 * `forward` for real: the CLI delivering to HEC, Teams and SMTP stand-ins, with its ledger, dead letters and
 * quarantine in a local state folder; and `--preview` writing exactly what would be sent.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { startHecReceiver, type HecReceiver } from '../support/hecReceiver.js';
import { startSmtpServer, type SmtpStandIn } from '../support/smtpServer.js';
import { answer, startTeamsReceiver, type TeamsReceiver } from '../support/teamsReceiver.js';

const root = path.resolve(import.meta.dirname, '../..');
const samples = path.join(root, 'samples');
const exampleRules = path.join(root, 'config/routes.example.yaml');
const scratch = mkdtempSync(path.join(tmpdir(), 'df-deliver-'));
const TOKEN = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';

let hec: HecReceiver;
let teams: TeamsReceiver;
let platform: TeamsReceiver;
let smtp: SmtpStandIn;
let env: Record<string, string>;

beforeAll(async () => {
  [hec, teams, platform, smtp] = await Promise.all([startHecReceiver({ token: TOKEN }), startTeamsReceiver(), startTeamsReceiver(), startSmtpServer()]);
  env = {
    HEC_URL: hec.url,
    HEC_TOKEN: TOKEN,
    ONCALL_TEAMS_URL: teams.url,
    PLATFORM_TEAMS_URL: platform.url,
    SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
  };
});
afterAll(async () => {
  await Promise.all([hec.stop(), teams.close(), platform.close(), smtp.stop()]);
  rmSync(scratch, { recursive: true, force: true });
});

function files(folder: string): string[] {
  return readdirSync(folder, { recursive: true })
    .map(String)
    .filter((name) => /\.(json|eml)$/.test(name))
    .sort();
}

describe('forward delivers for real', () => {
  it('delivers the samples to every destination, once; a second run notifies no one again', async () => {
    const state = path.join(scratch, 'state');
    const first = await cli(['forward', '--input', samples, '--rules', exampleRules, '--state-dir', state], { env });
    expect(first.code).toBe(1); // the samples hold two records that are quarantined on purpose
    expect(first.stderr).toMatch(/splunk\s+9\b/);
    expect(hec.events).toHaveLength(9);
    expect(teams.messages).toHaveLength(1);
    expect(platform.messages).toHaveLength(1);
    // High alert -> on-call mailbox; Critical CVE -> vulnerability management.
    expect(smtp.messages.map((m) => m.envelope.rcptTo.join(',')).sort()).toEqual(['soc-oncall@contoso.com', 'vuln-management@contoso.com']);
    const crypto = first.lines.find((line) => String(line['input']).endsWith('02-alert-k8s-node-crypto-miner.json'));
    expect(crypto).toMatchObject({ destinations: ['splunk', 'oncall-teams', 'oncall-email', 'platform-teams'], deadLettered: [] });
    // Quarantine in the state folder.
    expect(files(path.join(state, 'quarantine'))).toHaveLength(2);

    const second = await cli(['forward', '--input', samples, '--rules', exampleRules, '--state-dir', state], { env });
    expect(second.code).toBe(1);
    expect(hec.events).toHaveLength(18);
    expect(teams.messages).toHaveLength(1);
    expect(platform.messages).toHaveLength(1);
    expect(smtp.messages).toHaveLength(2);
    const again = second.lines.find((line) => String(line['input']).endsWith('02-alert-k8s-node-crypto-miner.json'));
    expect(again).toMatchObject({ destinations: ['splunk'], duplicates: ['oncall-teams', 'oncall-email', 'platform-teams'] });
  });

  it('a destination that refuses is dead-lettered in the state folder, reported, and the exit code says so', async () => {
    const state = path.join(scratch, 'state-dead');
    const rules = path.join(scratch, 'teams-only.yaml');
    writeFileSync(rules, ['destinations:', '  t: {type: teams, url: "${ONCALL_TEAMS_URL}"}', 'routes:', '  - name: all-alerts', '    match: {kind: alert}', '    to: [t]', ''].join('\n'));
    const quoting = answer(400, `bad card posted to ${teams.url}`);
    teams.script(quoting, quoting, quoting, quoting, quoting);
    const run = await cli(['forward', '--input', path.join(samples, '02-alert-k8s-node-crypto-miner.json'), '--rules', rules, '--state-dir', state], { env });
    expect(run.code).toBe(1);
    expect(run.lines[0]).toMatchObject({ outcome: 'routed', destinations: [], deadLettered: ['t'] });
    expect(run.stderr).toMatch(/dead-lettered .*02-alert-k8s-node-crypto-miner\.json for t after 1 attempts: .*HTTP 400/);
    const letters = files(path.join(state, 'deadletter'));
    expect(letters).toHaveLength(1);
    const letter = JSON.parse(readFileSync(path.join(state, 'deadletter', letters[0] ?? ''), 'utf8')) as Record<string, unknown>;
    expect(letter).toMatchObject({ destination: 't', destinationType: 'teams', attempts: 1, error: { reason: 'http-400', retryable: false } });
    expect(JSON.stringify(letter)).not.toContain(teams.signature);
    expect(run.stderr).not.toContain(teams.signature);
    expect(String((letter['error'] as { message: string }).message)).toContain('<redacted>');
  });
});

describe('forward batches like the hub does', () => {
  it('200 records, one per line, reach Splunk in one request, not 200', async () => {
    const record = JSON.parse(readFileSync(path.join(samples, '02-alert-k8s-node-crypto-miner.json'), 'utf8')) as Record<string, unknown>;
    const lines = Array.from({ length: 200 }, (_, i) => JSON.stringify({ ...record, SystemAlertId: `batch-${i}` })).join('\n');
    const input = path.join(scratch, 'many.jsonl');
    writeFileSync(input, `${lines}\n`);
    const rules = path.join(scratch, 'splunk-only.yaml');
    writeFileSync(rules, ['destinations:', '  s: {type: splunk-hec, url: "${HEC_URL}", token: "${HEC_TOKEN}"}', 'routes:', '  - name: all', '    match: {}', '    to: [s]', ''].join('\n'));
    const before = hec.eventRequests().length;
    const run = await cli(['forward', '--input', input, '--rules', rules, '--state-dir', path.join(scratch, 'state-batch')], { env });
    expect(run.code).toBe(0);
    expect(run.lines).toHaveLength(200);
    expect(hec.eventRequests().length - before).toBe(1);
  });
});

describe('forward --preview', () => {
  it('writes exactly what would be sent, needs no secrets in a dry run, and holds none', async () => {
    const folder = path.join(scratch, 'preview');
    const sentBefore = { hec: hec.eventRequests().length, teams: teams.requests.length, mail: smtp.messages.length };
    const run = await cli(['forward', '--input', samples, '--rules', exampleRules, '--dry-run', '--preview', folder], { env: {} });
    expect(run.code).toBe(1);
    const written = files(folder);
    expect(written.filter((name) => name.startsWith('splunk/'))).toEqual(['splunk/batch-0001.json']);
    expect(written.filter((name) => name.startsWith('oncall-teams/'))).toHaveLength(1);
    expect(written.filter((name) => name.startsWith('platform-teams/'))).toHaveLength(1);
    expect(written.filter((name) => name.endsWith('.eml'))).toHaveLength(2);
    const batch = readFileSync(path.join(folder, 'splunk/batch-0001.json'), 'utf8').trim().split('\n');
    expect(batch).toHaveLength(9);
    expect(JSON.parse(batch[0] ?? '{}')).toMatchObject({ sourcetype: 'mscs:defender', index: 'defender' });
    const card = JSON.parse(readFileSync(path.join(folder, written.find((name) => name.startsWith('oncall-teams/')) ?? ''), 'utf8')) as {
      type: string;
      attachments: { content: { type: string; version: string } }[];
    };
    expect(card.type).toBe('message');
    expect(card.attachments[0]?.content).toMatchObject({ type: 'AdaptiveCard', version: '1.4' });
    expect(run.stderr).toMatch(/preview: \d+ files written under/);
    // Nothing was sent.
    expect({ hec: hec.eventRequests().length, teams: teams.requests.length, mail: smtp.messages.length }).toEqual(sentBefore);
  });

  it('with secrets set, none of them reaches a preview file', async () => {
    const folder = path.join(scratch, 'preview-secrets');
    await cli(['forward', '--input', samples, '--rules', exampleRules, '--dry-run', '--preview', folder], { env });
    for (const name of files(folder)) {
      const text = readFileSync(path.join(folder, name), 'utf8');
      for (const secret of [TOKEN, teams.signature, platform.signature]) expect(text).not.toContain(secret);
    }
  });
});
