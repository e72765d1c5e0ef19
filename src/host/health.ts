/**
 * The health function's report: is the configuration valid (settings, rules, destinations), which rules are
 * loaded (a content hash as their version), and how large the dead-letter and quarantine backlogs are.
 * It never holds a secret: settings problems name settings, never values; destinations are listed by name
 * and type only; store errors name containers, never connection strings or SAS tokens.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { SettingsError } from '../config/appSettings.js';
import { redactCredentials } from '../config/secret.js';
import { RulesError } from '../routing/load.js';
import { SinkConfigError } from '../sinks/settings.js';
import type { QuarantineBacklog } from '../storage/blobQuarantine.js';
import type { DeadLetterStore } from '../storage/deadLetterStore.js';
import type { FunctionApp } from './functionApp.js';

/** Most entries counted per store: beyond it the report says "at least". Listing is paged metadata only. */
export const HEALTH_MAX_COUNTED = 5000;

export interface HealthReport {
  /** `healthy`; `degraded` when dead letters wait; `unhealthy` when the configuration or a store fails. */
  readonly status: 'healthy' | 'degraded' | 'unhealthy';
  readonly checkedAt: string;
  readonly configuration: { readonly valid: boolean; readonly problems: readonly string[] };
  readonly rules?: {
    readonly file: string;
    /** The first 16 hex digits of SHA-256 of the rules file: changes whenever the file does. */
    readonly version: string;
    readonly destinations: readonly { readonly name: string; readonly type: string }[];
    readonly routes: number;
    readonly mutes: number;
  };
  readonly backlog?: {
    readonly deadLetters: Count & { readonly byDestination: Readonly<Record<string, number>> };
    readonly quarantine: Count;
  };
  readonly storeProblems?: readonly string[];
}

interface Count {
  readonly total: number;
  /** True when counting stopped at {@link HEALTH_MAX_COUNTED}: the backlog is at least `total`. */
  readonly atLeast: boolean;
}

export interface HealthDependencies {
  /** The app, built (and validated) on first use; rejects with what is wrong. */
  readonly app: () => Promise<Pick<FunctionApp, 'settings' | 'rules'> & { readonly deadLetters: DeadLetterStore; readonly quarantine: QuarantineBacklog }>;
  readonly now?: () => Date;
  readonly maxCounted?: number;
}

/** Builds the report; never rejects. */
export async function checkHealth(dependencies: HealthDependencies): Promise<HealthReport> {
  const checkedAt = (dependencies.now ?? (() => new Date()))().toISOString();
  let app: Awaited<ReturnType<HealthDependencies['app']>>;
  try {
    app = await dependencies.app();
  } catch (error) {
    return { status: 'unhealthy', checkedAt, configuration: { valid: false, problems: configurationProblems(error) } };
  }
  const maxCounted = dependencies.maxCounted ?? HEALTH_MAX_COUNTED;
  const rulesFile = app.settings.routesFile;
  let version = 'unreadable';
  try {
    version = createHash('sha256').update(await readFile(rulesFile)).digest('hex').slice(0, 16);
  } catch {
    // Loaded at start-up and gone since: the version says so; the loaded rules still apply.
  }
  const rules = {
    file: rulesFile,
    version,
    destinations: [...app.rules.destinations.values()].map((destination) => ({ name: destination.name, type: destination.type })),
    routes: app.rules.routes.length,
    mutes: app.rules.mutes.length,
  };
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
  return {
    status: deadLetters.total > 0 ? 'degraded' : 'healthy',
    checkedAt,
    configuration,
    rules,
    backlog: { deadLetters, quarantine },
  };
}

/** The HTTP handler: 200 for healthy or degraded, 503 for unhealthy; the report as JSON either way. */
export function createHealthHandler(dependencies: HealthDependencies): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  return async (_request, context) => {
    const report = await checkHealth(dependencies);
    if (report.status === 'unhealthy') context.warn(JSON.stringify({ event: 'health.unhealthy', problems: [...report.configuration.problems, ...(report.storeProblems ?? [])] }));
    return {
      status: report.status === 'unhealthy' ? 503 : 200,
      jsonBody: report,
      headers: { 'cache-control': 'no-store' },
    };
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
