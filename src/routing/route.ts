/**
 * Routing: which destinations a finding goes to, which of them an active mute silences, and why (for
 * `routes test`). Runs once per record, so it does no compiling and builds text only for the first failing
 * condition of a route that did not match.
 */
import { firstFailure, matches } from './match.js';
import type { Finding, Mute, MuteDecision, Route, RouteDecision, RouteEvaluation, RoutingRules } from './types.js';

/**
 * Routes top to bottom: every matching route adds its destinations (unique, first-seen order); the first
 * matching route without `continue: true` stops, and the routes after it are `skipped`. Then each mute that
 * matches and covers a routed notification destination either silences it (while `now` < `until`; the
 * first such mute wins a destination) or, once expired, is reported in `expiredMutes`. splunk-hec destinations
 * are never muted.
 */
export function routeFinding(rules: RoutingRules, finding: Finding, now: Date): RouteDecision {
  const evaluations: RouteEvaluation[] = [];
  const matchedRoutes: Route[] = [];
  const destinations: string[] = [];
  let stopped = false;
  for (const route of rules.routes) {
    if (stopped) {
      evaluations.push(fixedEvaluations(route).skipped);
      continue;
    }
    const failed = firstFailure(route.match, finding);
    if (failed !== undefined) {
      evaluations.push({ route, matched: false, failed, skipped: false });
      continue;
    }
    evaluations.push(fixedEvaluations(route).matched);
    matchedRoutes.push(route);
    for (const name of route.to) {
      if (!destinations.includes(name)) destinations.push(name);
    }
    if (!route.continue) stopped = true;
  }

  const muted: MuteDecision[] = [];
  const expiredMutes: Mute[] = [];
  if (destinations.length > 0 && rules.mutes.length > 0) {
    const nowMs = now.getTime();
    for (const mute of rules.mutes) {
      const active = mute.untilMs > nowMs;
      // Only the routed notification destinations this mute covers (and, when active, not yet muted).
      let covered: string[] | undefined;
      for (const name of destinations) {
        if (!mute.to.includes(name) || rules.destinations.get(name)?.notify !== true) continue;
        if (active && muted.some((decision) => decision.destination === name)) continue;
        (covered ??= []).push(name);
      }
      if (covered === undefined || !matches(mute.match, finding)) continue;
      if (active) {
        for (const destination of covered) muted.push({ destination, mute });
      } else {
        expiredMutes.push(mute);
      }
    }
  }
  return { matchedRoutes, destinations, muted, evaluations, expiredMutes };
}

/** The evaluations that do not depend on the record, made once per route and shared (they are frozen). */
const fixedByRoute = new WeakMap<Route, { readonly matched: RouteEvaluation; readonly skipped: RouteEvaluation }>();

function fixedEvaluations(route: Route): { readonly matched: RouteEvaluation; readonly skipped: RouteEvaluation } {
  let fixed = fixedByRoute.get(route);
  if (fixed === undefined) {
    fixed = Object.freeze({
      matched: Object.freeze({ route, matched: true, skipped: false }),
      skipped: Object.freeze({ route, matched: false, skipped: true }),
    });
    fixedByRoute.set(route, fixed);
  }
  return fixed;
}
