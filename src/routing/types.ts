/**
 * The validated, typed routing rules (see the rules file in architecture.md). Code downstream of the loader
 * sees only these frozen objects.
 */
import type { Finding, Kind, Severity } from '../model/finding.js';

export const DESTINATION_TYPES = ['splunk-hec', 'teams', 'email', 'webhook'] as const;
export type DestinationType = (typeof DESTINATION_TYPES)[number];

/** One destination as configured. Settings keep `${ENV}` references unresolved; delivery resolves them. */
export interface Destination {
  readonly name: string;
  readonly type: DestinationType;
  /** Notification destinations (teams, email, webhook) are muted and deduplicated; splunk-hec is not. */
  readonly notify: boolean;
  /** Dedupe applies (default: on for notification destinations, off for splunk-hec). */
  readonly dedupe: boolean;
  /** Every other key of the destination, as written (strings holding `${ENV}` are kept verbatim). */
  readonly settings: Readonly<Record<string, unknown>>;
  /** Names of the environment variables the destination refers to. */
  readonly envRefs: readonly string[];
  /** 1-based line in the rules file. */
  readonly line: number;
}

/** The match keys of the design; every given key must hold, a list means any of its values. */
export interface Match {
  readonly kind?: readonly Kind[];
  readonly minSeverity?: Severity;
  readonly severity?: readonly Severity[];
  readonly status?: readonly string[];
  readonly alertType?: readonly string[];
  readonly tactic?: readonly string[];
  readonly subscription?: readonly string[];
  readonly resourceGroup?: readonly string[];
  readonly resource?: readonly string[];
  readonly cluster?: readonly string[];
  readonly title?: readonly string[];
  readonly cve?: readonly string[];
  readonly minCvss?: number;
  readonly snapshot?: boolean;
}

export const MATCH_KEYS = [
  'kind',
  'minSeverity',
  'severity',
  'status',
  'alertType',
  'tactic',
  'subscription',
  'resourceGroup',
  'resource',
  'cluster',
  'title',
  'cve',
  'minCvss',
  'snapshot',
] as const;
export type MatchKey = (typeof MATCH_KEYS)[number];

export interface Route {
  readonly name: string;
  /** Position in `routes` (0-based), for messages like `routes[2]`. */
  readonly index: number;
  readonly match: Match;
  readonly to: readonly string[];
  readonly continue: boolean;
  readonly line: number;
}

export interface Mute {
  readonly name: string;
  readonly index: number;
  readonly match: Match;
  /** ISO 8601 instant; the mute is ignored from then on. */
  readonly until: string;
  readonly untilMs: number;
  readonly reason: string;
  /** Destinations it silences; default: every notification destination (never splunk-hec). */
  readonly to: readonly string[];
  readonly line: number;
}

export interface RoutingRules {
  /** Where the rules came from (a path, or `<inline>`). */
  readonly source: string;
  readonly destinations: ReadonlyMap<string, Destination>;
  readonly routes: readonly Route[];
  readonly mutes: readonly Mute[];
}

/** Why a condition held or failed, for `routes test`. */
export interface ConditionResult {
  readonly key: MatchKey;
  readonly ok: boolean;
  /** e.g. `severity Low is below minSeverity High`, `resourceGroup "rg-dev" matches none of "rg-prod-*"`. */
  readonly detail: string;
}

export interface RouteEvaluation {
  readonly route: Route;
  readonly matched: boolean;
  /** The first failing condition when not matched. */
  readonly failed?: ConditionResult;
  /** True when an earlier matching route without `continue` stopped evaluation before this one. */
  readonly skipped: boolean;
}

export interface MuteDecision {
  readonly destination: string;
  readonly mute: Mute;
}

/** What routing decided for one finding, before dedupe. */
export interface RouteDecision {
  /** Routes that matched (and were reached), in order. */
  readonly matchedRoutes: readonly Route[];
  /** Destinations the finding goes to, unique, in first-seen order, mutes NOT applied. */
  readonly destinations: readonly string[];
  /** Destinations silenced by an active mute (subset of `destinations`). */
  readonly muted: readonly MuteDecision[];
  /** Every route's evaluation, in file order. */
  readonly evaluations: readonly RouteEvaluation[];
  /** Mutes that were past their `until` and therefore ignored, yet matched the finding. */
  readonly expiredMutes: readonly Mute[];
}

/** A ledger of notifications already sent, keyed by (destination, kind, id, status). */
export interface NotificationLedger {
  /**
   * Claims the key: true the first time, false when it was claimed before (a duplicate).
   * Implementations must be atomic across concurrent callers.
   */
  claim(key: string): Promise<boolean>;
}

export type { Finding };

/**
 * One problem found while loading a rules file. `path` names the key (`routes[2].to`); it is `''` for a YAML
 * syntax error or a problem with the file as a whole. `line` is 1-based, in the rules file.
 */
export interface RulesIssue {
  readonly path: string;
  readonly line?: number;
  readonly message: string;
}

/** One finding of `routes lint`. `code` is stable (`mute-expired`, `route-shadowed`...), for filtering. */
export interface LintIssue {
  readonly level: 'error' | 'warning';
  readonly code: string;
  /** The key concerned (`mutes[0].until`, `destinations.splunk`), or `''` for the file as a whole. */
  readonly path: string;
  readonly line?: number;
  readonly message: string;
}
