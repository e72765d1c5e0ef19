/**
 * Adapts what the Functions Event Hub trigger hands over (cardinality many, dataType binary: a Buffer per
 * event; strings and the objects the library parses from them are taken too) to pipeline envelopes, and runs
 * a batch: every event gets a durable outcome before the invocation returns.
 */
import type { InvocationContext } from '@azure/functions';
import { bodyText, type Envelope, type EventMetadata } from '../pipeline/decode.js';
import { addToSummary, createPipeline, emptySummary, type RunSummary } from '../pipeline/run.js';
import { accountRun } from '../pipeline/accounting.js';
import { recordRun } from '../telemetry/metrics.js';
import type { QuarantineSink } from '../pipeline/quarantine.js';
import type { RoutingAccess } from '../routing/rulesSource.js';
import type { NotificationLedger, RoutingRules } from '../routing/types.js';
import { parseUtc } from '../model/time.js';
import type { Delivery } from '../delivery/deliver.js';

/**
 * The batch metadata the host passes in `context.triggerMetadata` (keys camel-cased by the library).
 * Every array is indexed like the batch.
 */
interface BatchMetadata {
  readonly partitionId?: string;
  readonly eventHubName?: string;
  readonly sequenceNumbers: readonly unknown[];
  readonly offsets: readonly unknown[];
  readonly enqueuedTimes: readonly unknown[];
  readonly partitionKeys: readonly unknown[];
}

/** Reads the trigger metadata defensively: it is typed `Record<string, unknown>` and may lack any key. */
export function readBatchMetadata(triggerMetadata: Readonly<Record<string, unknown>> | undefined): BatchMetadata {
  const metadata = triggerMetadata ?? {};
  const partition = asRecord(metadata['partitionContext']);
  const partitionId = asText(partition['partitionId']);
  const eventHubName = asText(partition['eventHubName']);
  return {
    ...(partitionId !== undefined ? { partitionId } : {}),
    ...(eventHubName !== undefined ? { eventHubName } : {}),
    sequenceNumbers: asArray(metadata['sequenceNumberArray']),
    offsets: asArray(metadata['offsetArray']),
    enqueuedTimes: asArray(metadata['enqueuedTimeUtcArray']),
    partitionKeys: asArray(metadata['partitionKeyArray']),
  };
}

/** One envelope per event, labelled `eh:<partition>/<sequence>`, carrying its event metadata. */
export function envelopesFromBatch(messages: unknown, triggerMetadata: Readonly<Record<string, unknown>> | undefined): Envelope[] {
  return envelopesOf(messages, readBatchMetadata(triggerMetadata));
}

function envelopesOf(messages: unknown, batch: BatchMetadata): Envelope[] {
  // With cardinality many the host passes an array; a lone value is a batch of one.
  const events: readonly unknown[] = Array.isArray(messages) ? messages : [messages];
  return events.map((body, i) => {
    const sequenceNumber = asNumber(batch.sequenceNumbers[i]);
    const offset = asText(batch.offsets[i]);
    const enqueuedTimeUtc = asTime(batch.enqueuedTimes[i]);
    const partitionKey = asText(batch.partitionKeys[i]);
    const metadata: EventMetadata = {
      ...(batch.partitionId !== undefined ? { partitionId: batch.partitionId } : {}),
      ...(sequenceNumber !== undefined ? { sequenceNumber } : {}),
      ...(offset !== undefined ? { offset } : {}),
      ...(enqueuedTimeUtc !== undefined ? { enqueuedTimeUtc } : {}),
      ...(partitionKey !== undefined ? { partitionKey } : {}),
    };
    const input = `eh:${batch.partitionId ?? '?'}/${sequenceNumber ?? `#${i}`}`;
    // An event's bytes go on as its text: a quarantine entry then keeps the body exactly, as for a string.
    return { input, body: bodyText(body), metadata };
  });
}

/** The routing one invocation decides and delivers with. */
export interface BatchRouting {
  readonly rules: RoutingRules;
  /** Delivers the routed records; absent, the handler only decides (and says so in its summary). */
  readonly delivery?: Delivery;
  /** The rules' version, written in the invocation's `run.summary` line (`rulesVersion`) when known. */
  readonly version?: string;
}

interface HandlerBasics {
  readonly ledger: NotificationLedger;
  readonly quarantine: QuarantineSink;
  readonly now?: () => Date;
}

/** Rules fixed for the handler's life (tests, and hosts whose rules never change). */
interface FixedRouting {
  /** The routing rules, loaded and validated when the app starts. */
  readonly rules: RoutingRules;
  /** Delivers the routed records; absent, the handler only decides (and says so in its summary). */
  readonly delivery?: Delivery;
  readonly routing?: never;
}

/** Rules taken afresh by each invocation, which keeps them for its whole batch (the Function app). */
interface CurrentRouting {
  /** The app's rules source (`FunctionApp.routing`). */
  readonly routing: RoutingAccess<BatchRouting>;
  readonly rules?: never;
  readonly delivery?: never;
}

export type EventHubHandlerDependencies = HandlerBasics & (FixedRouting | CurrentRouting);

/**
 * The Event Hub handler. It returns only when every event has an outcome; it throws when the quarantine store
 * is unreachable, so that the retry policy re-runs the batch instead of the host checkpointing past it.
 */
export function createEventHubHandler(dependencies: EventHubHandlerDependencies): (messages: unknown, context: InvocationContext) => Promise<RunSummary> {
  // The routing is taken once, at the start: the whole batch is decided and delivered with one version of
  // the rules, even if a newer version arrives meanwhile.
  if (dependencies.routing !== undefined) {
    const source = dependencies.routing;
    return (messages, context) => source.use(context, (routing) => runBatch(dependencies, routing, messages, context));
  }
  const fixed: BatchRouting = { rules: dependencies.rules, ...(dependencies.delivery ? { delivery: dependencies.delivery } : {}) };
  return (messages, context) => runBatch(dependencies, fixed, messages, context);
}

async function runBatch(dependencies: HandlerBasics, routing: BatchRouting, messages: unknown, context: InvocationContext): Promise<RunSummary> {
  const startedAt = (dependencies.now ?? (() => new Date()))();
  const summary = emptySummary();
  const batch = readBatchMetadata(context.triggerMetadata);
  const envelopes = envelopesOf(messages, batch);
  const retry = context.retryContext ? { retryCount: context.retryContext.retryCount, maxRetryCount: context.retryContext.maxRetryCount } : undefined;
  let results;
  try {
    const pipeline = createPipeline({
      rules: routing.rules,
      ledger: dependencies.ledger,
      quarantine: dependencies.quarantine,
      ...(routing.delivery ? { delivery: withRetryLog(routing.delivery, context) } : {}),
      ...(dependencies.now ? { now: dependencies.now } : {}),
    });
    results = await pipeline.processBatch(envelopes);
  } catch (error) {
    context.error(
      JSON.stringify({
        event: 'batch.failed',
        partitionId: batch.partitionId ?? null,
        events: envelopes.length,
        firstInput: envelopes[0]?.input ?? null,
        error: error instanceof Error ? error.message : String(error),
        retry: retry ?? null,
      }),
    );
    throw error;
  }
  for (const result of results) {
    addToSummary(summary, result);
    if (result.report.outcome === 'quarantined') {
      context.warn(JSON.stringify({ event: 'record.quarantined', input: result.report.input, kind: result.report.kind, reason: result.report.reason }));
    }
    for (const failure of result.failures ?? []) {
      const line = JSON.stringify({
        event: failure.configuration ? 'destination.misconfigured' : 'record.deadLettered',
        input: result.report.input,
        kind: result.report.kind,
        id: result.report.id,
        destination: failure.destination,
        reason: failure.reason,
        attempts: failure.attempts,
        error: failure.message,
      });
      // A misconfigured destination (credentials, permissions) fails every record until someone fixes it:
      // loud, at error level.
      if (failure.configuration) context.error(line);
      else context.warn(line);
    }
  }
  // One accounting line per invocation: the same shape the standalone consumer and the CLI emit.
  const account = accountRun(summary, {
    host: 'function',
    source: `eh:${batch.partitionId ?? '?'}`,
    startedAt,
    finishedAt: (dependencies.now ?? (() => new Date()))(),
    extra: {
      invocationId: context.invocationId,
      partitionId: batch.partitionId ?? null,
      events: envelopes.length,
      ...(retry ? { retry } : {}),
      ...(routing.version !== undefined ? { rulesVersion: routing.version } : {}),
    },
  });
  context.log(JSON.stringify(account));
  recordRun(account);
  return summary;
}

/** The delivery, telling this invocation's log about each retry. */
function withRetryLog(delivery: Delivery, context: InvocationContext): Pick<Delivery, 'deliver'> {
  return {
    deliver: (results) =>
      delivery.deliver(results, {
        onRetry: (event) =>
          context.warn(JSON.stringify({ event: 'delivery.retry', destination: event.sink, attempt: event.attempt, records: event.items, reason: event.reason, delayMs: event.delayMs })),
      }),
  };
}

function asRecord(value: unknown): Readonly<Record<string, unknown>> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

function asText(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number') return String(value);
  return undefined;
}

function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^\d+$/.test(value)) return Number(value);
  return undefined;
}

function asTime(value: unknown): string | undefined {
  if (value instanceof Date) return value.toISOString();
  if (typeof value !== 'string' || value === '') return undefined;
  return parseUtc(value)?.toISOString() ?? value;
}
