import { describe, expect, it } from 'vitest';
import { dedupeKey, MemoryLedger } from '../../src/routing/dedupe.js';
import { parseRules } from '../../src/routing/load.js';
import { routeFinding } from '../../src/routing/route.js';
import { makeAlert, makeRecommendation, makeSecureScore, makeVulnerability } from '../support/findings.js';

const NOW = new Date('2026-06-01T00:00:00Z');

const RULES = parseRules(
  `
destinations:
  splunk: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}"}
  splunk-archive: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}", index: archive}
  oncall-teams: {type: teams, url: "\${TEAMS_URL}"}
  oncall-email: {type: email, smtpUrl: "\${SMTP_URL}", from: a@contoso.com, to: [b@contoso.com]}
  platform-teams: {type: teams, url: "\${PLATFORM_URL}"}
routes:
  - name: all-to-splunk
    match: {}
    to: [splunk]
    continue: true
  - name: informational-stop
    match: {kind: alert, severity: Informational}
    to: [splunk]
  - name: high-alerts
    match: {kind: alert, minSeverity: High}
    to: [oncall-teams, oncall-email, splunk]
    continue: true
  - name: k8s
    match: {kind: alert, alertType: "K8S*"}
    to: [platform-teams, oncall-teams]
  - name: after-k8s
    match: {kind: alert}
    to: [oncall-email]
  - name: findings
    match: {kind: finding, minCvss: 9}
    to: [oncall-email, splunk-archive]
mutes:
  - name: quiet-k8s-bindings
    match: {alertType: K8S_ClusterAdminBinding}
    until: "2026-07-01T00:00:00Z"
    reason: migration
    to: [platform-teams]
  - name: old-mute
    match: {alertType: "K8S_*"}
    until: "2026-01-01T00:00:00Z"
    reason: finished long ago
  - name: email-quiet-for-dev
    match: {resourceGroup: "rg-dev*"}
    until: "2026-12-31T00:00:00Z"
    reason: dev noise
    to: [oncall-email]
  - name: everything-quiet
    match: {cluster: quiet-cluster}
    until: "2026-12-31T00:00:00Z"
    reason: lab cluster
`,
  'routes.yaml',
);

function routeNames(names: readonly { name: string }[]): string[] {
  return names.map((item) => item.name);
}

describe('routeFinding', () => {
  it('goes top to bottom; continue lets later routes add; the first match without continue stops', () => {
    const decision = routeFinding(RULES, makeAlert({ severity: 'High' }), NOW);
    expect(routeNames(decision.matchedRoutes)).toEqual(['all-to-splunk', 'high-alerts', 'k8s']);
    // Unique, in first-seen order.
    expect(decision.destinations).toEqual(['splunk', 'oncall-teams', 'oncall-email', 'platform-teams']);
    expect(decision.evaluations.map((e) => [e.route.name, e.matched, e.skipped])).toEqual([
      ['all-to-splunk', true, false],
      ['informational-stop', false, false],
      ['high-alerts', true, false],
      ['k8s', true, false],
      ['after-k8s', false, true],
      ['findings', false, true],
    ]);
  });

  it('explains the routes that did not match with their first failing condition', () => {
    const decision = routeFinding(RULES, makeAlert({ severity: 'Medium', alertType: 'VM_EICAR' }), NOW);
    expect(routeNames(decision.matchedRoutes)).toEqual(['all-to-splunk', 'after-k8s']);
    const failed = Object.fromEntries(decision.evaluations.map((e) => [e.route.name, e.failed?.detail]));
    expect(failed).toEqual({
      'all-to-splunk': undefined,
      'informational-stop': 'severity Medium is not Informational',
      'high-alerts': 'severity Medium is below minSeverity High',
      k8s: 'alertType "VM_EICAR" does not match "K8S*"',
      'after-k8s': undefined,
      findings: undefined,
    });
    expect(decision.evaluations[1]?.failed?.key).toBe('severity');
    expect(decision.evaluations[5]?.skipped).toBe(true);
  });

  it('an Informational alert stops at the Splunk-only route', () => {
    const decision = routeFinding(RULES, makeAlert({ severity: 'Informational' }), NOW);
    expect(decision.destinations).toEqual(['splunk']);
    expect(decision.evaluations.filter((e) => e.skipped).map((e) => e.route.name)).toEqual(['high-alerts', 'k8s', 'after-k8s', 'findings']);
  });

  it('a record only the catch-all matches goes to Splunk alone; an empty rule set routes nothing', () => {
    expect(routeFinding(RULES, makeSecureScore(), NOW).destinations).toEqual(['splunk']);
    const none = parseRules('destinations: {}\nroutes: []\n', 'x');
    const decision = routeFinding(none, makeAlert(), NOW);
    expect(decision).toEqual({ matchedRoutes: [], destinations: [], muted: [], evaluations: [], expiredMutes: [] });
  });

  it('vulnerabilities route by minCvss', () => {
    expect(routeFinding(RULES, makeVulnerability({ cvss: 9.8 }), NOW).destinations).toEqual(['splunk', 'oncall-email', 'splunk-archive']);
    expect(routeFinding(RULES, makeVulnerability({ cvss: 5 }), NOW).destinations).toEqual(['splunk']);
  });

  describe('mutes', () => {
    it('an active mute silences only the destinations in its to', () => {
      const decision = routeFinding(RULES, makeAlert({ severity: 'High' }), NOW);
      expect(decision.muted.map((m) => [m.destination, m.mute.name])).toEqual([['platform-teams', 'quiet-k8s-bindings']]);
      // Mutes do not remove destinations: the decision keeps them, with the mute decision beside.
      expect(decision.destinations).toContain('platform-teams');
    });

    it('lists matching expired mutes and ignores them', () => {
      const decision = routeFinding(RULES, makeAlert({ severity: 'High' }), NOW);
      expect(routeNames(decision.expiredMutes)).toEqual(['old-mute']);
      expect(decision.muted.some((m) => m.mute.name === 'old-mute')).toBe(false);
    });

    it('a mute is active until its until, exclusive', () => {
      const finding = makeAlert({ severity: 'High' });
      const justBefore = routeFinding(RULES, finding, new Date('2026-06-30T23:59:59.999Z'));
      expect(justBefore.muted.map((m) => m.mute.name)).toContain('quiet-k8s-bindings');
      const atUntil = routeFinding(RULES, finding, new Date('2026-07-01T00:00:00Z'));
      expect(atUntil.muted.map((m) => m.mute.name)).not.toContain('quiet-k8s-bindings');
      expect(routeNames(atUntil.expiredMutes)).toEqual(['quiet-k8s-bindings', 'old-mute']);
    });

    it('a mute that does not match does nothing', () => {
      const decision = routeFinding(RULES, makeAlert({ severity: 'High', alertType: 'K8S_Other' }), NOW);
      expect(decision.muted).toEqual([]);
    });

    it('the default to is every notification destination, never Splunk', () => {
      const decision = routeFinding(RULES, makeAlert({ severity: 'High', cluster: 'quiet-cluster', alertType: 'K8S_X' }), NOW);
      expect(decision.destinations).toEqual(['splunk', 'oncall-teams', 'oncall-email', 'platform-teams']);
      expect(decision.muted.map((m) => [m.destination, m.mute.name])).toEqual([
        ['oncall-teams', 'everything-quiet'],
        ['oncall-email', 'everything-quiet'],
        ['platform-teams', 'everything-quiet'],
      ]);
    });

    it('the first active mute wins a destination; others still mute the rest', () => {
      const decision = routeFinding(
        RULES,
        makeAlert({ severity: 'High', cluster: 'quiet-cluster', resourceGroup: 'rg-dev-aks' }),
        NOW,
      );
      expect(decision.muted.map((m) => [m.destination, m.mute.name])).toEqual([
        ['platform-teams', 'quiet-k8s-bindings'],
        ['oncall-email', 'email-quiet-for-dev'],
        ['oncall-teams', 'everything-quiet'],
      ]);
    });

    it('never mutes a splunk-hec destination, even in hand-built rules', () => {
      const splunk = RULES.destinations.get('splunk');
      if (splunk === undefined) throw new Error('no splunk');
      const handBuilt = {
        ...RULES,
        mutes: [{ ...RULES.mutes[3]!, to: ['splunk', 'oncall-teams'] }],
      };
      const decision = routeFinding(handBuilt, makeAlert({ severity: 'High', cluster: 'quiet-cluster' }), NOW);
      expect(decision.muted.map((m) => m.destination)).toEqual(['oncall-teams']);
    });

    it('unrouted records are not checked against mutes', () => {
      const rules = parseRules(
        [
          'destinations: {t: {type: teams, url: "${T}"}}',
          'routes: [{name: only-findings, match: {kind: finding}, to: t}]',
          'mutes: [{name: old, match: {}, until: "2020-01-01T00:00:00Z", reason: r}]',
        ].join('\n'),
        'x',
      );
      expect(routeFinding(rules, makeRecommendation(), NOW)).toMatchObject({ destinations: [], muted: [], expiredMutes: [] });
      expect(routeNames(routeFinding(rules, makeVulnerability(), NOW).expiredMutes)).toEqual(['old']);
    });
  });
});

describe('dedupeKey', () => {
  it('is keyed by destination, kind, id and status', () => {
    const alert = makeAlert();
    const key = dedupeKey('oncall-teams', alert);
    expect(key).toBe(JSON.stringify(['oncall-teams', 'alert', alert.id.toLowerCase(), 'new']));
    expect(dedupeKey('oncall-email', alert)).not.toBe(key);
    expect(dedupeKey('oncall-teams', makeAlert({ status: 'Resolved' }))).not.toBe(key);
    expect(dedupeKey('oncall-teams', makeAlert({ id: 'other' }))).not.toBe(key);
    expect(dedupeKey('oncall-teams', { ...alert, kind: 'recommendation' })).not.toBe(key);
  });

  it('compares ids (ARM ids, alert GUIDs) and statuses case-insensitively', () => {
    const finding = makeVulnerability();
    expect(dedupeKey('d', makeVulnerability({ id: finding.id.toUpperCase(), status: 'UNHEALTHY' }))).toBe(dedupeKey('d', finding));
  });

  it('cannot be confused by separators in ids or names', () => {
    const a = dedupeKey('a/b', makeAlert({ id: 'c', status: 'New' }));
    const b = dedupeKey('a', makeAlert({ id: 'b/c', status: 'New' }));
    expect(a).not.toBe(b);
    const c = dedupeKey('x', makeAlert({ id: 'id_1","new', status: '' }));
    const d = dedupeKey('x', makeAlert({ id: 'id_1', status: 'new' }));
    expect(c).not.toBe(d);
  });
});

describe('MemoryLedger', () => {
  it('claims a key the first time only', async () => {
    const ledger = new MemoryLedger();
    const key = dedupeKey('oncall-teams', makeAlert());
    expect(await ledger.claim(key)).toBe(true);
    expect(await ledger.claim(key)).toBe(false);
    expect(await ledger.claim(dedupeKey('oncall-teams', makeAlert({ status: 'Resolved' })))).toBe(true);
    expect(ledger.size).toBe(2);
  });

  it('keeps at most maxKeys, forgetting the oldest first', async () => {
    const ledger = new MemoryLedger(2);
    expect(await ledger.claim('a')).toBe(true);
    expect(await ledger.claim('b')).toBe(true);
    expect(await ledger.claim('c')).toBe(true);
    expect(ledger.size).toBe(2);
    expect(await ledger.claim('b')).toBe(false);
    expect(await ledger.claim('c')).toBe(false);
    // 'a' was the oldest: forgotten, so it is news again.
    expect(await ledger.claim('a')).toBe(true);
    expect(() => new MemoryLedger(0)).toThrow(RangeError);
  });

  it('gives one winner among concurrent claims', async () => {
    const ledger = new MemoryLedger();
    const results = await Promise.all(Array.from({ length: 10 }, () => ledger.claim('k')));
    expect(results.filter(Boolean)).toHaveLength(1);
  });
});
