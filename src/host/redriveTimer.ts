/**
 * The re-drive timer's handler: runs `redriveDeadLetters` over the dead-letter container and logs, through
 * the invocation's context, one `run.summary` line (host `redrive`), a warning per expired or unreadable
 * letter, and each delivery retry. It throws only when a store cannot be used (the dead-letter container
 * or the ledger: a `StoreError`), so the failure shows in the Function's monitoring; letters that still
 * fail are not an error of the run, they are scheduled again.
 */
import type { InvocationContext, Timer } from '@azure/functions';
import type { DeliveryLedger } from '../delivery/contracts.js';
import { accountRedrive, redriveDeadLetters, type RedriveLetterEvent, type RedriveOptions, type RedriveResult } from '../delivery/redrive.js';
import type { RoutingAccess } from '../routing/rulesSource.js';
import { recordRun } from '../telemetry/metrics.js';
import type { RoutingRules } from '../routing/types.js';
import type { Sink } from '../sinks/sink.js';
import type { DeadLetterStore } from '../storage/deadLetterStore.js';
import { StoreError } from '../storage/storeError.js';

/**
 * How long one invocation claims letters: `host.json`'s `functionTimeout` is 10 minutes, and what is in
 * flight when the budget ends (one window's delivery, at most the retry policy's minute) must still settle.
 */
export const REDRIVE_RUN_BUDGET_MS = 8 * 60_000;

/** The rules a re-drive sends with: each letter goes to the current rules' destination of its name. */
export interface RedriveRouting {
  readonly rules: RoutingRules;
  /** One sink per destination of the rules. */
  readonly sinks: ReadonlyMap<string, Sink>;
  /** The rules' version, written in the run's `run.summary` line (`rulesVersion`) when known. */
  readonly version?: string;
}

interface TimerBasics extends Pick<RedriveOptions, 'policy' | 'retry' | 'now' | 'minIntervalMs' | 'maxIntervalMs' | 'maxAgeMs' | 'claimMs'> {
  readonly store: DeadLetterStore;
  readonly ledger: DeliveryLedger;
  /** Default {@link REDRIVE_RUN_BUDGET_MS}. */
  readonly budgetMs?: number;
}

/** Rules fixed for the handler's life. */
interface FixedRedriveRouting {
  readonly rules: RoutingRules;
  readonly sinks: ReadonlyMap<string, Sink>;
  readonly routing?: never;
}

/** Rules taken afresh by each run, which keeps them until it ends (the Function app's rules source). */
interface CurrentRedriveRouting {
  readonly routing: RoutingAccess<RedriveRouting>;
  readonly rules?: never;
  readonly sinks?: never;
}

export type RedriveTimerDependencies = TimerBasics & (FixedRedriveRouting | CurrentRedriveRouting);

/** The timer handler. Resolves with the run's counts; rejects with the `StoreError` of a store that failed. */
export function createRedriveTimerHandler(dependencies: RedriveTimerDependencies): (timer: Timer, context: InvocationContext) => Promise<RedriveResult> {
  if (dependencies.routing !== undefined) {
    const source = dependencies.routing;
    return (timer, context) => source.use(context, (routing) => runRedrive(dependencies, routing, timer, context));
  }
  const fixed: RedriveRouting = { rules: dependencies.rules, sinks: dependencies.sinks };
  return (timer, context) => runRedrive(dependencies, fixed, timer, context);
}

async function runRedrive(dependencies: TimerBasics, routing: RedriveRouting, timer: Timer, context: InvocationContext): Promise<RedriveResult> {
  const clock = dependencies.now ?? (() => new Date());
  const startedAt = clock();
  const { store, budgetMs, ledger, policy, retry, now, minIntervalMs, maxIntervalMs, maxAgeMs, claimMs } = dependencies;
  let result: RedriveResult;
  try {
    result = await redriveDeadLetters({
      store,
      ledger,
      rules: routing.rules,
      sinks: routing.sinks,
      ...(policy !== undefined ? { policy } : {}),
      ...(now !== undefined ? { now } : {}),
      ...(minIntervalMs !== undefined ? { minIntervalMs } : {}),
      ...(maxIntervalMs !== undefined ? { maxIntervalMs } : {}),
      ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
      ...(claimMs !== undefined ? { claimMs } : {}),
      signal: AbortSignal.timeout(budgetMs ?? REDRIVE_RUN_BUDGET_MS),
      retry: {
        ...retry,
        onRetry: (event) =>
          context.warn(JSON.stringify({ event: 'delivery.retry', destination: event.sink, attempt: event.attempt, records: event.items, reason: event.reason, delayMs: event.delayMs })),
      },
      onLetter: (event) => logLetter(event, context),
    });
  } catch (error) {
    context.error(
      JSON.stringify({
        event: 'redrive.failed',
        store: store.location,
        error: error instanceof Error ? error.message : String(error),
        unreachable: error instanceof StoreError ? error.unreachable : null,
      }),
    );
    throw error;
  }
  const account = accountRedrive(result, {
    source: store.location,
    startedAt,
    finishedAt: clock(),
    extra: { invocationId: context.invocationId, isPastDue: timer.isPastDue, ...(routing.version !== undefined ? { rulesVersion: routing.version } : {}) },
  });
  context.log(JSON.stringify(account));
  recordRun(account);
  return result;
}

/** Expired and unreadable letters need a person: one warning each. The rest is in the summary. */
function logLetter(event: RedriveLetterEvent, context: InvocationContext): void {
  if (event.outcome !== 'expired' && event.outcome !== 'unreadable') return;
  context.warn(
    JSON.stringify({
      event: event.outcome === 'expired' ? 'deadLetter.expired' : 'deadLetter.unreadable',
      name: event.name,
      destination: event.destination,
      input: event.input ?? null,
      attempts: event.attempts,
      reason: event.reason ?? null,
      error: event.message ?? null,
      deadLetteredAt: event.deadLetteredAt ?? null,
    }),
  );
}
