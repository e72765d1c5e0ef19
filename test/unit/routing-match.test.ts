import { describe, expect, it } from 'vitest';
import { compileGlob, globCovers } from '../../src/routing/glob.js';
import { compileMatch, evaluateMatch, firstFailure, matches } from '../../src/routing/match.js';
import type { Match } from '../../src/routing/types.js';
import { makeAlert, makeRecommendation, makeSecureScore, makeVulnerability, without } from '../support/findings.js';

/** The single condition of a one-key match, evaluated. */
function only(match: Match, finding = makeAlert()): { ok: boolean; detail: string } {
  const results = evaluateMatch(match, finding);
  expect(results).toHaveLength(1);
  const [result] = results;
  if (result === undefined) throw new Error('no result');
  // The fast path and the explained path always agree.
  expect(matches(match, finding)).toBe(result.ok);
  return { ok: result.ok, detail: result.detail };
}

describe('compileGlob', () => {
  it.each([
    ['rg-prod-*', 'rg-prod-aks', true],
    ['rg-prod-*', 'RG-PROD-AKS', true],
    ['RG-PROD-*', 'rg-prod-aks', true],
    ['rg-prod-*', 'rg-prod-', true],
    ['rg-prod-*', 'rg-dev', false],
    ['*-aks', 'rg-prod-aks', true],
    ['*prod*', 'rg-prod-aks', true],
    ['*prod*aks', 'rg-prod-aks', true],
    ['*prod*weu', 'rg-prod-aks', false],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'ac', false],
    ['a*a', 'a', false],
    ['*', '', true],
    ['**', 'anything', true],
    ['rg-?', 'rg-1', true],
    ['rg-?', 'rg-12', false],
    ['rg-?', 'rg-', false],
    ['rg-??-*', 'rg-01-weu', true],
    ['*-?', 'a-b-c', true],
    ['?*?', 'ab', true],
    ['?*?', 'a', false],
    ['title ?', 'title 😀', true],
    ['exact', 'EXACT', true],
    ['exact', 'exactly', false],
  ])('%s against %s is %s', (pattern, value, expected) => {
    expect(compileGlob(pattern).test(value)).toBe(expected);
  });

  it.each([
    ['SQL.*', 'SQL.DB_Injection', true],
    ['SQL.*', 'SQLXDB', false],
    ['a+b', 'a+b', true],
    ['a+b', 'aab', false],
    ['[abc]', '[abc]', true],
    ['[abc]', 'a', false],
    ['(x|y)', 'x', false],
    ['(x|y)', '(x|y)', true],
    ['^start$', '^start$', true],
    ['a\\d', 'a\\d', true],
    ['a\\d', 'a1', false],
    ['{1,2}', '{1,2}', true],
  ])('regex metacharacters are literal: %s against %s is %s', (pattern, value, expected) => {
    expect(compileGlob(pattern).test(value)).toBe(expected);
  });

  // A backtracking regex would take longer than the test timeout here (speed itself is for `npm run bench`).
  it('answers patterns that make backtracking regexes explode', () => {
    const glob = compileGlob('*a*a*a*a*a*a*a*a*a*a*b');
    expect(glob.test('a'.repeat(5000))).toBe(false);
    expect(glob.test(`${'a'.repeat(5000)}b`)).toBe(true);
    const withQuestion = compileGlob('*a?a*a?a*a?a*a?a*b');
    expect(withQuestion.test('a'.repeat(5000))).toBe(false);
  });

  it('knows literal patterns', () => {
    expect(compileGlob('New').literal).toBe(true);
    expect(compileGlob('N*').literal).toBe(false);
    expect(compileGlob('N?w').literal).toBe(false);
  });
});

describe('globCovers', () => {
  it.each([
    ['*', 'rg-prod-*', true],
    ['rg-*', 'rg-prod-*', true],
    ['rg-prod-*', 'rg-prod-aks', true],
    ['RG-PROD-*', 'rg-prod-aks', true],
    ['rg-prod-*', 'rg-*', false],
    ['rg-prod-aks', 'rg-prod-*', false],
    ['a?c', 'a*c', false],
    ['a?c', 'a?c', true],
    ['a*c', 'a?c', true],
    ['a?c', 'abc', true],
    ['abc', 'a?c', false],
  ])('%s covers %s: %s', (outer, inner, expected) => {
    expect(globCovers(outer, inner)).toBe(expected);
  });
});

describe('evaluateMatch and matches', () => {
  it('an empty match holds for everything', () => {
    expect(evaluateMatch({}, makeSecureScore())).toEqual([]);
    expect(matches({}, makeSecureScore())).toBe(true);
  });

  describe('kind', () => {
    it('is exact, and a list is any of', () => {
      expect(only({ kind: ['alert'] })).toEqual({ ok: true, detail: 'kind is alert' });
      expect(only({ kind: ['finding'] })).toEqual({ ok: false, detail: 'kind alert is not finding' });
      expect(only({ kind: ['finding', 'alert'] })).toEqual({ ok: true, detail: 'kind alert is one of finding, alert' });
      expect(only({ kind: ['finding', 'recommendation'] })).toEqual({
        ok: false,
        detail: 'kind alert is none of finding, recommendation',
      });
    });
  });

  describe('minSeverity', () => {
    it('holds at or above the minimum', () => {
      expect(only({ minSeverity: 'Medium' })).toEqual({ ok: true, detail: 'severity Medium meets minSeverity Medium' });
      expect(only({ minSeverity: 'Low' }, makeAlert({ severity: 'High' }))).toEqual({
        ok: true,
        detail: 'severity High meets minSeverity Low',
      });
    });

    it('fails below it, saying so', () => {
      expect(only({ minSeverity: 'High' }, makeAlert({ severity: 'Low' }))).toEqual({
        ok: false,
        detail: 'severity Low is below minSeverity High',
      });
    });

    it('never matches Unknown, not even with the lowest minimum', () => {
      expect(only({ minSeverity: 'Informational' }, makeSecureScore())).toEqual({
        ok: false,
        detail: 'severity Unknown never meets minSeverity Informational',
      });
    });

    it('never matches Unknown even for a hand-built minSeverity Unknown (the loader refuses that)', () => {
      expect(only({ minSeverity: 'Unknown' }, makeSecureScore()).ok).toBe(false);
      expect(only({ minSeverity: 'Unknown' }, makeAlert({ severity: 'Informational' })).ok).toBe(true);
    });

    it('treats a missing severity as Unknown', () => {
      const noSeverity = { ...makeAlert() } as Record<string, unknown>;
      delete noSeverity['severity'];
      expect(matches({ minSeverity: 'Informational' }, noSeverity as unknown as ReturnType<typeof makeAlert>)).toBe(false);
    });

    it('ranks Critical above High', () => {
      expect(matches({ minSeverity: 'High' }, makeVulnerability({ severity: 'Critical' }))).toBe(true);
      expect(matches({ minSeverity: 'Critical' }, makeVulnerability({ severity: 'High' }))).toBe(false);
    });
  });

  describe('severity', () => {
    it('matches exactly, a list as any of', () => {
      expect(only({ severity: ['Medium'] })).toEqual({ ok: true, detail: 'severity is Medium' });
      expect(only({ severity: ['High', 'Critical'] })).toEqual({ ok: false, detail: 'severity Medium is none of High, Critical' });
      expect(only({ severity: ['Low'] })).toEqual({ ok: false, detail: 'severity Medium is not Low' });
    });

    it('[Unknown] matches records without a severity', () => {
      expect(only({ severity: ['Unknown'] }, makeSecureScore())).toEqual({ ok: true, detail: 'severity is Unknown' });
      expect(matches({ severity: ['Unknown'] }, makeAlert())).toBe(false);
    });
  });

  describe('text keys', () => {
    it('resourceGroup: globs, case-insensitive, any of a list', () => {
      expect(only({ resourceGroup: ['RG-PROD-*'] })).toEqual({ ok: true, detail: 'resourceGroup "rg-prod-aks" matches "RG-PROD-*"' });
      expect(only({ resourceGroup: ['rg-prod-*', 'rg-stage-*'] }, makeRecommendation())).toEqual({
        ok: false,
        detail: 'resourceGroup "rg-dev" matches none of "rg-prod-*", "rg-stage-*"',
      });
      expect(only({ resourceGroup: ['rg-prod-*'] }, makeRecommendation())).toEqual({
        ok: false,
        detail: 'resourceGroup "rg-dev" does not match "rg-prod-*"',
      });
    });

    it('status compares the status', () => {
      expect(only({ status: ['new', 'Active'] })).toEqual({ ok: true, detail: 'status "New" matches "new"' });
      expect(only({ status: ['Resolved'] })).toEqual({ ok: false, detail: 'status "New" does not match "Resolved"' });
    });

    it('an empty status counts as none, even for "*"', () => {
      expect(only({ status: ['*'] }, makeSecureScore())).toEqual({ ok: false, detail: 'no status' });
    });

    it('alertType fails when the record has none', () => {
      expect(only({ alertType: ['K8S_*'] })).toEqual({ ok: true, detail: 'alertType "K8S_ClusterAdminBinding" matches "K8S_*"' });
      expect(only({ alertType: ['K8S.NODE_*'] })).toEqual({
        ok: false,
        detail: 'alertType "K8S_ClusterAdminBinding" does not match "K8S.NODE_*"',
      });
      expect(only({ alertType: ['*'] }, makeVulnerability())).toEqual({ ok: false, detail: 'no alertType' });
    });

    it('a "." in an alertType pattern is literal', () => {
      expect(matches({ alertType: ['K8S.NODE_*'] }, makeAlert({ alertType: 'K8S.NODE_ReverseShell' }))).toBe(true);
      expect(matches({ alertType: ['K8S.NODE_*'] }, makeAlert({ alertType: 'K8SXNODE_ReverseShell' }))).toBe(false);
    });

    it('subscription compares subscriptionId', () => {
      expect(only({ subscription: ['00000000-1111-*'] }).ok).toBe(true);
      expect(only({ subscription: ['ffffffff-*'] }).detail).toBe(
        'subscription "00000000-1111-2222-3333-444444444444" does not match "ffffffff-*"',
      );
    });

    it('resource compares the ARM id case-insensitively', () => {
      const upper = makeAlert({ resourceId: makeAlert().resourceId.toUpperCase() });
      expect(matches({ resource: ['*/providers/Microsoft.ContainerService/managedClusters/aks-prod-*'] }, upper)).toBe(true);
      expect(matches({ resource: ['/subscriptions/*/resourceGroups/rg-dev/*'] }, upper)).toBe(false);
    });

    it('cluster fails when the record names no cluster', () => {
      expect(only({ cluster: ['aks-prod-?eu'] })).toEqual({ ok: true, detail: 'cluster "aks-prod-weu" matches "aks-prod-?eu"' });
      expect(only({ cluster: ['*'] }, without(makeAlert(), 'cluster'))).toEqual({ ok: false, detail: 'no cluster' });
    });

    it('title matches with ? and *', () => {
      expect(matches({ title: ['Role binding to the cluster-admin role detected'] }, makeAlert())).toBe(true);
      expect(matches({ title: ['*CLUSTER?ADMIN*'] }, makeAlert())).toBe(true);
      expect(matches({ title: ['*cluster?admin'] }, makeAlert())).toBe(false);
    });

    it('cuts long values in details', () => {
      const long = makeAlert({ title: 'x'.repeat(500) });
      expect(only({ title: ['y*'] }, long).detail.length).toBeLessThan(220);
    });
  });

  describe('tactic and cve (any of the record values against any pattern)', () => {
    it('tactic', () => {
      expect(only({ tactic: ['privilege*'] })).toEqual({ ok: true, detail: 'tactic "PrivilegeEscalation" matches "privilege*"' });
      expect(only({ tactic: ['Discovery', 'Execution'] })).toEqual({
        ok: false,
        detail: 'tactics "Persistence", "PrivilegeEscalation" match none of "Discovery", "Execution"',
      });
      expect(only({ tactic: ['Discovery'] }, makeAlert({ tactics: ['Persistence'] }))).toEqual({
        ok: false,
        detail: 'tactic "Persistence" does not match "Discovery"',
      });
      expect(only({ tactic: ['*'] }, makeVulnerability())).toEqual({ ok: false, detail: 'no tactics' });
    });

    it('cve', () => {
      const finding = makeVulnerability({ cves: ['CVE-2023-44487', 'CVE-2024-3094'] });
      expect(only({ cve: ['cve-2024-*'] }, finding)).toEqual({ ok: true, detail: 'CVE "CVE-2024-3094" matches "cve-2024-*"' });
      expect(only({ cve: ['CVE-2021-44228'] }, finding)).toEqual({
        ok: false,
        detail: 'CVEs "CVE-2023-44487", "CVE-2024-3094" do not match "CVE-2021-44228"',
      });
      expect(only({ cve: ['CVE-*'] })).toEqual({ ok: false, detail: 'no CVEs' });
    });
  });

  describe('minCvss', () => {
    it('holds at or above the minimum', () => {
      expect(only({ minCvss: 7 }, makeVulnerability({ cvss: 7.5 }))).toEqual({ ok: true, detail: 'cvss 7.5 >= 7' });
      expect(only({ minCvss: 7.5 }, makeVulnerability({ cvss: 7.5 })).ok).toBe(true);
      expect(only({ minCvss: 9 }, makeVulnerability({ cvss: 6.1 }))).toEqual({ ok: false, detail: 'cvss 6.1 is below minCvss 9' });
    });

    it('fails when the record has no cvss, even for 0', () => {
      expect(only({ minCvss: 0 }, makeAlert())).toEqual({ ok: false, detail: 'no cvss' });
    });
  });

  describe('snapshot', () => {
    it('equals the record flag', () => {
      expect(only({ snapshot: true }, makeRecommendation())).toEqual({ ok: true, detail: 'snapshot is true' });
      expect(only({ snapshot: true })).toEqual({ ok: false, detail: 'snapshot is false, not true' });
      expect(only({ snapshot: false })).toEqual({ ok: true, detail: 'snapshot is false' });
    });
  });

  it('needs every key to hold, and evaluates all of them in MATCH_KEYS order', () => {
    const match: Match = { snapshot: false, resourceGroup: ['rg-prod-*'], minSeverity: 'High', kind: ['alert'] };
    const results = evaluateMatch(match, makeAlert());
    expect(results.map((result) => [result.key, result.ok])).toEqual([
      ['kind', true],
      ['minSeverity', false],
      ['resourceGroup', true],
      ['snapshot', true],
    ]);
    expect(matches(match, makeAlert())).toBe(false);
    expect(matches(match, makeAlert({ severity: 'High' }))).toBe(true);
    expect(firstFailure(match, makeAlert())).toEqual({
      key: 'minSeverity',
      ok: false,
      detail: 'severity Medium is below minSeverity High',
    });
    expect(firstFailure(match, makeAlert({ severity: 'High' }))).toBeUndefined();
  });

  it('compiles a match once', () => {
    const match: Match = { title: ['*x*'] };
    expect(compileMatch(match)).toBe(compileMatch(match));
  });
});
