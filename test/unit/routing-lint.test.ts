import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/packageRoot.js';
import { lintRules, matchCovers } from '../../src/routing/lint.js';
import { parseRules } from '../../src/routing/load.js';
import { routeFinding } from '../../src/routing/route.js';
import type { Match } from '../../src/routing/types.js';
import { makeAlert, makeRecommendation, makeSecureScore, makeVulnerability, without } from '../support/findings.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const ENV = { HEC_URL: 'https://hec', HEC_TOKEN: 't', TEAMS_URL: 'https://teams' };

function rulesOf(...lines: string[]): ReturnType<typeof parseRules> {
  return parseRules(`${lines.join('\n')}\n`, 'routes.yaml');
}

const DESTINATIONS = [
  'destinations:', //                                                           1
  '  splunk: {type: splunk-hec, url: "${HEC_URL}", token: "${HEC_TOKEN}"}', // 2
  '  teams: {type: teams, url: "${TEAMS_URL}"}', //                            3
];

describe('lintRules', () => {
  it('finds nothing in clean rules', () => {
    const rules = rulesOf(...DESTINATIONS, 'routes:', '  - {name: a, match: {}, to: [splunk, teams]}');
    expect(lintRules(rules, { env: ENV, now: NOW })).toEqual([]);
  });

  it('unset and empty ${ENV} variables are errors naming the destination and the variable', () => {
    const rules = rulesOf(...DESTINATIONS, 'routes:', '  - {name: a, match: {}, to: [splunk, teams]}');
    expect(lintRules(rules, { env: { HEC_URL: 'https://hec', HEC_TOKEN: '  ' }, now: NOW })).toEqual([
      {
        level: 'error',
        code: 'env-empty',
        path: 'destinations.splunk.token',
        line: 2,
        message: 'environment variable HEC_TOKEN is empty (destination "splunk")',
      },
      {
        level: 'error',
        code: 'env-unset',
        path: 'destinations.teams.url',
        line: 3,
        message: 'environment variable TEAMS_URL is not set (destination "teams")',
      },
    ]);
  });

  it('warns about destinations no route uses', () => {
    const rules = rulesOf(...DESTINATIONS, 'routes:', '  - {name: a, match: {}, to: [splunk]}');
    expect(lintRules(rules, { env: ENV, now: NOW })).toEqual([
      {
        level: 'warning',
        code: 'destination-unused',
        path: 'destinations.teams',
        line: 3,
        message: 'destination "teams" is not used by any route',
      },
    ]);
  });

  it('warns when there are no routes', () => {
    const rules = rulesOf('destinations: {}', 'routes: []');
    expect(lintRules(rules, { env: {}, now: NOW })).toEqual([
      { level: 'warning', code: 'no-routes', path: 'routes', message: 'there are no routes: every record is unrouted' },
    ]);
  });

  it('warns about expired mutes and mutes about to expire', () => {
    const rules = rulesOf(
      ...DESTINATIONS,
      'routes: [{name: a, match: {}, to: [splunk, teams]}]', //                             4
      'mutes:', //                                                                          5
      '  - {name: old, match: {}, until: "2026-05-01T00:00:00Z", reason: r}', //            6
      '  - {name: soon, match: {}, until: "2026-06-04T00:00:00Z", reason: r}', //           7
      '  - {name: later, match: {}, until: "2027-01-01T00:00:00Z", reason: r}', //          8
      '  - {name: just-now, match: {}, until: "2026-05-31T23:30:00Z", reason: r}', //       9
    );
    expect(lintRules(rules, { env: ENV, now: NOW })).toEqual([
      {
        level: 'warning',
        code: 'mute-expired',
        path: 'mutes[0]',
        line: 6,
        message: 'mute "old" expired 31 days ago (until 2026-05-01T00:00:00.000Z) and is ignored: remove it, or extend until',
      },
      {
        level: 'warning',
        code: 'mute-expiring',
        path: 'mutes[1]',
        line: 7,
        message: 'mute "soon" expires 3 days from now (until 2026-06-04T00:00:00.000Z)',
      },
      {
        level: 'warning',
        code: 'mute-expired',
        path: 'mutes[3]',
        line: 9,
        message: 'mute "just-now" expired just now (until 2026-05-31T23:30:00.000Z) and is ignored: remove it, or extend until',
      },
    ]);
    expect(lintRules(rules, { env: ENV, now: NOW, expiringWithinDays: 0 }).map((issue) => issue.code)).toEqual([
      'mute-expired',
      'mute-expired',
    ]);
  });

  it('warns about a mute with nothing to silence', () => {
    const rules = rulesOf(
      'destinations: {splunk: {type: splunk-hec, url: "${HEC_URL}", token: "${HEC_TOKEN}"}}',
      'routes: [{name: a, match: {}, to: splunk}]',
      'mutes: [{name: m, match: {}, until: "2027-01-01T00:00:00Z", reason: r}]',
    );
    expect(lintRules(rules, { env: ENV, now: NOW })).toEqual([
      expect.objectContaining({ code: 'mute-no-destination', path: 'mutes[0]', line: 3 }),
    ]);
  });

  describe('shadowed routes', () => {
    it('a catch-all without continue shadows everything after it', () => {
      const rules = rulesOf(
        ...DESTINATIONS,
        'routes:', //                                                   4
        '  - {name: everything, match: {}, to: splunk}', //             5
        '  - {name: high, match: {minSeverity: High}, to: teams}', //   6
      );
      expect(lintRules(rules, { env: ENV, now: NOW })).toEqual([
        {
          level: 'warning',
          code: 'route-shadowed',
          path: 'routes[1]',
          line: 6,
          message:
            'route "high" can never match: route "everything" (routes[0]) (line 5, no continue) already matches everything it matches',
        },
      ]);
    });

    it('a route with continue shadows nothing', () => {
      const rules = rulesOf(
        ...DESTINATIONS,
        'routes:',
        '  - {name: everything, match: {}, to: splunk, continue: true}',
        '  - {name: high, match: {minSeverity: High}, to: teams}',
      );
      expect(lintRules(rules, { env: ENV, now: NOW })).toEqual([]);
    });

    it('a broader glob shadows a narrower one; a narrower one does not shadow a broader one', () => {
      const rules = rulesOf(
        ...DESTINATIONS,
        'routes:',
        '  - {name: prod, match: {kind: alert, resourceGroup: "rg-prod-*"}, to: teams}', // 5
        '  - {name: prod-aks, match: {kind: alert, resourceGroup: [rg-prod-aks, RG-PROD-SQL], minSeverity: High}, to: teams}', // 6
        '  - {name: rg, match: {kind: [alert, finding], resourceGroup: "rg-*"}, to: splunk}', // 7
      );
      expect(lintRules(rules, { env: ENV, now: NOW }).map((issue) => [issue.code, issue.path])).toEqual([['route-shadowed', 'routes[1]']]);
    });

    it.each<[string, Match, Match, boolean]>([
      ['empty covers all', {}, { kind: ['alert'], minCvss: 3 }, true],
      ['an extra key in the outer route', { kind: ['alert'], status: ['New'] }, { kind: ['alert'] }, false],
      ['kind subset', { kind: ['alert', 'finding'] }, { kind: ['finding'] }, true],
      ['kind superset', { kind: ['finding'] }, { kind: ['alert', 'finding'] }, false],
      ['every kind', { kind: ['alert', 'recommendation', 'finding', 'secureScore', 'secureScoreControl', 'regulatoryCompliance'] }, {}, true],
      ['lower minimum', { minSeverity: 'Medium' }, { minSeverity: 'High' }, true],
      ['higher minimum', { minSeverity: 'High' }, { minSeverity: 'Medium' }, false],
      ['minimum vs list', { minSeverity: 'Medium' }, { severity: ['High', 'Critical'] }, true],
      ['minimum vs list with Unknown', { minSeverity: 'Medium' }, { severity: ['High', 'Unknown'] }, false],
      ['list vs minimum', { severity: ['High', 'Critical'] }, { minSeverity: 'High' }, true],
      ['list vs lower minimum', { severity: ['High', 'Critical'] }, { minSeverity: 'Medium' }, false],
      ['list subset', { severity: ['Low', 'Medium'] }, { severity: ['Medium'] }, true],
      ['minCvss', { minCvss: 7 }, { minCvss: 9 }, true],
      ['minCvss higher', { minCvss: 9 }, { minCvss: 7 }, false],
      ['snapshot same', { snapshot: true }, { snapshot: true }, true],
      ['snapshot differs', { snapshot: true }, { snapshot: false }, false],
      ['identical globs, any case', { title: ['*Crypto*'] }, { title: ['*crypto*'] }, true],
      ['glob covers literals', { alertType: ['K8S_*'] }, { alertType: ['K8S_A', 'k8s_b'] }, true],
      ['glob misses one literal', { alertType: ['K8S_*'] }, { alertType: ['K8S_A', 'VM_B'] }, false],
      ['"*" needs the key to exist', { cluster: ['*'] }, {}, false],
      ['tactic any-of', { tactic: ['Persistence', 'Execution'] }, { tactic: ['persistence'] }, true],
    ])('%s', (_, outer, inner, expected) => {
      expect(matchCovers(outer, inner)).toBe(expected);
    });

    it('is sound: whenever it says covers, the outer route matches every sample the inner one does', () => {
      const samples = [
        makeAlert(),
        makeAlert({ severity: 'High', resourceGroup: 'rg-prod-sql' }),
        makeAlert({ severity: 'Critical', alertType: 'K8S_A', tactics: ['Execution'] }),
        makeVulnerability(),
        makeVulnerability({ severity: 'Unknown', cvss: 9.5 }),
        makeRecommendation(),
        makeSecureScore(),
        without(makeAlert({ severity: 'Low' }), 'cluster'),
      ];
      const matchesList: Match[] = [
        {},
        { kind: ['alert'] },
        { minSeverity: 'High' },
        { severity: ['High', 'Critical'] },
        { resourceGroup: ['rg-prod-*'] },
        { resourceGroup: ['rg-prod-sql'] },
        { alertType: ['K8S_*'] },
        { minCvss: 9 },
        { cluster: ['*'] },
        { tactic: ['exec*'] },
      ];
      const rules = { source: 'x', destinations: new Map(), mutes: [], routes: [] };
      let checked = 0;
      for (const outer of matchesList) {
        for (const inner of matchesList) {
          if (!matchCovers(outer, inner)) continue;
          for (const sample of samples) {
            const route = (match: Match, index: number) => ({ name: `r${index}`, index, match, to: ['x'], continue: true, line: 1 });
            const decision = routeFinding({ ...rules, routes: [route(outer, 0), route(inner, 1)] }, sample, NOW);
            const [outerMatched, innerMatched] = decision.evaluations.map((evaluation) => evaluation.matched);
            if (innerMatched !== true) continue;
            checked += 1;
            expect(outerMatched, `${JSON.stringify(outer)} covers ${JSON.stringify(inner)}`).toBe(true);
          }
        }
      }
      // The property was exercised, not vacuously true.
      expect(checked).toBeGreaterThan(20);
    });
  });

  describe('with sample records', () => {
    const rules = rulesOf(
      ...DESTINATIONS,
      'routes:', //                                                               4
      '  - {name: alerts, match: {kind: alert}, to: [splunk, teams]}', //         5
      '  - {name: high-alerts, match: {kind: alert, minSeverity: High}, to: teams}', // 6
      '  - {name: findings, match: {kind: finding}, to: splunk}', //              7
      '  - {name: compliance, match: {kind: regulatoryCompliance}, to: splunk}', // 8
    );

    it('warns about routes no record reaches and records no route matches', () => {
      const findings = [
        makeAlert({ severity: 'High' }),
        makeVulnerability(),
        makeRecommendation({ id: '/subscriptions/x/rec-1', title: 'Storage accounts should restrict network access' }),
      ];
      const issues = lintRules(rules, { env: ENV, now: NOW, findings });
      expect(issues).toEqual([
        // The shadowing warning, then coverage.
        expect.objectContaining({ code: 'route-shadowed', path: 'routes[1]', line: 6 }),
        {
          level: 'warning',
          code: 'route-unmatched',
          path: 'routes[1]',
          line: 6,
          message:
            'route "high-alerts" matched none of the 3 records (its match holds for 1 of them, but earlier routes without continue took them first)',
        },
        {
          level: 'warning',
          code: 'route-unmatched',
          path: 'routes[3]',
          line: 8,
          message: 'route "compliance" matched none of the 3 records',
        },
        {
          level: 'warning',
          code: 'finding-unrouted',
          path: 'routes',
          message: 'recommendation /subscriptions/x/rec-1 (Low, "Storage accounts should restrict network access") matches no route',
        },
      ]);
    });

    it('caps the list of unrouted records', () => {
      const findings = Array.from({ length: 25 }, (_, index) => makeSecureScore({ id: `score-${index}` }));
      const unrouted = lintRules(rules, { env: ENV, now: NOW, findings }).filter((issue) => issue.code === 'finding-unrouted');
      expect(unrouted).toHaveLength(21);
      expect(unrouted[20]?.message).toBe('and 5 more records match no route (25 of 25 in all)');
    });
  });
});

describe('the example rules', () => {
  const exampleFile = join(packageRoot(), 'config', 'routes.example.yaml');
  const env = {
    HEC_URL: 'https://splunk.contoso.com:8088',
    HEC_TOKEN: 'token',
    ONCALL_TEAMS_URL: 'https://teams',
    SMTP_URL: 'smtps://smtp',
    PLATFORM_TEAMS_URL: 'https://teams/platform',
  };

  it('lints clean given its environment variables', async () => {
    const rules = parseRules(await readFile(exampleFile, 'utf8'), exampleFile);
    expect(lintRules(rules, { env, now: NOW })).toEqual([]);
  });

  it('reports each missing variable', async () => {
    const rules = parseRules(await readFile(exampleFile, 'utf8'), exampleFile);
    const issues = lintRules(rules, { env: {}, now: NOW });
    expect(issues.every((issue) => issue.level === 'error' && issue.code === 'env-unset')).toBe(true);
    expect(new Set(issues.map((issue) => /environment variable (\w+)/.exec(issue.message)?.[1]))).toEqual(new Set(Object.keys(env)));
  });

  it('routes as its comments say', async () => {
    const rules = parseRules(await readFile(exampleFile, 'utf8'), exampleFile);
    const to = (finding: Parameters<typeof routeFinding>[1]): readonly string[] => routeFinding(rules, finding, NOW).destinations;
    expect(to(makeSecureScore())).toEqual(['splunk']);
    expect(to(makeAlert({ severity: 'Informational' }))).toEqual(['splunk']);
    expect(to(makeAlert({ severity: 'Low' }))).toEqual(['splunk']);
    expect(to(makeAlert({ severity: 'Medium' }))).toEqual(['splunk', 'platform-teams']);
    expect(to(makeAlert({ severity: 'High' }))).toEqual(['splunk', 'oncall-teams', 'oncall-email', 'platform-teams']);
    expect(to(makeAlert({ severity: 'High', alertType: 'VM_EICAR' }))).toEqual(['splunk', 'oncall-teams', 'oncall-email']);
    expect(to(makeAlert({ severity: 'High', status: 'Resolved', alertType: 'VM_EICAR' }))).toEqual(['splunk']);
    expect(to(makeVulnerability({ cvss: 9.8 }))).toEqual(['splunk', 'vuln-email']);
    expect(to(makeVulnerability({ cvss: 7 }))).toEqual(['splunk']);
    const muted = routeFinding(rules, makeAlert({ severity: 'High', alertType: 'K8S_ServiceAccountRoleBinding', cluster: 'aks-prod-weu' }), NOW);
    expect(muted.muted.map((m) => [m.destination, m.mute.name])).toEqual([['platform-teams', 'aks-migration-role-bindings']]);
  });
});
