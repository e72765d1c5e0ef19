/**
 * The `defender-forwarder` command line, driven in-process with real files, folders and stdin.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';

const root = path.resolve(import.meta.dirname, '../..');
const samples = path.join(root, 'samples');
const exampleRules = path.join(root, 'config/routes.example.yaml');
const fixtures = path.join(root, 'test/fixtures/defender');
const scratch = mkdtempSync(path.join(tmpdir(), 'df-cli-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const full = path.join(scratch, name);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, text);
  return full;
}

const REPORT_KEYS = ['input', 'kind', 'id', 'severity', 'status', 'outcome', 'destinations', 'duplicates', 'muted', 'deadLettered', 'reason'];
const EXAMPLE_ENV = {
  HEC_URL: 'https://splunk.example:8088',
  HEC_TOKEN: 'hec-token-value',
  ONCALL_TEAMS_URL: 'https://teams.example/x?sig=abc',
  PLATFORM_TEAMS_URL: 'https://teams.example/y?sig=def',
  SMTP_URL: 'smtp://user:pass@smtp.example:587',
};

describe('forward --dry-run over the bundled samples', () => {
  it('reports one JSON object per record, in file-name order, with the design keys, and exits 1 for the quarantined ones', async () => {
    const run = await cli(['forward', '--input', samples, '--rules', exampleRules, '--dry-run']);
    expect(run.code).toBe(1);
    expect(run.lines).toHaveLength(11);
    for (const line of run.lines) expect(Object.keys(line)).toEqual(REPORT_KEYS);
    const byInput = Object.fromEntries(run.lines.map((line) => [path.relative(root, String(line['input'])), line]));
    expect(Object.keys(byInput)).toEqual([
      'samples/01-alert-k8s-admission-webhook.json',
      'samples/02-alert-k8s-node-crypto-miner.json',
      'samples/03-alert-repeat-and-role-binding.jsonl:1',
      'samples/03-alert-repeat-and-role-binding.jsonl:2',
      'samples/04-finding-container-image-critical-cve.json',
      'samples/05-recommendation-not-applicable.json',
      'samples/06-recommendation-legacy-envelope.json',
      'samples/07-regulatory-compliance-failed.json',
      'samples/08-secure-score-control-snapshot.json',
      'samples/09-not-defender-activity-log-records.json#0',
      'samples/10-invalid-json-legacy-alert.txt',
    ]);
    expect(byInput['samples/01-alert-k8s-admission-webhook.json']).toMatchObject({ severity: 'Informational', outcome: 'routed', destinations: ['splunk'] });
    expect(byInput['samples/02-alert-k8s-node-crypto-miner.json']).toMatchObject({
      kind: 'alert',
      id: '3f1c9a2e-7b64-4d0b-9a55-2c8e1f6d4b70',
      severity: 'High',
      destinations: ['splunk', 'oncall-teams', 'oncall-email', 'platform-teams'],
      duplicates: [],
    });
    // The same alert again: Splunk gets it again, people are not told twice.
    expect(byInput['samples/03-alert-repeat-and-role-binding.jsonl:1']).toMatchObject({
      outcome: 'routed',
      destinations: ['splunk'],
      duplicates: ['oncall-teams', 'oncall-email', 'platform-teams'],
    });
    expect(byInput['samples/03-alert-repeat-and-role-binding.jsonl:2']).toMatchObject({ severity: 'Medium', destinations: ['splunk'], muted: ['platform-teams'] });
    expect(byInput['samples/04-finding-container-image-critical-cve.json']).toMatchObject({ kind: 'finding', severity: 'Critical', destinations: ['splunk', 'vuln-email'] });
    expect(byInput['samples/09-not-defender-activity-log-records.json#0']).toMatchObject({ outcome: 'quarantined', kind: null, id: null });
    expect(byInput['samples/10-invalid-json-legacy-alert.txt']?.['reason']).toMatch(/^body is not JSON: .* at line 33 column 4$/);

    expect(run.stderr).toContain('defender-forwarder forward (dry run: nothing was sent): 11 records from 11 bodies');
    expect(run.stderr).toContain('routed 9 · unrouted 0 · muted 0 · quarantined 2');
    expect(run.stderr).toMatch(/platform-teams\s+1 {2}\(1 duplicate, 1 muted\)/);
    expect(run.stderr).toContain('by "aks-migration-role-bindings" until 2027-06-30T00:00:00.000Z');
  });

  it('needs no secrets in dry-run mode, and prints none it is given', async () => {
    const run = await cli(['forward', '--input', samples, '--rules', exampleRules, '--dry-run'], { env: EXAMPLE_ENV });
    for (const secret of Object.values(EXAMPLE_ENV)) {
      expect(run.stdout).not.toContain(secret);
      expect(run.stderr).not.toContain(secret);
    }
  });

  it('--summary json ends the report with the run.summary accounting line, whose counts add up', async () => {
    const run = await cli(['forward', '--input', samples, '--rules', exampleRules, '--dry-run', '--summary', 'json']);
    const summary = run.lines.at(-1);
    expect(summary).toMatchObject({ event: 'run.summary', host: 'cli', dryRun: true, received: 11, quarantined: 2, quarantinedBy: { 'not-json': 1 } });
    const records = run.lines.slice(0, -1);
    expect(records).toHaveLength(11);
    const count = (outcome: string): number => records.filter((line) => line['outcome'] === outcome).length;
    expect(summary).toMatchObject({ routed: count('routed'), unrouted: count('unrouted'), muted: count('muted'), quarantined: count('quarantined') });
    expect(Number(summary?.['routed']) + Number(summary?.['unrouted']) + Number(summary?.['muted']) + Number(summary?.['quarantined'])).toBe(11);
  });

  it('--report table prints a row per record with where it goes or why not', async () => {
    const run = await cli(['forward', '--input', samples, '--rules', exampleRules, '--dry-run', '--report', 'table']);
    const rows = run.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^INPUT\s+KIND\s+SEVERITY\s+STATUS\s+OUTCOME\s+TO \/ WHY$/);
    expect(rows).toHaveLength(12);
    expect(rows.find((row) => row.includes('jsonl:1'))).toMatch(/routed\s+splunk; duplicate: oncall-teams, oncall-email, platform-teams$/);
    expect(rows.find((row) => row.includes('jsonl:2'))).toMatch(/muted: platform-teams by "aks-migration-role-bindings"$/);
    expect(rows.find((row) => row.includes('10-invalid'))).toMatch(/quarantined body is not JSON/);
  });

  it('without --dry-run, unset destination secrets are a configuration error naming each one (exit 2), before anything is read', async () => {
    const run = await cli(['forward', '--input', samples, '--rules', exampleRules, '--state-dir', path.join(scratch, 'unused-state')], {
      env: { HEC_URL: 'https://splunk.example:8088' },
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('destinations.splunk.token: environment variable HEC_TOKEN is not set');
    expect(run.stderr).toContain('destinations.oncall-teams.url: environment variable ONCALL_TEAMS_URL is not set');
    expect(run.stdout).toBe('');
  });

  it('a destination URL that is plain http: to a non-loopback host is refused, without printing the URL', async () => {
    const run = await cli(['forward', '--input', samples, '--rules', exampleRules, '--state-dir', path.join(scratch, 'unused-state')], {
      env: { ...EXAMPLE_ENV, ONCALL_TEAMS_URL: 'http://teams.example/x?sig=plainsecret' },
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/destinations\.oncall-teams\.url \(\$\{ONCALL_TEAMS_URL\}\): must use https:/);
    expect(run.stderr).not.toContain('plainsecret');
  });
});

describe('forward inputs', () => {
  const alert = readFileSync(path.join(fixtures, 'eh_alert_K8S_AdmissionController_informational__sumologic.json'), 'utf8');
  const oneLine = JSON.stringify(JSON.parse(alert));

  it('reads stdin with -, one body per line, and numbers the lines (blank lines skipped)', async () => {
    const run = await cli(['forward', '--input', '-', '--rules', exampleRules, '--dry-run'], { stdin: `${oneLine}\n\n{bad\r\n${oneLine}\r\n` });
    expect(run.lines.map((line) => [line['input'], line['outcome']])).toEqual([
      ['stdin:1', 'routed'],
      ['stdin:3', 'quarantined'],
      ['stdin:4', 'routed'],
    ]);
    expect(run.code).toBe(1);
  });

  it('a pretty-printed file is one body; a one-line file too; an empty file is reported, not skipped', async () => {
    const folder = path.join(scratch, 'mixed');
    file('mixed/a.json', alert);
    file('mixed/b.json', oneLine);
    file('mixed/c.json', '');
    file('mixed/README.md', '# not a record');
    file('mixed/.hidden.json', '{}');
    file('mixed/d.csv', 'a,b');
    const run = await cli(['forward', '--input', folder, '--rules', exampleRules, '--dry-run']);
    expect(run.lines.map((line) => [path.basename(String(line['input'])), line['outcome'], line['reason']])).toEqual([
      ['a.json', 'routed', null],
      ['b.json', 'routed', null],
      ['c.json', 'quarantined', 'body is empty'],
    ]);
    expect(run.stderr).toMatch(/skipped .*d\.csv: not a \.json\/\.jsonl\/\.ndjson\/\.txt file/);
    expect(run.stderr).not.toContain('README.md');
  });

  it('JSON Lines whose first line is broken are still read line by line; a broken pretty-printed file is one body', async () => {
    const lines = file('badfirst.json', `{oops\n${oneLine}\n${oneLine.replace('57963b4b', '11111111')}\n`);
    const run = await cli(['forward', '--input', lines, '--rules', exampleRules, '--dry-run']);
    expect(run.lines.map((line) => [path.basename(String(line['input'])), line['outcome']])).toEqual([
      ['badfirst.json:1', 'quarantined'],
      ['badfirst.json:2', 'routed'],
      ['badfirst.json:3', 'routed'],
    ]);
    const pretty = file('broken-pretty.json', '[\n  {},\n  {}\n  oops\n]\n');
    const one = await cli(['forward', '--input', pretty, '--rules', exampleRules, '--dry-run']);
    expect(one.lines).toHaveLength(1);
    expect(one.lines[0]?.['reason']).toMatch(/^body is not JSON/);
  });

  it('record text cannot drive the terminal: control characters are escaped in text output', async () => {
    const record = JSON.parse(alert) as Record<string, unknown>;
    record['AlertDisplayName'] = 'evil \u001b]0;PWNED\u0007\u001b[2J title';
    record['Status'] = 'New\u001b[31m';
    const input = file('escape.json', JSON.stringify(record));
    for (const argv of [
      ['forward', '--input', input, '--rules', exampleRules, '--dry-run', '--report', 'table'],
      ['routes', 'test', '--input', input, '--rules', exampleRules],
    ]) {
      const run = await cli(argv);
      expect(run.stdout + run.stderr).not.toContain('\u001b');
    }
    const explained = await cli(['routes', 'test', '--input', input, '--rules', exampleRules]);
    expect(explained.stdout).toContain('"evil \\u001b]0;PWNED\\u0007\\u001b[2J title"');
  });

  it('a missing input or rules file is a usage error (exit 2) that names it', async () => {
    const missingInput = await cli(['forward', '--input', path.join(scratch, 'nope.json'), '--rules', exampleRules, '--dry-run']);
    expect(missingInput.code).toBe(2);
    expect(missingInput.stderr).toMatch(/--input .*nope\.json: no such file or folder/);
    const missingRules = await cli(['forward', '--input', samples, '--rules', path.join(scratch, 'none.yaml'), '--dry-run']);
    expect(missingRules.code).toBe(2);
    expect(missingRules.stderr).toMatch(/--rules .*none\.yaml: no such file/);
    const noRules = await cli(['forward', '--input', samples, '--dry-run']);
    expect(noRules.code).toBe(2);
    expect(noRules.stderr).toContain('--rules <file> is required (or set ROUTES_FILE)');
  });

  it('ROUTES_FILE stands in for --rules', async () => {
    const run = await cli(['forward', '--input', path.join(samples, '01-alert-k8s-admission-webhook.json'), '--dry-run'], { env: { ROUTES_FILE: exampleRules } });
    expect(run.code).toBe(0);
    expect(run.lines).toHaveLength(1);
  });

  it('a broken rules file is a configuration error naming the key and the line', async () => {
    const rules = file(
      'broken.yaml',
      ['destinations:', '  splunk: {type: splunk-hec, url: "${HEC_URL}", token: "${HEC_TOKEN}"}', 'routes:', '  - name: a', '    match: {}', '    to: [teams-soc]', ''].join('\n'),
    );
    const run = await cli(['forward', '--input', samples, '--rules', rules, '--dry-run']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('broken.yaml:6: routes[0].to');
    expect(run.stderr).toContain('unknown destination "teams-soc"');
  });
});

describe('forward --quarantine-dir', () => {
  it('a quarantine folder that cannot be written is a one-line error with exit 2', async () => {
    const blocker = file('not-a-folder', 'x');
    const run = await cli(['forward', '--input', samples, '--rules', exampleRules, '--dry-run', '--quarantine-dir', path.join(blocker, 'q')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^defender-forwarder: quarantine store .*not-a-folder/m);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('keeps each quarantined record as a JSON document with its raw body and reason', async () => {
    const folder = path.join(scratch, 'quarantine');
    const run = await cli(['forward', '--input', samples, '--rules', exampleRules, '--dry-run', '--quarantine-dir', folder]);
    expect(run.code).toBe(1);
    const documents = readdirSync(folder, { recursive: true })
      .map(String)
      .filter((name) => name.endsWith('.json'))
      .map((name) => JSON.parse(readFileSync(path.join(folder, name), 'utf8')) as { code: string; raw: unknown; input: string });
    expect(documents.map((document) => document.code).sort()).toEqual(['not-json', 'unknown-kind']);
    const notJson = documents.find((document) => document.code === 'not-json');
    expect(notJson?.raw).toBe(readFileSync(path.join(samples, '10-invalid-json-legacy-alert.txt'), 'utf8').replace(/\n$/, ''));
  });
});

describe('routes test', () => {
  it('explains each record: matched, failed with the first failing condition, skipped, mutes, dedupe', async () => {
    const run = await cli(['routes', 'test', '--rules', exampleRules, '--input', samples]);
    expect(run.code).toBe(1);
    const blocks = run.stdout.trim().split('\n\n');
    expect(blocks).toHaveLength(11);
    const informational = blocks[0] ?? '';
    expect(informational).toContain('[match] everything-to-splunk -> splunk  (continue)');
    expect(informational).toContain('[match] informational-alerts-splunk-only -> splunk');
    expect(informational).toContain('[skip]  high-alerts-to-oncall: not reached');
    expect(informational).toContain('=> delivers to splunk');
    const repeat = blocks[2] ?? '';
    expect(repeat).toContain('dedupe: oncall-teams was already notified of (alert, 3f1c9a2e-7b64-4d0b-9a55-2c8e1f6d4b70, New) in this run');
    const roleBinding = blocks[3] ?? '';
    expect(roleBinding).toMatch(/\[no\] {4}high-alerts-to-oncall: severity Medium is below minSeverity High/);
    expect(roleBinding).toContain('mute "aks-migration-role-bindings" silences platform-teams until 2027-06-30T00:00:00.000Z');
    const compliance = blocks[7] ?? '';
    expect(compliance).toMatch(/\[no\] {4}critical-image-vulnerabilities: kind regulatoryCompliance/);
    expect(blocks[10]).toMatch(/quarantined: body is not JSON/);
  });

  it('says when a mute has expired', async () => {
    const run = await cli(['routes', 'test', '--rules', exampleRules, '--input', path.join(samples, '03-alert-repeat-and-role-binding.jsonl')], {
      now: new Date("2027-07-01T00:00:00Z"),
    });
    expect(run.stdout).toContain('mute "aks-migration-role-bindings" would match but expired 2027-06-30T00:00:00.000Z: ignored');
    expect(run.stdout).toContain('=> delivers to splunk, platform-teams');
  });

  it('--report json gives the same decisions as data', async () => {
    const run = await cli(['routes', 'test', '--rules', exampleRules, '--input', path.join(samples, '03-alert-repeat-and-role-binding.jsonl'), '--report', 'json']);
    expect(run.lines[1]).toMatchObject({
      outcome: 'routed',
      muted: ['platform-teams'],
      mutes: [{ destination: 'platform-teams', mute: 'aks-migration-role-bindings' }],
    });
    const routes = run.lines[1]?.['routes'] as { name: string; matched: boolean; failed: { key: string } | null }[];
    expect(routes.find((route) => route.name === 'high-alerts-to-oncall')).toMatchObject({ matched: false, failed: { key: 'minSeverity' } });
  });
});

describe('routes lint', () => {
  it('the example is clean once its environment variables are set', async () => {
    const run = await cli(['routes', 'lint', '--rules', exampleRules], { env: EXAMPLE_ENV });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('routes lint: 0 errors, 0 warnings\n');
  });

  it('unset ${ENV} is an error (exit 2), naming the destination and variable but no value', async () => {
    const run = await cli(['routes', 'lint', '--rules', exampleRules], { env: { ...EXAMPLE_ENV, HEC_TOKEN: undefined } });
    expect(run.code).toBe(2);
    expect(run.stdout).toMatch(/routes\.example\.yaml:\d+: error: destinations\.splunk\.token: .*HEC_TOKEN/);
    expect(run.stdout).not.toContain('hec-token-value');
  });

  it('with --input: routes that never match, records that match nothing, expired mutes', async () => {
    const run = await cli(['routes', 'lint', '--rules', exampleRules, '--input', path.join(samples, '01-alert-k8s-admission-webhook.json')], {
      env: EXAMPLE_ENV,
      now: new Date("2027-07-15T00:00:00Z"),
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/warning: mutes\[0\].*\[mute-expired\]/);
    expect(run.stdout).toMatch(/warning: routes\[4\].*\[route-unmatched\]/);
    expect(run.stderr).toContain('checked against 1 records');
  });

  it('a rules file that does not load lists every problem with its line (exit 2)', async () => {
    const rules = file('lint-broken.yaml', ['destinations:', '  s: {type: splunk-hec, url: "${U}", token: "literal-secret"}', 'routes:', '  - name: a', '    match: {severty: High}', '    to: [s]', ''].join('\n'));
    const run = await cli(['routes', 'lint', '--rules', rules]);
    expect(run.code).toBe(2);
    expect(run.stdout).toMatch(/lint-broken\.yaml:2: error: destinations\.s\.token: .*\$\{ENV/);
    expect(run.stdout).toMatch(/lint-broken\.yaml:5: error: routes\[0\]\.match.*severty/);
    expect(run.stdout).not.toContain('literal-secret');
  });
});

describe('validate', () => {
  it('accepts every shared sample but the invalid-JSON one', async () => {
    const run = await cli(['validate', '--input', fixtures, '--report', 'json']);
    expect(run.code).toBe(1);
    const invalid = run.lines.filter((line) => line['valid'] === false);
    expect(invalid.map((line) => path.basename(String(line['input'])))).toEqual(['eh_alert_legacy_SUSPECT_SVCHOST__asc-repo.INVALID-JSON.txt']);
    expect(run.lines.filter((line) => line['valid'] === true)).toHaveLength(12);
    expect(run.stderr).toBe('validate: 12 valid, 1 invalid\n');
  });

  it('prints path, expected and got for a schema failure', async () => {
    const record = JSON.parse(readFileSync(path.join(fixtures, 'eh_assessment_insert_NotApplicable__sumologic.json'), 'utf8')) as {
      properties: { status: { code: unknown } };
    };
    record.properties.status.code = ['Unhealthy'];
    const run = await cli(['validate', '--input', file('bad-status.json', JSON.stringify(record))]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^invalid {2}.*bad-status\.json {2}schema \(recommendation\)\n {4}properties\.status\.code: expected string or null, got array of 1 item\n$/);
  });
});

describe('the installed command', () => {
  it('runs as `defender-forwarder` from bin/ (built by npm ci) and answers --help with exit 0', () => {
    const built = readdirSync(root).includes('dist');
    expect(built, 'dist/ is built by `npm ci` (prepare) and by `npm test`').toBe(true);
    const result = spawnSync(process.execPath, [path.join(root, 'bin/defender-forwarder.js'), '--help'], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Usage: defender-forwarder');
    for (const command of ['forward', 'routes', 'validate']) expect(result.stdout).toContain(command);
  });

  it('a reader that goes away (| head) ends the command quietly', () => {
    const record = readFileSync(path.join(samples, '02-alert-k8s-node-crypto-miner.json'), 'utf8');
    const many = file('many.jsonl', `${JSON.stringify(JSON.parse(record))}\n`.repeat(5000));
    const result = spawnSync('bash', ['-c', `set -o pipefail; node ${JSON.stringify(path.join(root, 'bin/defender-forwarder.js'))} forward --dry-run --input ${JSON.stringify(many)} --rules config/routes.example.yaml | head -c 10`], {
      encoding: 'utf8',
      cwd: root,
    });
    expect(result.stdout).toHaveLength(10);
    // pipefail: this is the forwarder's own exit status, not head's.
    expect(result.status).toBe(0);
    expect(result.stderr).not.toMatch(/EPIPE|Error|\n\s+at /);
  });

  it('an unknown option is a usage error with exit 2', () => {
    const result = spawnSync(process.execPath, [path.join(root, 'bin/defender-forwarder.js'), 'forward', '--input', 'samples', '--rules', 'config/routes.example.yaml', '--bogus'], { encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("unknown option '--bogus'");
  });
});
