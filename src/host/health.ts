/**
 * The health function's report: is the configuration valid (settings, rules, destinations), which rules are
 * in use (where from, their version: the blob's ETag or the file's content hash, when they were last
 * checked, and a rejected update), and how large the dead-letter and quarantine backlogs are.
 * It never holds a secret: settings problems name settings, never values; destinations are listed by name
 * and type only; a rules blob's URL has its query string (a SAS) masked; store errors name containers, never
 * connection strings or SAS tokens.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { SettingsError } from '../config/appSettings.js';
import { redactCredentials } from '../config/secret.js';
import { RulesError } from '../routing/load.js';
import { SinkConfigError } from '../sinks/settings.js';
import type { RulesLog, RulesSnapshot, RulesStatus } from '../routing/rulesSource.js';
import type { QuarantineBacklog } from '../storage/blobQuarantine.js';
import type { DeadLetterStore } from '../storage/deadLetterStore.js';

/** Most entries counted per store: beyond it the report says "at least". Listing is paged metadata only. */
export const HEALTH_MAX_COUNTED = 5000;

export interface HealthReport {
  /**
   * `healthy`; `degraded` when dead letters wait, a rules update was rejected, or the rules blob cannot be
   * checked; `unhealthy` when the configuration or a store fails.
   */
  readonly status: 'healthy' | 'degraded' | 'unhealthy';
  readonly checkedAt: string;
  readonly configuration: { readonly valid: boolean; readonly problems: readonly string[] };
  readonly rules?: HealthRules;
  readonly backlog?: {
    readonly deadLetters: Count & { readonly byDestination: Readonly<Record<string, number>> };
    readonly quarantine: Count;
  };
  readonly storeProblems?: readonly string[];
}

/** The rules in use. */
export interface HealthRules {
  /** `blob` when `ROUTES_BLOB_URL` is set, else `file`. */
  readonly source: 'file' | 'blob';
  /** The file's path, or the blob's URL with its query string (a SAS) masked. */
  readonly origin: string;
  /** The file's path (file source only). */
  readonly file?: string;
  /**
   * The blob's ETag (as the portal shows it, without quotes), or the first 16 hex digits of SHA-256 of the
   * file: changes whenever the rules do.
   */
  readonly version: string;
  /** When the rules in use were loaded. */
  readonly loadedAt: string;
  /** When the source was last read successfully, changed or not (for a file: when it was loaded). */
  readonly lastCheckedAt: string;
  /** Longest time between two checks of the blob (`ROUTES_REFRESH_SECONDS`); absent for a file. */
  readonly refreshSeconds?: number;
  readonly destinations: readonly { readonly name: string; readonly type: string }[];
  readonly routes: number;
  readonly mutes: number;
  /** The blob's latest version failed to load: the rules above are still in use. */
  readonly rejected?: { readonly etag: string; readonly problems: readonly string[]; readonly rejectedAt: string };
  /** The blob cannot be checked (unreachable, deleted, refused): the rules above are still in use. */
  readonly refreshFailing?: { readonly since: string; readonly failedChecks: number; readonly error: string };
}

interface Count {
  readonly total: number;
  /** True when counting stopped at {@link HEALTH_MAX_COUNTED}: the backlog is at least `total`. */
  readonly atLeast: boolean;
}

/** What health reads of the app's rules source (`FunctionApp.routing`). */
export interface HealthRouting {
  /** The rules in use, after a check of the blob if one is due. */
  current(log?: RulesLog): Promise<RulesSnapshot>;
  status(): RulesStatus;
}

export interface HealthDependencies {
  /** The app, built (and validated) on first use; rejects with what is wrong. */
  readonly app: () => Promise<{ readonly routing: HealthRouting; readonly deadLetters: DeadLetterStore; readonly quarantine: QuarantineBacklog }>;
  readonly now?: () => Date;
  readonly maxCounted?: number;
}

/**
 * Builds the report; never rejects. It checks the rules blob when a check is due, like any invocation, so a
 * rules change shows here within `ROUTES_REFRESH_SECONDS` even while no events arrive; `log` gets the
 * check's lines.
 */
export async function checkHealth(dependencies: HealthDependencies, log?: RulesLog): Promise<HealthReport> {
  const checkedAt = (dependencies.now ?? (() => new Date()))().toISOString();
  let app: Awaited<ReturnType<HealthDependencies['app']>>;
  try {
    app = await dependencies.app();
  } catch (error) {
    return { status: 'unhealthy', checkedAt, configuration: { valid: false, problems: configurationProblems(error) } };
  }
  const maxCounted = dependencies.maxCounted ?? HEALTH_MAX_COUNTED;
  const rules = describeRules(await app.routing.current(log), app.routing.status());
  const storeProblems: string[] = [];
  const deadLetters = await countDeadLetters(app.deadLetters, maxCounted).catch((error: unknown) => {
    storeProblems.push(describe(error));
    return undefined;
  });
  const quarantine = await countQuarantine(app.quarantine, maxCounted).catch((error: unknown) => {
    storeProblems.push(describe(error));
    return undefined;
  });
  const configuration = { valid: true, problems: [] };
  if (!deadLetters || !quarantine) return { status: 'unhealthy', checkedAt, configuration, rules, storeProblems };
  const rulesNeedAttention = rules.rejected !== undefined || rules.refreshFailing !== undefined;
  return {
    status: deadLetters.total > 0 || rulesNeedAttention ? 'degraded' : 'healthy',
    checkedAt,
    configuration,
    rules,
    backlog: { deadLetters, quarantine },
  };
}

/** The HTTP handler: 200 for healthy or degraded, 503 for unhealthy; the report as JSON either way. */
export function createHealthHandler(dependencies: HealthDependencies): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  return async (_request, context) => {
    const report = await checkHealth(dependencies, context);
    if (report.status === 'unhealthy') context.warn(JSON.stringify({ event: 'health.unhealthy', problems: [...report.configuration.problems, ...(report.storeProblems ?? [])] }));
    return {
      status: report.status === 'unhealthy' ? 503 : 200,
      jsonBody: report,
      headers: { 'cache-control': 'no-store' },
    };
  };
}

function describeRules(current: RulesSnapshot, status: RulesStatus): HealthRules {
  return {
    source: status.source,
    origin: status.origin,
    ...(status.source === 'file' ? { file: status.origin } : {}),
    version: current.version,
    loadedAt: status.loadedAt.toISOString(),
    lastCheckedAt: status.checkedAt.toISOString(),
    ...(status.refreshMs !== undefined ? { refreshSeconds: Math.round(status.refreshMs / 1000) } : {}),
    destinations: [...current.rules.destinations.values()].map((destination) => ({ name: destination.name, type: destination.type })),
    routes: current.rules.routes.length,
    mutes: current.rules.mutes.length,
    ...(status.rejected ? { rejected: { etag: status.rejected.version, problems: status.rejected.problems, rejectedAt: status.rejected.at.toISOString() } } : {}),
    ...(status.refreshFailing
      ? { refreshFailing: { since: status.refreshFailing.since.toISOString(), failedChecks: status.refreshFailing.failedChecks, error: status.refreshFailing.error } }
      : {}),
  };
}

async function countDeadLetters(store: DeadLetterStore, max: number): Promise<Count & { byDestination: Record<string, number> }> {
  const byDestination: Record<string, number> = {};
  let total = 0;
  for await (const letter of store.list()) {
    if (total >= max) return { total, atLeast: true, byDestination };
    total += 1;
    byDestination[letter.destination] = (byDestination[letter.destination] ?? 0) + 1;
  }
  return { total, atLeast: false, byDestination };
}

async function countQuarantine(store: QuarantineBacklog, max: number): Promise<Count> {
  let total = 0;
  for await (const _entry of store.list()) {
    if (total >= max) return { total, atLeast: true };
    total += 1;
  }
  return { total, atLeast: false };
}

/** What is wrong with the configuration, as the errors themselves word it (they name settings, not values). */
function configurationProblems(error: unknown): string[] {
  if (error instanceof SettingsError) return [...error.problems];
  if (error instanceof RulesError) return error.message.split('\n');
  if (error instanceof SinkConfigError) return [error.message];
  return [describe(error)];
}

function describe(error: unknown): string {
  return redactCredentials(error instanceof Error ? error.message : String(error));
}
