/**
 * `routes lint`: what is legal but probably wrong in a loaded rules file (the loader already refused what is
 * illegal). Errors: `${ENV}` variables that are unset or empty. Warnings: expired and soon-expiring mutes,
 * routes that can never be reached, unused destinations, and, given sample records, routes that match none of
 * them and records that match no route.
 */
import { KINDS, SEVERITIES, severityRank, type Finding, type Severity } from '../model/finding.js';
import { globCovers } from './glob.js';
import { formatRulesPath } from './load.js';
import { matches } from './match.js';
import { routeFinding } from './route.js';
import { MATCH_KEYS, type LintIssue, type Match, type Route, type RoutingRules } from './types.js';

export type { LintIssue } from './types.js';

export interface LintOptions {
  /** The environment the forwarder will run with (`process.env`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly now: Date;
  /** Sample records: adds coverage warnings (routes matching none, records matching no route). */
  readonly findings?: readonly Finding[];
  /** Warn about mutes ending within this many days (default 7). */
  readonly expiringWithinDays?: number;
}

/** Stable codes, for filtering and for tests. */
export const LINT_CODES = {
  envUnset: 'env-unset',
  envEmpty: 'env-empty',
  destinationUnused: 'destination-unused',
  noRoutes: 'no-routes',
  routeShadowed: 'route-shadowed',
  muteExpired: 'mute-expired',
  muteExpiring: 'mute-expiring',
  muteNoDestination: 'mute-no-destination',
  routeUnmatched: 'route-unmatched',
  findingUnrouted: 'finding-unrouted',
} as const;

/** At most this many `finding-unrouted` warnings; the rest are summed up in one more. */
const MAX_UNROUTED_LISTED = 20;
const DAY_MS = 86_400_000;

/** Lints loaded rules; the result is in file order (issues about sample records last). */
export function lintRules(rules: RoutingRules, options: LintOptions): LintIssue[] {
  const issues: LintIssue[] = [
    ...lintEnvironment(rules, options.env),
    ...lintDestinations(rules),
    ...lintShadowedRoutes(rules),
    ...lintMutes(rules, options.now, options.expiringWithinDays ?? 7),
  ];
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  if (options.findings !== undefined) issues.push(...lintCoverage(rules, options.findings, options.now));
  return issues;
}

function lintEnvironment(rules: RoutingRules, env: LintOptions['env']): LintIssue[] {
  const issues: LintIssue[] = [];
  for (const destination of rules.destinations.values()) {
    for (const variable of destination.envRefs) {
      const value = env[variable];
      if (value !== undefined && value.trim() !== '') continue;
      const keys = settingKeysReferring(destination.settings, `\${${variable}}`);
      issues.push({
        level: 'error',
        code: value === undefined ? LINT_CODES.envUnset : LINT_CODES.envEmpty,
        path: formatRulesPath(['destinations', destination.name, ...(keys[0] ?? [])]),
        line: destination.line,
        message: `environment variable ${variable} is ${value === undefined ? 'not set' : 'empty'} (destination "${destination.name}")`,
      });
    }
  }
  return issues;
}

/** The paths (inside settings) whose value is exactly `reference`. */
function settingKeysReferring(settings: unknown, reference: string, path: (string | number)[] = []): (string | number)[][] {
  if (settings === reference) return [path];
  if (Array.isArray(settings)) return settings.flatMap((item: unknown, index) => settingKeysReferring(item, reference, [...path, index]));
  if (settings !== null && typeof settings === 'object') {
    return Object.entries(settings).flatMap(([key, item]) => settingKeysReferring(item, reference, [...path, key]));
  }
  return [];
}

function lintDestinations(rules: RoutingRules): LintIssue[] {
  const issues: LintIssue[] = [];
  if (rules.routes.length === 0) {
    issues.push({ level: 'warning', code: LINT_CODES.noRoutes, path: 'routes', message: 'there are no routes: every record is unrouted' });
  }
  const used = new Set(rules.routes.flatMap((route) => route.to));
  for (const destination of rules.destinations.values()) {
    if (used.has(destination.name)) continue;
    issues.push({
      level: 'warning',
      code: LINT_CODES.destinationUnused,
      path: formatRulesPath(['destinations', destination.name]),
      line: destination.line,
      message: `destination "${destination.name}" is not used by any route`,
    });
  }
  return issues;
}

function lintShadowedRoutes(rules: RoutingRules): LintIssue[] {
  const issues: LintIssue[] = [];
  rules.routes.forEach((later, index) => {
    const shadow = rules.routes.slice(0, index).find((earlier) => !earlier.continue && matchCovers(earlier.match, later.match));
    if (shadow === undefined) return;
    issues.push({
      level: 'warning',
      code: LINT_CODES.routeShadowed,
      path: formatRulesPath(['routes', index]),
      line: later.line,
      message: `route "${later.name}" can never match: ${describeRoute(shadow)} (line ${shadow.line}, no continue) already matches everything it matches`,
    });
  });
  return issues;
}

/**
 * True when every finding `inner` matches is also matched by `outer` (conservative: false when unsure).
 * Each of `outer`'s conditions must follow from `inner`'s: `outer` may not have a key `inner` lacks (except
 * severities, where a list and a minimum imply one another), text patterns must be covered one by one.
 */
export function matchCovers(outer: Match, inner: Match): boolean {
  for (const key of MATCH_KEYS) {
    switch (key) {
      case 'kind':
        if (outer.kind === undefined) break;
        if (KINDS.every((kind) => outer.kind?.includes(kind) === true)) break;
        if (inner.kind === undefined || !inner.kind.every((kind) => outer.kind?.includes(kind) === true)) return false;
        break;
      case 'minSeverity': {
        if (outer.minSeverity === undefined) break;
        const least = severityRank(outer.minSeverity);
        const byMinimum = inner.minSeverity !== undefined && severityRank(inner.minSeverity) >= least;
        const byList = inner.severity !== undefined && inner.severity.every((s) => s !== 'Unknown' && severityRank(s) >= least);
        if (!byMinimum && !byList) return false;
        break;
      }
      case 'severity': {
        const allowed = outer.severity;
        if (allowed === undefined) break;
        const byList = inner.severity !== undefined && inner.severity.every((s) => allowed.includes(s));
        const byMinimum = inner.minSeverity !== undefined && knownAtLeast(inner.minSeverity).every((s) => allowed.includes(s));
        if (!byList && !byMinimum) return false;
        break;
      }
      case 'minCvss':
        if (outer.minCvss === undefined) break;
        if (inner.minCvss === undefined || inner.minCvss < outer.minCvss) return false;
        break;
      case 'snapshot':
        if (outer.snapshot === undefined) break;
        if (inner.snapshot !== outer.snapshot) return false;
        break;
      default: {
        const patterns = outer[key];
        if (patterns === undefined) break;
        const innerPatterns = inner[key];
        if (innerPatterns === undefined) return false;
        if (!innerPatterns.every((p) => patterns.some((q) => globCovers(q, p)))) return false;
      }
    }
  }
  return true;
}

function knownAtLeast(minimum: Severity): Severity[] {
  return SEVERITIES.filter((severity) => severity !== 'Unknown' && severityRank(severity) >= severityRank(minimum));
}

function lintMutes(rules: RoutingRules, now: Date, expiringWithinDays: number): LintIssue[] {
  const issues: LintIssue[] = [];
  const nowMs = now.getTime();
  for (const mute of rules.mutes) {
    const path = formatRulesPath(['mutes', mute.index]);
    if (mute.untilMs <= nowMs) {
      issues.push({
        level: 'warning',
        code: LINT_CODES.muteExpired,
        path,
        line: mute.line,
        message: `mute "${mute.name}" expired ${describeAge(nowMs - mute.untilMs, 'ago')} (until ${mute.until}) and is ignored: remove it, or extend until`,
      });
    } else if (mute.untilMs - nowMs <= expiringWithinDays * DAY_MS) {
      issues.push({
        level: 'warning',
        code: LINT_CODES.muteExpiring,
        path,
        line: mute.line,
        message: `mute "${mute.name}" expires ${describeAge(mute.untilMs - nowMs, 'from now')} (until ${mute.until})`,
      });
    }
    if (mute.to.length === 0) {
      issues.push({
        level: 'warning',
        code: LINT_CODES.muteNoDestination,
        path,
        line: mute.line,
        message: `mute "${mute.name}" silences nothing: there are no notification destinations`,
      });
    }
  }
  return issues;
}

function describeAge(ms: number, direction: 'ago' | 'from now'): string {
  const days = Math.floor(ms / DAY_MS);
  if (days >= 1) return `${days} day${days === 1 ? '' : 's'} ${direction}`;
  const hours = Math.floor(ms / 3_600_000);
  return hours >= 1 ? `${hours} hour${hours === 1 ? '' : 's'} ${direction}` : direction === 'ago' ? 'just now' : 'within the hour';
}

function lintCoverage(rules: RoutingRules, findings: readonly Finding[], now: Date): LintIssue[] {
  const issues: LintIssue[] = [];
  const reached = new Set<Route>();
  const unrouted: Finding[] = [];
  for (const finding of findings) {
    const decision = routeFinding(rules, finding, now);
    for (const route of decision.matchedRoutes) reached.add(route);
    if (decision.destinations.length === 0) unrouted.push(finding);
  }
  for (const route of rules.routes) {
    if (reached.has(route)) continue;
    const couldMatch = findings.filter((finding) => matches(route.match, finding)).length;
    issues.push({
      level: 'warning',
      code: LINT_CODES.routeUnmatched,
      path: formatRulesPath(['routes', route.index]),
      line: route.line,
      message:
        `route "${route.name}" matched none of the ${findings.length} records` +
        (couldMatch > 0 ? ` (its match holds for ${couldMatch} of them, but earlier routes without continue took them first)` : ''),
    });
  }
  for (const finding of unrouted.slice(0, MAX_UNROUTED_LISTED)) {
    issues.push({
      level: 'warning',
      code: LINT_CODES.findingUnrouted,
      path: 'routes',
      message: `${finding.kind} ${finding.id} (${finding.severity}, ${JSON.stringify(shorten(finding.title))}) matches no route`,
    });
  }
  if (unrouted.length > MAX_UNROUTED_LISTED) {
    issues.push({
      level: 'warning',
      code: LINT_CODES.findingUnrouted,
      path: 'routes',
      message: `and ${unrouted.length - MAX_UNROUTED_LISTED} more records match no route (${unrouted.length} of ${findings.length} in all)`,
    });
  }
  return issues;
}

function describeRoute(route: Route): string {
  return `route "${route.name}" (${formatRulesPath(['routes', route.index])})`;
}

function shorten(text: string): string {
  return text.length > 100 ? `${text.slice(0, 99)}…` : text;
}
