/**
 * Match conditions: does a route's or a mute's `match` hold for a finding, and why (for `routes test`).
 *
 * Every given key must hold; a list means any of its values; text keys are case-insensitive globs (`*`, `?`);
 * `kind` is exact; `minSeverity` never matches Unknown; `minCvss` and `cluster` fail when the finding has none.
 * An empty text field (e.g. `status` of a secure score) counts as missing, so even `"*"` does not match it.
 *
 * A `Match` is compiled once (the loader does it for every route and mute; a hand-built one is compiled on first
 * use) and the compiled form is cached against the (frozen) object, so nothing is recompiled per record.
 */
import { severityRank, type Finding, type Severity } from '../model/finding.js';
import { compileGlob, type Glob } from './glob.js';
import type { ConditionResult, Match, MatchKey } from './types.js';

/** One compiled condition. */
interface Condition {
  readonly key: MatchKey;
  /** Fast test: no strings built. */
  test(finding: Finding): boolean;
  /** The same test, with a human-readable detail. */
  explain(finding: Finding): ConditionResult;
}

/** A compiled `Match`: its conditions in MATCH_KEYS order. */
export interface CompiledMatch {
  readonly conditions: readonly Condition[];
}

const compiledMatches = new WeakMap<Match, CompiledMatch>();

/** Compiles a match (cached: compiling the same object twice returns the first result). */
export function compileMatch(match: Match): CompiledMatch {
  const cached = compiledMatches.get(match);
  if (cached !== undefined) return cached;
  const conditions: Condition[] = [];
  if (match.kind !== undefined) conditions.push(kindCondition(match.kind));
  if (match.minSeverity !== undefined) conditions.push(minSeverityCondition(match.minSeverity));
  if (match.severity !== undefined) conditions.push(severityCondition(match.severity));
  if (match.status !== undefined) conditions.push(textCondition('status', match.status, (f) => f.status));
  if (match.alertType !== undefined) conditions.push(textCondition('alertType', match.alertType, (f) => f.alertType));
  if (match.tactic !== undefined) conditions.push(listCondition('tactic', 'tactic', 'tactics', match.tactic, (f) => f.tactics));
  if (match.subscription !== undefined) {
    conditions.push(textCondition('subscription', match.subscription, (f) => f.subscriptionId));
  }
  if (match.resourceGroup !== undefined) {
    conditions.push(textCondition('resourceGroup', match.resourceGroup, (f) => f.resourceGroup));
  }
  if (match.resource !== undefined) conditions.push(textCondition('resource', match.resource, (f) => f.resourceId));
  if (match.cluster !== undefined) conditions.push(textCondition('cluster', match.cluster, (f) => f.cluster));
  if (match.title !== undefined) conditions.push(textCondition('title', match.title, (f) => f.title));
  if (match.cve !== undefined) conditions.push(listCondition('cve', 'CVE', 'CVEs', match.cve, (f) => f.cves));
  if (match.minCvss !== undefined) conditions.push(minCvssCondition(match.minCvss));
  if (match.snapshot !== undefined) conditions.push(snapshotCondition(match.snapshot));
  const result: CompiledMatch = Object.freeze({ conditions: Object.freeze(conditions) });
  compiledMatches.set(match, result);
  return result;
}

/** Every condition of `match` with its outcome and why, in MATCH_KEYS order (`[]` for `match: {}`). */
export function evaluateMatch(match: Match, finding: Finding): ConditionResult[] {
  return compileMatch(match).conditions.map((condition) => condition.explain(finding));
}

/** True when every condition holds; stops at the first failure and builds no text. */
export function matches(match: Match, finding: Finding): boolean {
  for (const condition of compileMatch(match).conditions) {
    if (!condition.test(finding)) return false;
  }
  return true;
}

/** The first failing condition, explained; undefined when the match holds. */
export function firstFailure(match: Match, finding: Finding): ConditionResult | undefined {
  for (const condition of compileMatch(match).conditions) {
    if (!condition.test(finding)) return condition.explain(finding);
  }
  return undefined;
}

function kindCondition(kinds: readonly string[]): Condition {
  return {
    key: 'kind',
    test: (f) => kinds.includes(f.kind),
    explain: (f) => oneOf('kind', f.kind, kinds, kinds.includes(f.kind)),
  };
}

function severityCondition(severities: readonly Severity[]): Condition {
  const test = (f: Finding): boolean => severities.includes(severityOf(f));
  return {
    key: 'severity',
    test,
    explain: (f) => oneOf('severity', severityOf(f), severities, test(f)),
  };
}

function minSeverityCondition(minimum: Severity): Condition {
  const minimumRank = severityRank(minimum);
  const test = (f: Finding): boolean => {
    const severity = severityOf(f);
    return severity !== 'Unknown' && severityRank(severity) >= minimumRank;
  };
  return {
    key: 'minSeverity',
    test,
    explain: (f) => {
      const severity = severityOf(f);
      if (severity === 'Unknown') {
        return result('minSeverity', false, `severity Unknown never meets minSeverity ${minimum}`);
      }
      return test(f)
        ? result('minSeverity', true, `severity ${severity} meets minSeverity ${minimum}`)
        : result('minSeverity', false, `severity ${severity} is below minSeverity ${minimum}`);
    },
  };
}

/** A text key compared with globs; an absent or empty field fails (`no cluster`). */
function textCondition(
  key: MatchKey,
  patterns: readonly string[],
  field: (finding: Finding) => string | undefined,
): Condition {
  const globs = patterns.map(compileGlob);
  const test = (f: Finding): boolean => {
    const value = field(f);
    if (value === undefined || value === '') return false;
    return matchingGlob(globs, value.toLowerCase()) !== undefined;
  };
  return {
    key,
    test,
    explain: (f) => {
      const value = field(f);
      if (value === undefined || value === '') return result(key, false, `no ${key}`);
      const hit = matchingGlob(globs, value.toLowerCase());
      if (hit !== undefined) return result(key, true, `${key} ${quote(value)} matches ${quote(hit.pattern)}`);
      return result(key, false, `${key} ${quote(value)} ${noneOf(globs, 'does not match', 'matches none of')}`);
    },
  };
}

/** A key over one of the finding's lists (tactics, CVEs): holds when any value matches any pattern. */
function listCondition(
  key: MatchKey,
  singular: string,
  plural: string,
  patterns: readonly string[],
  field: (finding: Finding) => readonly string[],
): Condition {
  const globs = patterns.map(compileGlob);
  const firstHit = (values: readonly string[]): { value: string; glob: Glob } | undefined => {
    for (const value of values) {
      const glob = matchingGlob(globs, value.toLowerCase());
      if (glob !== undefined) return { value, glob };
    }
    return undefined;
  };
  return {
    key,
    test: (f) => firstHit(field(f)) !== undefined,
    explain: (f) => {
      const values = field(f);
      if (values.length === 0) return result(key, false, `no ${plural}`);
      const hit = firstHit(values);
      if (hit !== undefined) {
        return result(key, true, `${singular} ${quote(hit.value)} matches ${quote(hit.glob.pattern)}`);
      }
      return values.length === 1
        ? result(key, false, `${singular} ${quoteList(values)} ${noneOf(globs, 'does not match', 'matches none of')}`)
        : result(key, false, `${plural} ${quoteList(values)} ${noneOf(globs, 'do not match', 'match none of')}`);
    },
  };
}

function minCvssCondition(minimum: number): Condition {
  const test = (f: Finding): boolean => typeof f.cvss === 'number' && f.cvss >= minimum;
  return {
    key: 'minCvss',
    test,
    explain: (f) => {
      if (typeof f.cvss !== 'number' || Number.isNaN(f.cvss)) return result('minCvss', false, 'no cvss');
      return test(f)
        ? result('minCvss', true, `cvss ${f.cvss} >= ${minimum}`)
        : result('minCvss', false, `cvss ${f.cvss} is below minCvss ${minimum}`);
    },
  };
}

function snapshotCondition(wanted: boolean): Condition {
  const test = (f: Finding): boolean => f.snapshot === wanted;
  return {
    key: 'snapshot',
    test,
    explain: (f) =>
      test(f)
        ? result('snapshot', true, `snapshot is ${String(wanted)}`)
        : result('snapshot', false, `snapshot is ${String(f.snapshot === true)}, not ${String(wanted)}`),
  };
}

function severityOf(finding: Finding): Severity {
  // The type says Severity, but a hand-made or future record may lack one: missing sorts as Unknown.
  return finding.severity ?? 'Unknown';
}

function matchingGlob(globs: readonly Glob[], lowerValue: string): Glob | undefined {
  for (const glob of globs) {
    if (glob.testLower(lowerValue)) return glob;
  }
  return undefined;
}

function oneOf(key: MatchKey, actual: string, wanted: readonly string[], ok: boolean): ConditionResult {
  if (wanted.length === 1) {
    return ok ? result(key, true, `${key} is ${actual}`) : result(key, false, `${key} ${actual} is not ${wanted[0] ?? ''}`);
  }
  const list = wanted.join(', ');
  return ok
    ? result(key, true, `${key} ${actual} is one of ${list}`)
    : result(key, false, `${key} ${actual} is none of ${list}`);
}

function noneOf(globs: readonly Glob[], single: string, several: string): string {
  return globs.length === 1
    ? `${single} ${quote(globs[0]?.pattern ?? '')}`
    : `${several} ${quoteList(globs.map((glob) => glob.pattern))}`;
}

function result(key: MatchKey, ok: boolean, detail: string): ConditionResult {
  return { key, ok, detail };
}

/** Details stay readable: long values (titles, ARM ids) are cut, long lists summarised. */
const MAX_VALUE_CHARS = 160;
const MAX_LISTED = 8;

function quote(value: string): string {
  return JSON.stringify(value.length > MAX_VALUE_CHARS ? `${value.slice(0, MAX_VALUE_CHARS - 1)}…` : value);
}

function quoteList(values: readonly string[]): string {
  const shown = values.slice(0, MAX_LISTED).map(quote).join(', ');
  return values.length > MAX_LISTED ? `${shown} and ${values.length - MAX_LISTED} more` : shown;
}
