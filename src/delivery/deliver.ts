/**
 * Delivery of a batch's decisions: every routed record to each of its destinations, through the one retry
 * loop, per destination concurrently and capped; what still fails is dead-lettered; the notification
 * ledger's claims (made when dedupe decided) are confirmed for what was delivered and released for what was
 * dead-lettered. Resolves only when every (record, destination) has a durable outcome; rejects when the
 * dead-letter store is unreachable, after settling the ledger, so that a re-run neither loses nor repeats a
 * notification.
 */
import { dedupeKey } from '../routing/dedupe.js';
import type { RoutingRules } from '../routing/types.js';
import { DeliveryError } from '../sinks/sink.js';
import type { DeliveryFailure, RecordResult, RecordReport } from '../pipeline/run.js';
import type { DeliveryItem, Sink } from '../sinks/sink.js';
import { previewToPayload, type DeadLetter, type DeadLetterSink, type DeliveryLedger } from './contracts.js';
import { Limiter } from './limiter.js';
import { DEFAULT_RETRY_POLICY, deliverWithRetry, type ItemOutcome, type RetryDependencies, type RetryPolicy } from './retry.js';


/** Dead letters written at once. */
const DEAD_LETTER_WRITES = 8;

export interface DeliveryOptions {
  /** The rules: which destinations are deduplicated (their ledger claims are confirmed or released here). */
  readonly rules: RoutingRules;
  readonly sinks: ReadonlyMap<string, Sink>;
  readonly ledger: DeliveryLedger;
  readonly deadLetters: DeadLetterSink;
  readonly policy?: RetryPolicy;
  readonly signal?: AbortSignal;
  /** Collapses waits in tests; see RetryDependencies. */
  readonly retry?: Omit<RetryDependencies, 'signal' | 'limiter'>;
  readonly now?: () => Date;
  /** Told of every give-up and dead letter, for logs. */
  readonly onDeadLetter?: (letter: DeadLetter) => void;
}

/** Per-call observers (a Function invocation logs through its own context). */
export interface DeliveryHooks {
  readonly onRetry?: NonNullable<RetryDependencies['onRetry']>;
}

export interface Delivery {
  /** Delivers the routed records of `results` and answers them with their reports updated. */
  deliver(results: readonly RecordResult[], hooks?: DeliveryHooks): Promise<RecordResult[]>;
}

export function createDelivery(options: DeliveryOptions): Delivery {
  // One limiter per destination for the life of the delivery object: concurrent batches share the cap.
  const limiters = new Map<string, Limiter>();
  for (const [name, sink] of options.sinks) limiters.set(name, new Limiter(Math.max(1, sink.maxConcurrency)));
  const clock = options.now ?? (() => new Date());
  return {
    async deliver(results, hooks) {
      const byDestination = new Map<string, { item: DeliveryItem; result: number }[]>();
      results.forEach((result, index) => {
        if (!result.finding || result.report.outcome === 'quarantined') return;
        for (const name of result.report.destinations) {
          const item: DeliveryItem = {
            input: result.report.input,
            finding: result.finding,
            ...(result.metadata ? { metadata: result.metadata } : {}),
          };
          let list = byDestination.get(name);
          if (!list) byDestination.set(name, (list = []));
          list.push({ item, result: index });
        }
      });

      // A notification is confirmed in the ledger the moment its destination accepts it, while the rest of
      // the batch is still being delivered: a run that dies mid-batch then leaves as few delivered-but-
      // unconfirmed notifications as possible (each would be sent again once its claim's lease passed).
      const confirmations: Promise<void>[] = [];
      const outcomes = await Promise.all(
        [...byDestination].map(async ([name, entries]) => {
          const sink = options.sinks.get(name);
          if (!sink) throw new Error(`no sink for destination "${name}"`);
          const limiter = limiters.get(name) ?? new Limiter(1);
          const deduped = options.rules.destinations.get(name)?.dedupe === true;
          const itemOutcomes = await deliverWithRetry(
            sink,
            entries.map((entry) => entry.item),
            options.policy ?? DEFAULT_RETRY_POLICY,
            {
              ...options.retry,
              limiter,
              ...(options.signal ? { signal: options.signal } : {}),
              ...(hooks?.onRetry ? { onRetry: hooks.onRetry } : {}),
              ...(deduped
                ? {
                    onDelivered: (index: number) => {
                      const entry = entries[index];
                      if (!entry) return;
                      const confirmation = options.ledger.confirm(dedupeKey(name, entry.item.finding));
                      // Settled below with the rest; handled now so that an early failure is not "unhandled".
                      confirmation.catch(() => undefined);
                      confirmations.push(confirmation);
                    },
                  }
                : {}),
            },
          );
          return { name, sink, entries, itemOutcomes };
        }),
      );

      // Settle: dead letters first (durable), then the ledger. A store failure is rethrown after the ledger
      // is settled for what is known: delivered notifications confirmed, failed ones released.
      const delivered = new Map<number, Set<string>>();
      const deadLettered = new Map<number, Set<string>>();
      const failures = new Map<number, DeliveryFailure[]>();
      const fail = (index: number, letter: DeadLetter): void => {
        let list = failures.get(index);
        if (!list) failures.set(index, (list = []));
        list.push({
          destination: letter.destination,
          reason: letter.error.reason,
          message: letter.error.message,
          attempts: letter.attempts,
          configuration: letter.error.configuration,
        });
      };
      const releases: string[] = [];
      const letters: DeadLetter[] = [];
      for (const { name, sink, entries, itemOutcomes } of outcomes) {
        for (let i = 0; i < entries.length; i++) {
          const entry = entries[i];
          const outcome = itemOutcomes[i];
          if (!entry || !outcome) continue;
          const key = options.rules.destinations.get(name)?.dedupe ? dedupeKey(name, entry.item.finding) : undefined;
          if (outcome.delivered) {
            add(delivered, entry.result, name); // its confirmation is already under way
            continue;
          }
          add(deadLettered, entry.result, name);
          if (key) releases.push(key);
          const letter = deadLetterOf(sink, outcome, key, clock());
          fail(entry.result, letter);
          letters.push(letter);
        }
      }
      // Destinations whose claim another run holds: kept as dead letters (not sent, not released: the claim
      // is not ours), so a re-drive notifies once that claim is settled or has expired.
      for (let index = 0; index < results.length; index++) {
        const result = results[index];
        if (!result?.held || !result.finding) continue;
        for (const name of result.held) {
          const sink = options.sinks.get(name);
          if (!sink) continue;
          add(deadLettered, index, name);
          const at = clock().toISOString();
          const item: DeliveryItem = { input: result.report.input, finding: result.finding, ...(result.metadata ? { metadata: result.metadata } : {}) };
          const error = new DeliveryError(`${name}: another run holds this notification's claim (it may be sending it now, or may have stopped); kept for re-drive`, {
            reason: 'claim-pending',
            retryable: true,
          });
          const letter = deadLetterOf(sink, { item, delivered: false, attempts: 0, error, firstAttemptAt: at, lastAttemptAt: at }, dedupeKey(name, result.finding), clock());
          fail(index, letter);
          letters.push(letter);
        }
      }
      // Written in parallel (a long outage dead-letters a whole batch), a few at a time.
      const writer = new Limiter(DEAD_LETTER_WRITES);
      const written = await Promise.allSettled(
        letters.map((letter) =>
          writer.run(async () => {
            await options.deadLetters.put(letter);
            options.onDeadLetter?.(letter);
          }),
        ),
      );
      const storeFailure = written.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      const ledgerWrites = [...confirmations, ...releases.map((key) => options.ledger.release(key))];
      const settled = await Promise.allSettled(ledgerWrites);
      if (storeFailure) throw storeFailure.reason;
      const ledgerFailure = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (ledgerFailure) throw ledgerFailure.reason;

      return results.map((result, index) => {
        const failed = deadLettered.get(index);
        if (!failed || failed.size === 0) return result;
        const report: RecordReport = {
          ...result.report,
          destinations: result.report.destinations.filter((name) => !failed.has(name)),
          deadLettered: [...failed],
        };
        return { ...result, report, failures: failures.get(index) ?? [] };
      });
    },
  };
}

function add(map: Map<number, Set<string>>, index: number, name: string): void {
  let set = map.get(index);
  if (!set) map.set(index, (set = new Set()));
  set.add(name);
}

function deadLetterOf(sink: Sink, outcome: ItemOutcome, key: string | undefined, now: Date): DeadLetter {
  const { finding } = outcome.item;
  const error = outcome.error;
  let payload: DeadLetter['payload'];
  try {
    payload = previewToPayload(sink.render([outcome.item]));
  } catch (renderError) {
    payload = [{ name: 'render-error.txt', content: renderError instanceof Error ? renderError.message : String(renderError) }];
  }
  return {
    format: 'defender-forwarder.deadletter/v1',
    destination: sink.name,
    destinationType: sink.type,
    input: outcome.item.input,
    finding: { kind: finding.kind, id: finding.id, severity: finding.severity, status: finding.status, title: finding.title },
    error: {
      message: error?.message ?? 'not delivered',
      reason: error?.reason ?? 'unknown',
      retryable: error?.retryable ?? true,
      configuration: error?.configuration ?? false,
    },
    attempts: outcome.attempts,
    firstAttemptAt: outcome.firstAttemptAt,
    lastAttemptAt: outcome.lastAttemptAt,
    deadLetteredAt: now.toISOString(),
    ...(key ? { dedupeKey: key } : {}),
    payload,
    record: finding.raw,
    ...(outcome.item.metadata ? { metadata: outcome.item.metadata } : {}),
  };
}
