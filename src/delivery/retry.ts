/**
 * The one retry loop. A sink makes one attempt and classifies each failure; this loop decides whether and
 * when to try again: exponential backoff with full jitter, `Retry-After` honoured (never retry sooner than
 * the server asked), a cap on attempts and on total time (so a Function invocation ends well inside its
 * timeout), and a cap on concurrent requests per destination. Items that still fail are handed back with
 * their last error, for the dead-letter store: nothing is dropped here.
 */
import { DeliveryError, type DeliveryItem, type Sink } from '../sinks/sink.js';
import { Limiter } from './limiter.js';
import { recordDeliveryAttempt, recordRetry } from '../telemetry/metrics.js';

export interface RetryPolicy {
  /** Attempts per item, the first included. Default 5. */
  readonly maxAttempts: number;
  /** First backoff ceiling; doubles per attempt. Default 1 s. */
  readonly baseDelayMs: number;
  /** Largest backoff ceiling. Default 30 s. */
  readonly maxDelayMs: number;
  /**
   * Time budget for delivering one batch to one destination, waits included. A wait (a `Retry-After`, say)
   * that would end past it is not made: the items are dead-lettered for re-drive instead. Default 120 s.
   */
  readonly maxTotalMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({ maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000, maxTotalMs: 120_000 });

/** What happened to one item after the loop. */
export interface ItemOutcome {
  readonly item: DeliveryItem;
  readonly delivered: boolean;
  readonly attempts: number;
  /** The last error, when not delivered. */
  readonly error?: DeliveryError;
  readonly firstAttemptAt: string;
  readonly lastAttemptAt: string;
}

export interface RetryDependencies {
  readonly signal?: AbortSignal;
  /** Caps concurrent `send` calls to this destination. */
  readonly limiter?: Limiter;
  /** Waits; tests collapse it. Must reject when the signal aborts. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly now?: () => number;
  /** 0 <= x < 1, for jitter. */
  readonly random?: () => number;
  /** Told before each wait, for logs and counters. */
  readonly onRetry?: (event: { sink: string; attempt: number; items: number; delayMs: number; reason: string }) => void;
  /**
   * Told as soon as the destination accepted an item (its index in `items`), before the other items are
   * done: the notification ledger is written right after each acknowledgment, not after the whole batch.
   */
  readonly onDelivered?: (index: number) => void;
}

/** Backoff ceiling for the n-th retry (1-based): base * 2^(n-1), capped; full jitter picks below it. */
export function backoffMs(retry: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}

/** Retryable failures that nevertheless end this run's attempts (re-drive takes over). */
const ENDS_THIS_RUN = new Set(['cancelled', 'budget-exhausted']);

interface Pending {
  readonly index: number;
  readonly item: DeliveryItem;
  attempts: number;
  firstAttemptAt?: string;
  lastAttemptAt?: string;
  error?: DeliveryError;
}

/** Delivers `items` to `sink`, retrying what may succeed later. Resolves with one outcome per item, in order. */
export async function deliverWithRetry(
  sink: Sink,
  items: readonly DeliveryItem[],
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  dependencies: RetryDependencies = {},
): Promise<ItemOutcome[]> {
  const now = dependencies.now ?? Date.now;
  const random = dependencies.random ?? Math.random;
  const sleep = dependencies.sleep ?? abortableSleep;
  const limiter = dependencies.limiter ?? new Limiter(1);
  const startedMs = now();
  const outcomes = new Array<ItemOutcome | undefined>(items.length);
  let pending: Pending[] = items.map((item, index) => ({ index, item, attempts: 0 }));

  const deadlineMs = startedMs + policy.maxTotalMs;
  for (let round = 1; pending.length > 0; round++) {
    const results = await attemptAll(sink, pending, limiter, dependencies.signal, now, deadlineMs, dependencies.onDelivered);
    const retry: Pending[] = [];
    let retryAfterMs = 0;
    for (const { entry, error } of results) {
      if (error === undefined) {
        outcomes[entry.index] = finish(entry, true);
      } else if (!error.retryable || ENDS_THIS_RUN.has(error.reason)) {
        entry.error = error;
        outcomes[entry.index] = finish(entry, false);
      } else {
        entry.error = error;
        retry.push(entry);
        retryAfterMs = Math.max(retryAfterMs, error.retryAfterMs ?? 0);
      }
    }
    if (retry.length === 0) break;
    const exhausted = retry.filter((entry) => entry.attempts >= policy.maxAttempts);
    for (const entry of exhausted) outcomes[entry.index] = finish(entry, false);
    pending = retry.filter((entry) => entry.attempts < policy.maxAttempts);
    if (pending.length === 0) break;

    // Never sooner than the server asked; otherwise exponential backoff with full jitter.
    const delayMs = Math.max(retryAfterMs, backoffMs(round, policy, random));
    const elapsedMs = now() - startedMs;
    if (elapsedMs + delayMs > policy.maxTotalMs || dependencies.signal?.aborted) {
      for (const entry of pending) outcomes[entry.index] = finish(entry, false, budgetNote(entry, delayMs, dependencies.signal));
      break;
    }
    const reason = pending[0]?.error?.reason ?? 'unknown';
    recordRetry(sink.name, reason);
    dependencies.onRetry?.({ sink: sink.name, attempt: round, items: pending.length, delayMs, reason });
    try {
      await sleep(delayMs, dependencies.signal);
    } catch {
      // Aborted while waiting: what is pending is handed back undelivered (and dead-lettered), not lost.
      for (const entry of pending) outcomes[entry.index] = finish(entry, false, budgetNote(entry, delayMs, dependencies.signal));
      break;
    }
  }
  return outcomes.map((outcome, index) => outcome ?? unreachable(items, index));
}

/** One round: the pending items in chunks of the sink's batch size, sent under the limiter. */
async function attemptAll(
  sink: Sink,
  pending: readonly Pending[],
  limiter: Limiter,
  signal: AbortSignal | undefined,
  now: () => number,
  deadlineMs: number,
  onDelivered: ((index: number) => void) | undefined,
): Promise<{ entry: Pending; error: DeliveryError | undefined }[]> {
  const chunks: Pending[][] = [];
  for (let i = 0; i < pending.length; i += Math.max(1, sink.maxBatchItems)) chunks.push(pending.slice(i, i + Math.max(1, sink.maxBatchItems)));
  const perChunk = await Promise.all(
    chunks.map((chunk) =>
      limiter.run(async () => {
        const at = new Date(now()).toISOString();
        for (const entry of chunk) {
          entry.attempts += 1;
          entry.firstAttemptAt ??= at;
          entry.lastAttemptAt = at;
        }
        if (signal?.aborted) return chunk.map((entry) => ({ entry, error: cancelled(sink) }));
        // The budget bounds the attempts too, not only the waits: a chunk that would start past it is not
        // sent, and one in flight is cut at the deadline (the sink's request is aborted).
        const remainingMs = deadlineMs - now();
        if (remainingMs <= 0) return chunk.map((entry) => ({ entry, error: overBudget(sink) }));
        const budget = AbortSignal.timeout(remainingMs);
        const attemptSignal = signal ? AbortSignal.any([signal, budget]) : budget;
        const sentAt = performance.now();
        try {
          const results = await sink.send(
            chunk.map((entry) => entry.item),
            attemptSignal,
          );
          const failed = results.find((result) => !result.ok);
          recordDeliveryAttempt(sink.name, failed === undefined || failed.ok ? 'ok' : failed.error.reason, performance.now() - sentAt);
          return chunk.map((entry, i) => {
            const result = results[i];
            if (result === undefined) {
              return { entry, error: new DeliveryError(`${sink.name}: no result for this record (sink defect)`, { reason: 'sink-result-missing', retryable: true }) };
            }
            if (result.ok) onDelivered?.(entry.index);
            return { entry, error: result.ok ? undefined : result.error };
          });
        } catch (error) {
          // A sink answers per item; a throw is an abort or a defect. Either way, the items are not lost.
          const failure =
            signal?.aborted === true
              ? cancelled(sink)
              : budget.aborted
                ? overBudget(sink)
                : error instanceof DeliveryError
                ? error
                : new DeliveryError(`${sink.name}: ${error instanceof Error ? error.message : String(error)}`, { reason: 'sink-error', retryable: true, cause: error });
          recordDeliveryAttempt(sink.name, failure.reason, performance.now() - sentAt);
          return chunk.map((entry) => ({ entry, error: failure }));
        }
      }),
    ),
  );
  return perChunk.flat();
}

function overBudget(sink: Sink): DeliveryError {
  // Final for this run; retryable, so a re-drive sends it later.
  return new DeliveryError(`${sink.name}: the delivery time budget ran out before this record was delivered`, { reason: 'budget-exhausted', retryable: true });
}

function cancelled(sink: Sink): DeliveryError {
  return new DeliveryError(`${sink.name}: cancelled before delivery (shutting down)`, { reason: 'cancelled', retryable: true });
}

function finish(entry: Pending, delivered: boolean, note?: string): ItemOutcome {
  const at = entry.lastAttemptAt ?? new Date().toISOString();
  let error = entry.error;
  if (!delivered && error && note) {
    error = new DeliveryError(`${error.message} (${note})`, {
      reason: error.reason,
      retryable: error.retryable,
      configuration: error.configuration,
      ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
    });
  }
  return {
    item: entry.item,
    delivered,
    attempts: entry.attempts,
    ...(delivered || error === undefined ? {} : { error }),
    firstAttemptAt: entry.firstAttemptAt ?? at,
    lastAttemptAt: at,
  };
}

function budgetNote(entry: Pending, delayMs: number, signal: AbortSignal | undefined): string {
  if (signal?.aborted) return `given up after ${entry.attempts} attempts: cancelled`;
  return `given up after ${entry.attempts} attempts: the next try (in ${Math.ceil(delayMs / 1000)} s) would pass the time budget`;
}

function unreachable(items: readonly DeliveryItem[], index: number): never {
  throw new Error(`delivery loop lost item ${index} of ${items.length}`);
}

/** setTimeout as a promise that rejects when the signal aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new Error('aborted'));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
