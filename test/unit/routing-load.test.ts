import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/packageRoot.js';
import { loadRulesFile, parseInstant, parseRules, RulesError } from '../../src/routing/load.js';
import type { RulesIssue } from '../../src/routing/types.js';

/** Lines joined with \n, so that line numbers in the tests are easy to count (line 1 is the first). */
function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

const DESTINATIONS = [
  'destinations:', //                                                          1
  '  splunk: {type: splunk-hec, url: "${HEC_URL}", token: "${HEC_TOKEN}"}', // 2
  '  oncall-teams: {type: teams, url: "${TEAMS_URL}"}', //                     3
  '  oncall-email:', //                                                        4
  '    type: email', //                                                        5
  '    smtpUrl: "${SMTP_URL}"', //                                             6
  '    from: alerts@contoso.com', //                                           7
  '    to: [oncall@contoso.com]', //                                           8
];

function issuesOf(text: string): RulesIssue[] {
  try {
    parseRules(text, 'routes.yaml');
  } catch (error: unknown) {
    if (error instanceof RulesError) return [...error.issues];
    throw error;
  }
  throw new Error('the rules loaded without error');
}

describe('parseRules: what it builds', () => {
  const rules = parseRules(
    yaml(
      ...DESTINATIONS,
      '  hook:', //                                                           9
      '    type: webhook', //                                                 10
      '    url: "${HOOK_URL}"', //                                            11
      '    headers: {Authorization: "${HOOK_AUTH}", X-Api-Key: "${HOOK_AUTH}"}', // 12
      '    dedupe: false', //                                                 13
      'routes:', //                                                           14
      '  - name: all', //                                                     15
      '    match: {}', //                                                     16
      '    to: splunk', //                                                    17
      '    continue: true', //                                                18
      '  - name: prod-high', //                                               19
      '    match:', //                                                        20
      '      kind: alert', //                                                 21
      '      minSeverity: hIGH', //                                           22
      '      severity: [high, CRITICAL, unknown]', //                         23
      '      status: [New, Active]', //                                       24
      '      resourceGroup: "rg-prod-*"', //                                  25
      '      minCvss: 7.5', //                                                26
      '      snapshot: false', //                                             27
      '    to: [oncall-teams, oncall-email, oncall-teams]', //                28
      'mutes:', //                                                            29
      '  - name: migration', //                                               30
      '    match: {alertType: K8S_ServiceAccountRoleBinding}', //             31
      '    until: 2027-01-31T01:00:00+01:00', //                              32
      '    reason: "  role bindings rotate  "', //                            33
      '  - name: teams-only', //                                              34
      '    match: {}', //                                                     35
      '    until: "2027-01-31T00:00:00Z"', //                                 36
      '    reason: scoped', //                                                37
      '    to: oncall-teams', //                                              38
    ),
    'routes.yaml',
  );

  it('keeps the source', () => {
    expect(rules.source).toBe('routes.yaml');
  });

  it('builds destinations with notify, dedupe defaults, settings, env references and lines', () => {
    expect(rules.destinations.get('splunk')).toEqual({
      name: 'splunk',
      type: 'splunk-hec',
      notify: false,
      dedupe: false,
      settings: { url: '${HEC_URL}', token: '${HEC_TOKEN}' },
      envRefs: ['HEC_URL', 'HEC_TOKEN'],
      line: 2,
    });
    expect(rules.destinations.get('oncall-teams')).toMatchObject({ notify: true, dedupe: true, line: 3 });
    expect(rules.destinations.get('oncall-email')).toMatchObject({
      type: 'email',
      notify: true,
      dedupe: true,
      envRefs: ['SMTP_URL'],
      settings: { smtpUrl: '${SMTP_URL}', from: 'alerts@contoso.com', to: ['oncall@contoso.com'] },
      line: 4,
    });
    expect(rules.destinations.get('hook')).toMatchObject({ notify: true, dedupe: false, envRefs: ['HOOK_URL', 'HOOK_AUTH'], line: 9 });
  });

  it('normalises routes: lists, canonical severities, unique destinations, continue default', () => {
    expect(rules.routes).toEqual([
      { name: 'all', index: 0, match: {}, to: ['splunk'], continue: true, line: 15 },
      {
        name: 'prod-high',
        index: 1,
        match: {
          kind: ['alert'],
          minSeverity: 'High',
          severity: ['High', 'Critical', 'Unknown'],
          status: ['New', 'Active'],
          resourceGroup: ['rg-prod-*'],
          minCvss: 7.5,
          snapshot: false,
        },
        to: ['oncall-teams', 'oncall-email'],
        continue: false,
        line: 19,
      },
    ]);
  });

  it('builds mutes: canonical until, trimmed reason, default to every notification destination', () => {
    expect(rules.mutes[0]).toEqual({
      name: 'migration',
      index: 0,
      match: { alertType: ['K8S_ServiceAccountRoleBinding'] },
      until: '2027-01-31T00:00:00.000Z',
      untilMs: Date.parse('2027-01-31T00:00:00Z'),
      reason: 'role bindings rotate',
      to: ['oncall-teams', 'oncall-email', 'hook'],
      line: 30,
    });
    expect(rules.mutes[1]?.to).toEqual(['oncall-teams']);
  });

  it('freezes everything, the destinations map included', () => {
    expect(Object.isFrozen(rules)).toBe(true);
    expect(Object.isFrozen(rules.routes[1]?.match.kind)).toBe(true);
    expect(Object.isFrozen(rules.destinations.get('hook')?.settings['headers'])).toBe(true);
    expect(() => (rules.destinations as Map<string, unknown>).set('x', {})).toThrow(TypeError);
    expect(() => (rules.destinations as Map<string, unknown>).delete('splunk')).toThrow(TypeError);
    expect(rules.destinations.size).toBe(4);
  });
});

describe('parseRules: errors name the key and the line', () => {
  it('an unknown destination in a route (the example of the design)', () => {
    const text = yaml(
      ...DESTINATIONS,
      'routes:', //                                 9
      '  - name: a', //                             10
      '    match: {}', //                           11
      '    to: [splunk]', //                        12
      '  - name: b', //                             13
      '    match: {kind: alert}', //                14
      '    to: [oncall-teams]', //                  15
      '  - name: c', //                             16
      '    match: {kind: alert}', //                17
      '    to: [teams-soc]', //                     18
    );
    expect(() => parseRules(text, 'routes.yaml')).toThrow(/^routes\.yaml:18: routes\[2\]\.to: unknown destination "teams-soc"/);
    expect(issuesOf(text)).toEqual([
      {
        path: 'routes[2].to',
        line: 18,
        message: 'unknown destination "teams-soc"; destinations are splunk, oncall-teams, oncall-email',
      },
    ]);
  });

  it('an unknown destination in a block list names the line of that item', () => {
    const text = yaml(...DESTINATIONS, 'routes:', '  - name: a', '    match: {}', '    to:', '      - splunk', '      - nowhere');
    expect(issuesOf(text)).toEqual([expect.objectContaining({ path: 'routes[0].to', line: 14 })]);
  });

  it('an unknown destination in a mute', () => {
    const text = yaml(
      ...DESTINATIONS,
      'routes: [{name: a, match: {}, to: splunk}]', //    9
      'mutes:', //                                         10
      '  - name: m', //                                    11
      '    match: {}', //                                  12
      '    until: "2027-01-01T00:00:00Z"', //              13
      '    reason: testing', //                            14
      '    to: [oncall-teamz]', //                         15
    );
    expect(issuesOf(text)).toEqual([
      { path: 'mutes[0].to', line: 15, message: expect.stringMatching(/^unknown destination "oncall-teamz"/) as string },
    ]);
  });

  it('a mute may not silence Splunk', () => {
    const text = yaml(
      ...DESTINATIONS,
      'routes: [{name: a, match: {}, to: splunk}]',
      'mutes:',
      '  - {name: m, match: {}, until: "2027-01-01T00:00:00Z", reason: testing, to: [oncall-teams, splunk]}', // 11
    );
    expect(issuesOf(text)).toEqual([
      {
        path: 'mutes[0].to',
        line: 11,
        message: '"splunk" is a splunk-hec destination: Splunk is the system of record and is never muted',
      },
    ]);
  });

  it('duplicate route and mute names', () => {
    const text = yaml(
      ...DESTINATIONS,
      'routes:', //                                           9
      '  - {name: a, match: {}, to: splunk, continue: true}', // 10
      '  - {name: b, match: {}, to: splunk, continue: true}', // 11
      '  - name: a', //                                       12
      '    match: {}', //                                     13
      '    to: splunk', //                                    14
      'mutes:', //                                            15
      '  - {name: m, match: {}, until: "2027-01-01T00:00:00Z", reason: r}', // 16
      '  - {name: m, match: {}, until: "2027-01-01T00:00:00Z", reason: r}', // 17
    );
    expect(issuesOf(text)).toEqual([
      { path: 'routes[2].name', line: 12, message: 'duplicate route name "a" (first used by routes[0] on line 10)' },
      { path: 'mutes[1].name', line: 17, message: 'duplicate mute name "m" (first used by mutes[0] on line 16)' },
    ]);
  });

  it('a literal secret is refused, saying to use ${ENV}, without echoing it', () => {
    const text = yaml(
      'destinations:', //                                                        1
      '  splunk:', //                                                            2
      '    type: splunk-hec', //                                                 3
      '    url: https://splunk.contoso.com:8088', //                             4
      '    token: 6f1c2a9e-1111-2222-3333-444455556666', //                      5
      '  teams: {type: teams, url: "https://x.webhook.office.com/y?sig=s3cret"}', // 6
      '  mail: {type: email, smtpUrl: "smtps://u:pw@smtp.contoso.com", from: a@contoso.com, to: [b@contoso.com], password: hunter2}', // 7
      '  hook: {type: webhook, url: "${HOOK_URL}", headers: {Authorization: "Bearer abc"}}', // 8
      'routes: [{name: a, match: {}, to: [splunk, teams, mail, hook]}]', //      9
    );
    const secretMessage = 'secrets must not be written in the rules file: put the value in an environment variable and write "${ENV_VAR}"';
    const issues = issuesOf(text);
    expect(issues).toEqual([
      { path: 'destinations.splunk.token', line: 5, message: secretMessage },
      { path: 'destinations.teams.url', line: 6, message: secretMessage },
      { path: 'destinations.mail.smtpUrl', line: 7, message: secretMessage },
      { path: 'destinations.mail.password', line: 7, message: secretMessage },
      { path: 'destinations.hook.headers.Authorization', line: 8, message: secretMessage },
    ]);
    let message = '';
    try {
      parseRules(text, 'routes.yaml');
    } catch (error: unknown) {
      message = (error as Error).message;
    }
    for (const secret of ['6f1c2a9e', 's3cret', 'hunter2', 'pw@', 'Bearer']) expect(message).not.toContain(secret);
  });

  it('a secret given as a number is refused without echoing it either', () => {
    const text = yaml('destinations:', '  s: {type: splunk-hec, url: "${U}", token: 123456789}', 'routes: []');
    expect(issuesOf(text)).toEqual([{ path: 'destinations.s.token', line: 2, message: expect.stringContaining('${ENV_VAR}') as string }]);
    expect(() => parseRules(text, 'x')).not.toThrow(/123456789/);
  });

  it('a partial ${ENV} interpolation is refused', () => {
    const text = yaml('destinations:', '  s: {type: splunk-hec, url: "${U}", token: "${T}", index: "${ENV}-defender"}', 'routes: []');
    expect(issuesOf(text)).toEqual([
      {
        path: 'destinations.s.index',
        line: 2,
        message: 'an ${ENV_VAR} reference must be the whole value ("${NAME}"); partial interpolation is not supported',
      },
    ]);
  });

  it('unknown keys are refused everywhere, with a suggestion', () => {
    const text = yaml(
      'destinations:', //                                                        1
      '  splunk: {type: splunk-hec, url: "${U}", token: "${T}", indx: x}', //   2
      '  teams: {type: teams, url: "${T2}", formt: adaptive}', //               3
      'routes:', //                                                             4
      '  - name: a', //                                                         5
      '    match:', //                                                          6
      '      severty: High', //                                                 7
      '      resourcegroup: rg', //                                             8
      '      foo: 1', //                                                        9
      '    to: [splunk, teams]', //                                             10
      '    contine: true', //                                                   11
      'mutes:', //                                                              12
      '  - {name: m, match: {kinds: alert}, until: "2027-01-01T00:00:00Z", reason: r}', // 13
      'extra: true', //                                                         14
    );
    expect(issuesOf(text)).toEqual([
      { path: 'destinations.splunk.indx', line: 2, message: 'unknown key "indx" (did you mean "index"?)' },
      { path: 'destinations.teams.formt', line: 3, message: 'unknown key "formt" (did you mean "format"?)' },
      { path: 'routes[0].match.severty', line: 7, message: 'unknown key "severty" (did you mean "severity"?)' },
      { path: 'routes[0].match.resourcegroup', line: 8, message: 'unknown key "resourcegroup" (did you mean "resourceGroup"?)' },
      {
        path: 'routes[0].match.foo',
        line: 9,
        message:
          'unknown key "foo"; allowed keys: kind, minSeverity, severity, status, alertType, tactic, subscription, resourceGroup, resource, cluster, title, cve, minCvss, snapshot',
      },
      { path: 'routes[0].contine', line: 11, message: 'unknown key "contine" (did you mean "continue"?)' },
      { path: 'mutes[0].match.kinds', line: 13, message: 'unknown key "kinds" (did you mean "kind"?)' },
      { path: 'extra', line: 14, message: 'unknown key "extra"; allowed keys: version, destinations, routes, mutes' },
    ]);
  });

  it('a key valid for another destination type is unknown for this one', () => {
    const text = yaml('destinations:', '  mail: {type: email, smtpUrl: "${S}", from: a@b.co, to: [c@d.co], format: adaptive}', 'routes: []');
    expect(issuesOf(text)).toEqual([
      expect.objectContaining({ path: 'destinations.mail.format', line: 2, message: expect.stringMatching(/^unknown key "format"/) as string }),
    ]);
  });

  it('missing required keys name the object and its line', () => {
    const text = yaml(
      'destinations:', //                                     1
      '  splunk:', //                                         2
      '    type: splunk-hec', //                              3
      '    url: "${U}"', //                                   4
      '  teams: {url: "${T}"}', //                            5
      'routes:', //                                           6
      '  - name: a', //                                       7
      '    to: [splunk]', //                                  8
      'mutes:', //                                            9
      '  - name: m', //                                       10
      '    match: {}', //                                     11
    );
    expect(issuesOf(text)).toEqual([
      { path: 'destinations.splunk', line: 2, message: 'missing required key "token"' },
      { path: 'destinations.teams', line: 5, message: 'missing required key "type"' },
      { path: 'routes[0]', line: 7, message: 'missing required key "match"' },
      { path: 'mutes[0]', line: 10, message: 'missing required key "until"' },
      { path: 'mutes[0]', line: 10, message: 'missing required key "reason"' },
    ]);
  });

  it('missing top-level keys and an empty file', () => {
    expect(issuesOf('routes: []\n')).toEqual([{ path: '', line: 1, message: 'missing required key "destinations"' }]);
    expect(issuesOf('')).toEqual([{ path: '', line: 1, message: 'the rules file is empty: it needs destinations and routes' }]);
    expect(issuesOf('# only a comment\n')).toEqual([{ path: '', line: 1, message: 'the rules file is empty: it needs destinations and routes' }]);
    expect(issuesOf('- a\n- b\n')).toEqual([{ path: '', line: 1, message: 'must be a mapping, not a list' }]);
  });

  it('wrong value types and values', () => {
    const text = yaml(
      ...DESTINATIONS,
      '  vendor: {type: slack, url: "${X}"}', //                                9
      'routes:', //                                                            10
      '  - name: a', //                                                        11
      '    match:', //                                                         12
      '      kind: [alert, incident]', //                                      13
      '      minCvss: 11', //                                                  14
      '      snapshot: yes', //                                                15
      '      cluster: 42', //                                                  16
      '      title: []', //                                                    17
      '    to: [splunk]', //                                                   18
      '    continue: "true"', //                                               19
      '  - name: b', //                                                        20
      '    match:', //                                                         21
      '    to: [splunk]', //                                                   22
    );
    expect(issuesOf(text)).toEqual([
      { path: 'destinations.vendor.type', line: 9, message: 'must be one of splunk-hec, teams, email, webhook, not "slack"' },
      {
        path: 'routes[0].match.kind[1]',
        line: 13,
        message: 'must be one of alert, recommendation, finding, secureScore, secureScoreControl, regulatoryCompliance, not "incident"',
      },
      { path: 'routes[0].match.minCvss', line: 14, message: 'must be <= 10, not 11' },
      { path: 'routes[0].match.snapshot', line: 15, message: 'must be true or false, not "yes"' },
      { path: 'routes[0].match.cluster', line: 16, message: 'must be a string or a list of strings, not 42' },
      { path: 'routes[0].match.title', line: 17, message: 'must not be an empty list' },
      { path: 'routes[0].continue', line: 19, message: 'must be true or false, not "true"' },
      { path: 'routes[1].match', line: 21, message: 'must be a mapping, not empty (write {} to match everything)' },
    ]);
  });

  it('kind and severities are any case but must exist', () => {
    const text = yaml(
      ...DESTINATIONS,
      'routes:', //                                                                    9
      '  - {name: a, match: {kind: Alerts}, to: splunk}', //                           10
      '  - {name: b, match: {minSeverity: Hgh}, to: splunk}', //                       11
      '  - {name: c, match: {minSeverity: unknown}, to: splunk}', //                   12
      '  - name: d', //                                                                13
      '    match:', //                                                                 14
      '      severity:', //                                                            15
      '        - high', //                                                             16
      '        - Urgent', //                                                           17
      '    to: splunk', //                                                             18
    );
    expect(issuesOf(text)).toEqual([
      {
        path: 'routes[0].match.kind',
        line: 10,
        message: 'must be one of alert, recommendation, finding, secureScore, secureScoreControl, regulatoryCompliance, not "Alerts"',
      },
      {
        path: 'routes[1].match.minSeverity',
        line: 11,
        message: 'unknown severity "Hgh"; use one of Informational, Low, Medium, High, Critical (any case)',
      },
      {
        path: 'routes[2].match.minSeverity',
        line: 12,
        message:
          'minSeverity cannot be Unknown (Unknown never meets a minimum): use Informational for any known severity, or severity: [Unknown]',
      },
      {
        path: 'routes[3].match.severity',
        line: 17,
        message: 'unknown severity "Urgent"; use one of Unknown, Informational, Low, Medium, High, Critical (any case)',
      },
    ]);
  });

  it('mutes need a real date-time with a zone and a non-empty reason', () => {
    const text = yaml(
      ...DESTINATIONS,
      'routes: [{name: a, match: {}, to: splunk}]', //                                    9
      'mutes:', //                                                                        10
      '  - {name: a, match: {}, until: 2027-01-31, reason: r}', //                        11
      '  - {name: b, match: {}, until: "2027-01-31T00:00:00", reason: r}', //             12
      '  - {name: c, match: {}, until: "2027-02-30T00:00:00Z", reason: r}', //            13
      '  - {name: d, match: {}, until: "next tuesday", reason: r}', //                    14
      '  - {name: e, match: {}, until: "2027-01-31T00:00:00Z", reason: "  "}', //         15
      '  - {name: f, match: {}, until: 2027, reason: r}', //                              16
    );
    const format = 'must be an ISO 8601 date-time with a zone, e.g. "2027-01-31T00:00:00Z"';
    expect(issuesOf(text)).toEqual([
      { path: 'mutes[0].until', line: 11, message: format },
      { path: 'mutes[1].until', line: 12, message: format },
      { path: 'mutes[2].until', line: 13, message: '"2027-02-30T00:00:00Z" is not a real date-time' },
      { path: 'mutes[3].until', line: 14, message: format },
      { path: 'mutes[4].reason', line: 15, message: 'must not be empty' },
      { path: 'mutes[5].until', line: 16, message: 'must be a string, not 2027' },
    ]);
  });

  it('an expired mute is not a load error', () => {
    const rules = parseRules(
      yaml(...DESTINATIONS, 'routes: [{name: a, match: {}, to: splunk}]', 'mutes:', '  - {name: old, match: {}, until: "2020-01-01T00:00:00Z", reason: r}'),
      'x',
    );
    expect(rules.mutes[0]?.untilMs).toBe(Date.parse('2020-01-01T00:00:00Z'));
  });

  it('bad e-mail addresses, URLs, header names and versions', () => {
    const text = yaml(
      'version: 2', //                                                                                  1
      'destinations:', //                                                                               2
      '  s: {type: splunk-hec, url: "splunk.contoso.com:8088", token: "${T}", batchMaxEvents: 0}', //   3
      '  m: {type: email, smtpUrl: "${S}", from: not-an-address, to: [ok@contoso.com, "nope"]}', //    4
      '  h: {type: webhook, url: "${H}", headers: {"Bad Header": "${X}"}}', //                          5
      'routes: [{name: a, match: {}, to: [s, m, h]}]', //                                               6
    );
    expect(issuesOf(text)).toEqual([
      { path: 'version', line: 1, message: 'only version 1 is supported' },
      {
        path: 'destinations.s.url',
        line: 3,
        message: 'must be an http:// or https:// URL without user:password@ (credentials belong in an ${ENV_VAR}), or an ${ENV_VAR} reference',
      },
      { path: 'destinations.s.batchMaxEvents', line: 3, message: 'must be >= 1, not 0' },
      { path: 'destinations.m.from', line: 4, message: expect.stringMatching(/^must be an e-mail address/) as string },
      { path: 'destinations.m.to[1]', line: 4, message: expect.stringMatching(/^must be an e-mail address/) as string },
      { path: 'destinations.h.headers["Bad Header"]', line: 5, message: '"Bad Header" is not a valid name here' },
    ]);
  });

  it('YAML syntax errors give the line', () => {
    expect(issuesOf(yaml('destinations:', '  splunk: {type: splunk-hec', 'routes: []'))).toEqual([
      expect.objectContaining({ path: '', line: expect.any(Number) as number, message: expect.stringMatching(/^invalid YAML: /) as string }),
    ]);
    const duplicate = issuesOf(yaml('destinations: {}', 'routes: []', 'routes: []'));
    expect(duplicate).toEqual([{ path: '', line: 3, message: 'invalid YAML: Map keys must be unique' }]);
    const tabs = issuesOf(yaml('destinations: {}', 'routes:', '\t- name: a'));
    expect(tabs[0]?.line).toBe(3);
  });

  it('refuses alias bombs', () => {
    const bomb = yaml(
      'a: &a ["x","x","x","x","x","x","x","x","x"]',
      'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
      'e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
    );
    expect(() => parseRules(bomb, 'bomb.yaml')).toThrow(RulesError);
  });

  it('lists every issue in the message, one a line, as <source>:<line>: <path>: <message>', () => {
    const text = yaml(...DESTINATIONS, 'routes:', '  - {name: a, match: {}, to: nowhere}', '  - {name: a, match: {}, to: splunk}');
    expect(() => parseRules(text, 'conf/routes.yaml')).toThrow(
      [
        'conf/routes.yaml:10: routes[0].to: unknown destination "nowhere"; destinations are splunk, oncall-teams, oncall-email',
        'conf/routes.yaml:11: routes[1].name: duplicate route name "a" (first used by routes[0] on line 10)',
      ].join('\n'),
    );
    try {
      parseRules(text, 'conf/routes.yaml');
    } catch (error: unknown) {
      expect(error).toBeInstanceOf(RulesError);
      expect((error as RulesError).name).toBe('RulesError');
      expect((error as RulesError).source).toBe('conf/routes.yaml');
    }
  });
});

describe('parseInstant', () => {
  it.each([
    ['2027-01-31T00:00:00Z', Date.UTC(2027, 0, 31)],
    ['2027-01-31t00:00z', Date.UTC(2027, 0, 31)],
    ['2027-01-31 01:30:00+01:30', Date.UTC(2027, 0, 31)],
    ['2027-01-30T19:00:00-0500', Date.UTC(2027, 0, 31)],
    ['2028-02-29T00:00:00.250Z', Date.UTC(2028, 1, 29, 0, 0, 0, 250)],
  ])('%s', (text, expected) => {
    expect(parseInstant(text)).toBe(expected);
  });

  it.each(['2027-02-29T00:00:00Z', '2027-13-01T00:00:00Z', '2027-01-01T24:00:00Z', '2027-01-01T00:00:00', '2027-01-01'])(
    'refuses %s',
    (text) => {
      expect(parseInstant(text)).toBeUndefined();
    },
  );
});

describe('loadRulesFile', () => {
  let folder = '';
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'routing-load-'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('loads a file (with a BOM) and names it in errors', async () => {
    const file = join(folder, 'routes.yaml');
    await writeFile(file, `\uFEFF${yaml(...DESTINATIONS, 'routes: [{name: a, match: {}, to: splunk}]')}`);
    expect((await loadRulesFile(file)).source).toBe(file);
    await writeFile(file, yaml(...DESTINATIONS, 'routes: [{name: a, match: {}, to: teams-soc}]'));
    await expect(loadRulesFile(file)).rejects.toThrow(`${file}:9: routes[0].to: unknown destination "teams-soc"`);
  });

  it('lets file-system errors through with their code', async () => {
    await expect(loadRulesFile(join(folder, 'missing.yaml'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('loads the example rules without errors', async () => {
    const rules = await loadRulesFile(join(packageRoot(), 'config', 'routes.example.yaml'));
    expect(rules.routes.map((route) => route.name)).toEqual([
      'everything-to-splunk',
      'informational-alerts-splunk-only',
      'high-alerts-to-oncall',
      'kubernetes-alerts-to-platform',
      'critical-image-vulnerabilities',
    ]);
    expect(rules.mutes).toHaveLength(1);
  });
});

describe('rules: names, URLs and kinds', () => {
  it('kind is case-insensitive like every other match value', () => {
    const rules = parseRules(yaml('destinations:', '  s: {type: splunk-hec, url: "${U}", token: "${T}"}', 'routes:', '  - name: a', '    match: {kind: [Alert, FINDING]}', '    to: [s]'), 'k.yaml');
    expect(rules.routes[0]?.match.kind).toEqual(['alert', 'finding']);
    expect(issuesOf(yaml('destinations:', '  s: {type: splunk-hec, url: "${U}", token: "${T}"}', 'routes:', '  - name: a', '    match: {kind: Alerts}', '    to: [s]'))).toEqual([
      expect.objectContaining({ path: 'routes[0].match.kind', line: 5 }),
    ]);
  });

  it('a literal URL may not carry credentials, and the message does not repeat them', () => {
    const issues = issuesOf(yaml('destinations:', '  s: {type: splunk-hec, url: "https://admin:hunter2@splunk.example:8088", token: "${T}"}', 'routes:', '  - name: a', '    match: {}', '    to: [s]'));
    expect(issues).toEqual([expect.objectContaining({ path: 'destinations.s.url', line: 2 })]);
    expect(JSON.stringify(issues)).not.toContain('hunter2');
  });

  it('destination names are plain identifiers (no __proto__)', () => {
    const issues = issuesOf(yaml('destinations:', '  __proto__: {type: teams, url: "${T}"}', 'routes:', '  - name: a', '    match: {}', '    to: [__proto__]'));
    expect(issues.map((issue) => issue.path)).toContain('destinations.__proto__');
    expect(issues.find((issue) => issue.path === 'destinations.__proto__')?.line).toBe(2);
  });
});
