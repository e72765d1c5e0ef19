/**
 * What the app's Functions share, built once per process when the first of them is loaded: the validated
 * settings, the routing (the rules, one sink per destination with their connection pools, and the delivery,
 * kept current by a rules source), the notification ledger and the quarantine and dead-letter stores. The
 * Event Hub function and the re-drive timer thus see the same rules and reuse the same connections, and a
 * bad setting or rules file (or rules blob) stops the whole app at start-up, loudly, instead of failing every
 * invocation later. A rules blob that changes later is picked up without a restart (src/routing/rulesSource.ts);
 * each invocation takes the routing current when it starts.
 */
import { readFunctionSettings, type FunctionSettings } from '../config/appSettings.js';
import { createDelivery, type Delivery } from '../delivery/deliver.js';
import { DEFAULT_RETRY_POLICY } from '../delivery/retry.js';
import { createRulesSource, fileRulesReader, type RoutingState, type RulesReader, type RulesSource } from '../routing/rulesSource.js';
import { createHttpClient } from '../sinks/http.js';
import { closeSinks, createSinks } from '../sinks/registry.js';
import type { Sink } from '../sinks/sink.js';
import { createBlobDeadLetterStore, type BlobDeadLetterStore } from '../storage/blobDeadLetters.js';
import { createBlobLedger } from '../storage/blobLedger.js';
import { blobConnectionOf } from '../storage/blobContainer.js';
import type { DeliveryLedger } from '../delivery/contracts.js';
import { rememberUnconfirmed } from '../delivery/unconfirmed.js';
import { createBlobQuarantineStore, type BlobQuarantineStore } from '../storage/blobQuarantine.js';
import { connectRulesBlob } from '../storage/rulesBlob.js';
import { startMetricsExport } from '../telemetry/azureMonitor.js';

/** What the app builds from each version of the rules. */
export interface RoutingParts {
  /** One sink per destination of the rules. */
  readonly sinks: ReadonlyMap<string, Sink>;
  /** The Event Hub function's delivery (its retry policy has the settings' time budget). */
  readonly delivery: Delivery;
}

/** The routing in use: the rules, their version and origin, their sinks and delivery. */
export type AppRouting = RoutingState<RoutingParts>;

export interface FunctionApp {
  readonly settings: FunctionSettings;
  /**
   * The rules and what is built from them, current: take them per invocation (`routing.use(context, ...)`
   * or `routing.current(context)`), never once for the life of the process.
   */
  readonly routing: RulesSource<RoutingParts>;
  /** One ledger in blob storage for every instance, retry, re-run and re-drive: people are notified once. */
  readonly ledger: DeliveryLedger;
  readonly quarantine: BlobQuarantineStore;
  readonly deadLetters: BlobDeadLetterStore;
}

/** What tests may replace. */
export interface FunctionAppOptions {
  /** The clock of the rules source's refresh interval. */
  readonly now?: () => Date;
  /** Waits between tries of the first rules read after a transient failure (default: the source's). */
  readonly startRetryDelaysMs?: readonly number[];
}

/**
 * Builds the app from the environment: settings and rules are checked, and every destination is built, so an
 * unset `${ENV}` secret or a bad URL is reported at start-up.
 *
 * @throws SettingsError (a rules blob that cannot be read included), RulesError or SinkConfigError, naming
 *   every problem found.
 */
export async function createFunctionApp(env: Readonly<Record<string, string | undefined>> = process.env, options: FunctionAppOptions = {}): Promise<FunctionApp> {
  const settings = readFunctionSettings(env);
  // Started before the first batch, so that everything the app records is exported.
  if (settings.telemetry) await startMetricsExport(settings.telemetry);
  const connection = await blobConnectionOf(settings.storage);
  // Shared by the pipeline (claims) and delivery (confirms): a confirmation lost to a store outage is
  // completed, not re-sent, when the host runs the batch again.
  const ledger = rememberUnconfirmed(createBlobLedger({ ...connection, containerName: settings.ledgerContainer, leaseMs: settings.ledgerLeaseMs }));
  const deadLetters = createBlobDeadLetterStore({ ...connection, containerName: settings.deadLetterContainer });
  // One HTTP client (keep-alive pools) for every version of the rules: sinks built for a new version reuse
  // its connections, and it is never closed under a batch still delivering with the previous version.
  const http = createHttpClient();
  const reader: RulesReader =
    settings.routes.kind === 'blob'
      ? connectRulesBlob({ url: settings.routes.url, connection, storageSetting: settings.storage.setting })
      : fileRulesReader(settings.routes.path);
  const routing = await createRulesSource<RoutingParts>({
    reader,
    refreshMs: settings.routesRefreshMs,
    build: (rules) => {
      const sinks = createSinks(rules, { env, http });
      return { sinks, delivery: createDelivery({ rules, sinks, ledger, deadLetters, policy: { ...DEFAULT_RETRY_POLICY, maxTotalMs: settings.deliveryBudgetMs } }) };
    },
    // A replaced version's sinks are closed once the last invocation using them is done (SMTP pools; the
    // HTTP sinks share the client above and close nothing).
    release: ({ sinks }) => closeSinks(sinks),
    ...(options.now ? { now: options.now } : {}),
    ...(options.startRetryDelaysMs ? { startRetryDelaysMs: options.startRetryDelaysMs } : {}),
  });
  return {
    settings,
    routing,
    ledger,
    quarantine: createBlobQuarantineStore({ ...connection, containerName: settings.quarantineContainer }),
    deadLetters,
  };
}

let shared: Promise<FunctionApp> | undefined;

/**
 * The process's one {@link FunctionApp}, built from `process.env` at the first call. A failed build is not
 * kept: the health endpoint's next request tries again (the functions that awaited it at load stay
 * unregistered until the host restarts the worker).
 */
export function functionApp(): Promise<FunctionApp> {
  shared ??= createFunctionApp().catch((error: unknown) => {
    shared = undefined;
    throw error;
  });
  return shared;
}
