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
import type { RoutingRules } from '../routing/types.js';
import type { Sink } from '../sinks/sink.js';
import type { DeadLetterStore } from '../storage/deadLetterStore.js';
import { StoreError } from '../storage/storeError.js';

/**
 * How long one invocation claims letters: `host.json`'s `functionTimeout` is 10 minutes, and what is in
 * flight when the budget ends (one window's delivery, at most the retry policy's minute) must still settle.
 */
export const REDRIVE_RUN_BUDGET_MS = 8 * 60_000;

export interface RedriveTimerDependencies
  extends Pick<RedriveOptions, 'policy' | 'retry' | 'now' | 'minIntervalMs' | 'maxIntervalMs' | 'maxAgeMs' | 'claimMs'> {
  readonly store: DeadLetterStore;
  readonly rules: RoutingRules;
  readonly sinks: ReadonlyMap<string, Sink>;
  readonly ledger: DeliveryLedger;
  /** Default {@link REDRIVE_RUN_BUDGET_MS}. */
  readonly budgetMs?: number;
}

/** The timer handler. Resolves with the run's counts; rejects with the `StoreError` of a store that failed. */
export function createRedriveTimerHandler(dependencies: RedriveTimerDependencies): (timer: Timer, context: InvocationContext) => Promise<RedriveResult> {
  const clock = dependencies.now ?? (() => new Date());
  return async (timer, context) => {
    const startedAt = clock();
    const { store, budgetMs, ...options } = dependencies;
    let result: RedriveResult;
    try {
      result = await redriveDeadLetters({
        ...options,
        store,
        signal: AbortSignal.timeout(budgetMs ?? REDRIVE_RUN_BUDGET_MS),
        retry: {
          ...dependencies.retry,
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
      extra: { invocationId: context.invocationId, isPastDue: timer.isPastDue },
    });
    context.log(JSON.stringify(account));
    return result;
  };
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
