/**
 * What the app's Functions share, built once per process when the first of them is loaded: the validated
 * settings, the rules, one sink per destination (with their connection pools), the notification ledger and
 * the quarantine and dead-letter stores. The Event Hub function and the re-drive timer thus see the same
 * rules and reuse the same connections, and a bad setting or rules file stops the whole app at start-up,
 * loudly, instead of failing every invocation later.
 */
import { readFunctionSettings, type FunctionSettings } from '../config/appSettings.js';
import { createDelivery, type Delivery } from '../delivery/deliver.js';
import { DEFAULT_RETRY_POLICY } from '../delivery/retry.js';
import { loadRulesFile } from '../routing/load.js';
import type { RoutingRules } from '../routing/types.js';
import { createHttpClient } from '../sinks/http.js';
import { createSinks } from '../sinks/registry.js';
import type { Sink } from '../sinks/sink.js';
import { createBlobDeadLetterStore, type BlobDeadLetterStore } from '../storage/blobDeadLetters.js';
import { createBlobLedger } from '../storage/blobLedger.js';
import { blobConnectionOf } from '../storage/blobContainer.js';
import type { DeliveryLedger } from '../delivery/contracts.js';
import { rememberUnconfirmed } from '../delivery/unconfirmed.js';
import { createBlobQuarantineStore, type BlobQuarantineStore } from '../storage/blobQuarantine.js';

export interface FunctionApp {
  readonly settings: FunctionSettings;
  readonly rules: RoutingRules;
  readonly sinks: ReadonlyMap<string, Sink>;
  /** One ledger in blob storage for every instance, retry, re-run and re-drive: people are notified once. */
  readonly ledger: DeliveryLedger;
  readonly quarantine: BlobQuarantineStore;
  readonly deadLetters: BlobDeadLetterStore;
  /** The Event Hub function's delivery (its retry policy has the settings' time budget). */
  readonly delivery: Delivery;
}

/**
 * Builds the app from the environment: settings and rules are checked, and every destination is built, so an
 * unset `${ENV}` secret or a bad URL is reported at start-up.
 *
 * @throws SettingsError, RulesError or SinkConfigError, naming every problem found.
 */
export async function createFunctionApp(env: Readonly<Record<string, string | undefined>> = process.env): Promise<FunctionApp> {
  const settings = readFunctionSettings(env);
  const rules = await loadRulesFile(settings.routesFile);
  const sinks = createSinks(rules, { env, http: createHttpClient() });
  const connection = await blobConnectionOf(settings.storage);
  // Shared by the pipeline (claims) and delivery (confirms): a confirmation lost to a store outage is
  // completed, not re-sent, when the host runs the batch again.
  const ledger = rememberUnconfirmed(createBlobLedger({ ...connection, containerName: settings.ledgerContainer, leaseMs: settings.ledgerLeaseMs }));
  const deadLetters = createBlobDeadLetterStore({ ...connection, containerName: settings.deadLetterContainer });
  return {
    settings,
    rules,
    sinks,
    ledger,
    quarantine: createBlobQuarantineStore({ ...connection, containerName: settings.quarantineContainer }),
    deadLetters,
    delivery: createDelivery({ rules, sinks, ledger, deadLetters, policy: { ...DEFAULT_RETRY_POLICY, maxTotalMs: settings.deliveryBudgetMs } }),
  };
}

let shared: Promise<FunctionApp> | undefined;

/** The process's one {@link FunctionApp}, built from `process.env` at the first call. */
export function functionApp(): Promise<FunctionApp> {
  shared ??= createFunctionApp();
  return shared;
}
