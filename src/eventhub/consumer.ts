/**
 * The standalone consumer: the same pipeline as the Function, self-hosted (a container, AKS, a VM), on
 * `EventHubConsumerClient` + `BlobCheckpointStore`. Several instances share a hub's partitions through the
 * checkpoint store's ownership blobs (the SDK's load balancer); each partition is read by one of them.
 *
 * The guarantee is the Function's: a partition is checkpointed only after every record of the batch has a
 * durable outcome (delivered, dead-lettered or quarantined). Where the two runtimes differ, this module owns
 * the behaviour instead of leaning on either (functions-runtime.md):
 * - When the pipeline rejects (the quarantine, dead-letter or ledger store is unreachable) the batch is run
 *   again in place, with backoff, until it succeeds or the consumer stops. Throwing from `processEvents`
 *   instead would park the partition until its ownership expired (60 s) and then re-read it anyway.
 * - Re-runs are safe: quarantine and dead-letter names are stable (a re-run overwrites), and the
 *   notification ledger keeps people from being told twice; Splunk may see a record twice (harmless).
 * - A checkpoint that cannot be written is logged and the next batch's checkpoint covers it; a crash before
 *   then re-reads (and re-delivers) at most the unacknowledged batches.
 */
import {
  EventHubConsumerClient,
  earliestEventPosition,
  latestEventPosition,
  type CloseReason,
  type EventPosition,
  type PartitionContext,
  type ReceivedEventData,
  type Subscription,
} from '@azure/event-hubs';
import { BlobCheckpointStore } from '@azure/eventhubs-checkpointstore-blob';
import type { ContainerClient } from '@azure/storage-blob';
import type { TokenCredential } from '@azure/identity';
import { bodyText, type Envelope, type EventMetadata } from '../pipeline/decode.js';
import { addToSummary, emptySummary, type RecordResult, type RunSummary } from '../pipeline/run.js';
import { mergeSummary } from '../pipeline/accounting.js';

/** Where the events come from: a connection string, or a namespace reached with an Entra ID credential. */
export type EventHubSource =
  | { readonly connectionString: string; readonly eventHubName?: string }
  | { readonly fullyQualifiedNamespace: string; readonly eventHubName: string; readonly credential: TokenCredential };

/** The pipeline as the consumer uses it: one batch in, every record's result out (rejects: store down). */
export interface BatchProcessor {
  processBatch(envelopes: readonly Envelope[]): Promise<RecordResult[]>;
}

/** What the consumer tells its host, for logs and progress. Observers must not throw. */
export interface ConsumerEvents {
  /** A batch has a durable outcome for every record (and, when `checkpointed`, its checkpoint is written). */
  onBatch?(batch: BatchDone): void;
  /** This instance started or stopped reading a partition. */
  onPartition?(change: { readonly partitionId: string; readonly state: 'claimed' | 'released'; readonly reason?: CloseReason }): void;
  /** The pipeline rejected a batch (a store is unreachable): it runs again after `delayMs`. */
  onBatchRetry?(retry: { readonly partitionId: string; readonly events: number; readonly attempt: number; readonly delayMs: number; readonly error: unknown }): void;
  /** A batch was left unacknowledged because the consumer stopped: the next owner reads it again. */
  onBatchAbandoned?(batch: { readonly partitionId: string; readonly events: number; readonly firstSequenceNumber: number }): void;
  /** The checkpoint could not be written (the next batch's checkpoint covers it). */
  onCheckpointError?(failure: { readonly partitionId: string; readonly sequenceNumber: number; readonly error: unknown }): void;
  /** The SDK reported an error (connection lost, link stolen, load balancing): it recovers by itself. */
  onError?(failure: { readonly partitionId: string | undefined; readonly error: unknown }): void;
}

export interface BatchDone {
  readonly partitionId: string;
  readonly events: number;
  readonly firstSequenceNumber: number;
  readonly lastSequenceNumber: number;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly summary: RunSummary;
  readonly results: readonly RecordResult[];
  readonly checkpointed: boolean;
  /** Times the pipeline ran this batch (more than 1 after a store outage). */
  readonly attempts: number;
}

export interface StandaloneConsumerOptions {
  readonly source: EventHubSource;
  /** A consumer group dedicated to the forwarder. */
  readonly consumerGroup: string;
  /** Container of ownership and checkpoint blobs (created when missing). */
  readonly checkpoints: ContainerClient;
  readonly pipeline: BatchProcessor;
  /** Most events per batch (default 100, the Function's `maxEventBatchSize`). */
  readonly maxBatchSize?: number;
  /** Longest wait to fill a batch, in seconds (default 1). */
  readonly maxWaitTimeInSeconds?: number;
  /** Where a partition without a checkpoint starts (default `earliest`: nothing exported is skipped). */
  readonly startPosition?: 'earliest' | 'latest';
  /** Load balancing: how often ownership is renewed and when an owner that stopped renewing loses it. */
  readonly loadBalancing?: { readonly updateIntervalInMs?: number; readonly partitionOwnershipExpirationIntervalInMs?: number };
  /** Backoff of a batch whose stores are unreachable: doubling from `initialMs` to `maxMs` (1 s .. 30 s). */
  readonly storeRetry?: { readonly initialMs?: number; readonly maxMs?: number };
  readonly events?: ConsumerEvents;
  /** Aborted: the batch in flight is abandoned (no checkpoint) and delivery is cancelled. */
  readonly abandonSignal?: AbortSignal;
  readonly now?: () => Date;
}

/** What the consumer knows about one partition it has read. */
export interface PartitionState {
  readonly partitionId: string;
  readonly owned: boolean;
  readonly events: number;
  /** Sequence number of the last event with a durable outcome (-1 before the first). */
  readonly lastSequenceNumber: number;
  /** Sequence number of the last checkpoint this instance wrote (-1 before the first). */
  readonly checkpointedSequenceNumber: number;
}

const DEFAULT_MAX_BATCH_SIZE = 100;
/** How often an instance renews its partitions and claims or steals one (the SDK's default is 10 s). */
export const DEFAULT_UPDATE_INTERVAL_MS = 2000;
/** How long an instance that stopped renewing keeps its partitions (the SDK's default, 60 s, halved). */
export const DEFAULT_OWNERSHIP_EXPIRY_MS = 30_000;
const DEFAULT_MAX_WAIT_SECONDS = 1;
const DEFAULT_STORE_RETRY_INITIAL_MS = 1000;
const DEFAULT_STORE_RETRY_MAX_MS = 30_000;
/** Tries to write one batch's checkpoint, 1 s then 2 s apart. */
const CHECKPOINT_ATTEMPTS = 3;
const CHECKPOINT_RETRY_MS = 1000;
/** Longest wait for the subscription or the client to close when stopping. */
const CLOSE_WAIT_MS = 10_000;

export class StandaloneConsumer {
  readonly #options: StandaloneConsumerOptions;
  readonly #client: EventHubConsumerClient;
  readonly #store: BlobCheckpointStore;
  readonly #totals: RunSummary = emptySummary();
  readonly #partitions = new Map<string, { owned: boolean; events: number; last: number; checkpointed: number }>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #stopped = new AbortController();
  #subscription: Subscription | undefined;
  #stopping: Promise<void> | undefined;

  constructor(options: StandaloneConsumerOptions) {
    this.#options = options;
    const store = new BlobCheckpointStore(options.checkpoints);
    this.#store = store;
    // The balanced strategy claims one partition per update interval. The SDK's 10 s interval would leave a
    // lone instance on a 32-partition hub idle on most partitions for five minutes, hence 2 s. The greedy
    // strategy (claim the fair share at once) was tried: with two instances it kept stealing partitions back
    // and forth, each steal re-reading events since the last checkpoint.
    const balancing = {
      updateIntervalInMs: options.loadBalancing?.updateIntervalInMs ?? DEFAULT_UPDATE_INTERVAL_MS,
      partitionOwnershipExpirationIntervalInMs: options.loadBalancing?.partitionOwnershipExpirationIntervalInMs ?? DEFAULT_OWNERSHIP_EXPIRY_MS,
    };
    const clientOptions = { loadBalancingOptions: { strategy: 'balanced' as const, ...balancing } };
    const source = options.source;
    this.#client =
      'connectionString' in source
        ? source.eventHubName !== undefined
          ? new EventHubConsumerClient(options.consumerGroup, source.connectionString, source.eventHubName, store, clientOptions)
          : new EventHubConsumerClient(options.consumerGroup, source.connectionString, store, clientOptions)
        : new EventHubConsumerClient(options.consumerGroup, source.fullyQualifiedNamespace, source.eventHubName, source.credential, store, clientOptions);
  }

  /** The hub's name (from the connection string's EntityPath when not given). */
  get eventHubName(): string {
    return this.#client.eventHubName;
  }

  /** Starts reading; returns at once. Ownership is claimed in the background. */
  start(): void {
    if (this.#subscription) throw new Error('the consumer is already started');
    const position: EventPosition = this.#options.startPosition === 'latest' ? latestEventPosition : earliestEventPosition;
    this.#subscription = this.#client.subscribe(
      {
        processInitialize: async (context) => {
          this.#partition(context.partitionId).owned = true;
          this.#options.events?.onPartition?.({ partitionId: context.partitionId, state: 'claimed' });
        },
        processClose: async (reason, context) => {
          this.#partition(context.partitionId).owned = false;
          this.#options.events?.onPartition?.({ partitionId: context.partitionId, state: 'released', reason });
        },
        processEvents: (events, context) => this.#track(this.#processEvents(events, context)),
        processError: async (error, context) => {
          this.#options.events?.onError?.({ partitionId: context.partitionId === '' ? undefined : context.partitionId, error });
        },
      },
      {
        maxBatchSize: this.#options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
        maxWaitTimeInSeconds: this.#options.maxWaitTimeInSeconds ?? DEFAULT_MAX_WAIT_SECONDS,
        startPosition: position,
        // The pipeline decodes bodies itself: a body that is not JSON must reach it as the bytes that came,
        // to be quarantined with its precise reason (the SDK would hand over a parsed value or a Buffer).
        skipParsingBodyAsJson: true,
      },
    );
  }

  /**
   * Stops cleanly: no new batch starts, the batches in flight finish (and are checkpointed), then the
   * client closes. Abort `abandonSignal` to cut the batches in flight short instead (no checkpoint).
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stopped.abort();
      // The batches in flight finish (and are checkpointed) BEFORE the subscription closes: closing gives the
      // partitions up at once, and another instance would start reading them again while they still run.
      await Promise.allSettled([...this.#inFlight]);
      try {
        // Bounded: the AMQP library's link close can wait forever when the connection drops meanwhile
        // (rhea-promise 3.0.3); a stop must end, and nothing unacknowledged is lost by not waiting.
        await withinMs(this.#subscription?.close() ?? Promise.resolve(), CLOSE_WAIT_MS);
      } finally {
        await withinMs(this.#client.close(), CLOSE_WAIT_MS);
      }
    })();
    return this.#stopping;
  }

  /** Totals over every batch this instance finished. */
  totals(): RunSummary {
    const copy = emptySummary();
    mergeSummary(copy, this.#totals);
    return copy;
  }

  /** Partitions this instance has read, owned now or before. */
  partitions(): PartitionState[] {
    return [...this.#partitions]
      .sort(([a], [b]) => Number(a) - Number(b) || a.localeCompare(b))
      .map(([partitionId, state]) => ({
        partitionId,
        owned: state.owned,
        events: state.events,
        lastSequenceNumber: state.last,
        checkpointedSequenceNumber: state.checkpointed,
      }));
  }

  /**
   * Events enqueued but not yet done, per owned partition (the hub's last sequence number minus the last one
   * done here). One management request per partition; a partition whose properties cannot be read is left out.
   */
  async lag(): Promise<Record<string, number>> {
    const owned = this.partitions().filter((partition) => partition.owned);
    const answers = await Promise.allSettled(owned.map((partition) => this.#client.getPartitionProperties(partition.partitionId)));
    const lag: Record<string, number> = {};
    answers.forEach((answer, index) => {
      const partition = owned[index];
      if (!partition || answer.status !== 'fulfilled') return;
      const last = answer.value.isEmpty ? -1 : answer.value.lastEnqueuedSequenceNumber;
      lag[partition.partitionId] = Math.max(0, last - partition.lastSequenceNumber);
    });
    return lag;
  }

  /**
   * Events not yet checkpointed, per partition of the hub, whoever owns it: the hub's last sequence number
   * minus the checkpoint's (every event when there is no checkpoint). With several instances this is the
   * backlog of all of them: 0 everywhere means the whole hub is done.
   */
  async backlog(): Promise<Record<string, number>> {
    const [partitionIds, checkpoints] = await Promise.all([
      this.#client.getPartitionIds(),
      this.#store.listCheckpoints(this.#client.fullyQualifiedNamespace, this.#client.eventHubName, this.#options.consumerGroup),
    ]);
    const checkpointed = new Map(checkpoints.map((checkpoint) => [checkpoint.partitionId, checkpoint.sequenceNumber]));
    const properties = await Promise.all(partitionIds.map((partitionId) => this.#client.getPartitionProperties(partitionId)));
    const backlog: Record<string, number> = {};
    for (const partition of properties) {
      const last = partition.isEmpty ? partition.beginningSequenceNumber - 1 : partition.lastEnqueuedSequenceNumber;
      // Without a checkpoint, a consumer started at `latest` never reads what was there before it: not backlog.
      const unstarted = this.#options.startPosition === 'latest' ? last : partition.beginningSequenceNumber - 1;
      const done = checkpointed.get(partition.partitionId) ?? unstarted;
      backlog[partition.partitionId] = Math.max(0, last - done);
    }
    return backlog;
  }

  #partition(partitionId: string): { owned: boolean; events: number; last: number; checkpointed: number } {
    let state = this.#partitions.get(partitionId);
    if (!state) this.#partitions.set(partitionId, (state = { owned: false, events: 0, last: -1, checkpointed: -1 }));
    return state;
  }

  #track(work: Promise<void>): Promise<void> {
    this.#inFlight.add(work);
    // The bookkeeping chain must not become an unhandled rejection of its own (the SDK handles `work`'s).
    work.finally(() => this.#inFlight.delete(work)).catch(() => undefined);
    return work;
  }

  async #processEvents(events: ReceivedEventData[], context: PartitionContext): Promise<void> {
    const first = events[0];
    const last = events[events.length - 1];
    if (!first || !last) return;
    const partitionId = context.partitionId;
    if (this.#stopped.signal.aborted) {
      // Received after stop() began: not ours to finish. Unacknowledged, it is read again by the next owner.
      this.#options.events?.onBatchAbandoned?.({ partitionId, events: events.length, firstSequenceNumber: first.sequenceNumber });
      return;
    }
    const clock = this.#options.now ?? (() => new Date());
    const startedAt = clock();
    const envelopes = events.map((event) => envelopeOf(event, partitionId));
    const abandon = this.#options.abandonSignal;
    let results: RecordResult[] | undefined;
    let attempts = 0;
    let delayMs = this.#options.storeRetry?.initialMs ?? DEFAULT_STORE_RETRY_INITIAL_MS;
    const maxDelayMs = this.#options.storeRetry?.maxMs ?? DEFAULT_STORE_RETRY_MAX_MS;
    while (!results) {
      attempts += 1;
      try {
        results = await this.#options.pipeline.processBatch(envelopes);
      } catch (error) {
        // A store is unreachable: nothing of this batch may be acknowledged. Run it again once the store is
        // back, unless the consumer is stopping (then the next owner reads it again).
        if (this.#stopped.signal.aborted || abandon?.aborted) break;
        this.#options.events?.onBatchRetry?.({ partitionId, events: events.length, attempt: attempts, delayMs, error });
        await sleep(delayMs, [this.#stopped.signal, ...(abandon ? [abandon] : [])]);
        delayMs = Math.min(delayMs * 2, maxDelayMs);
      }
    }
    if (!results || abandon?.aborted) {
      this.#options.events?.onBatchAbandoned?.({ partitionId, events: events.length, firstSequenceNumber: first.sequenceNumber });
      return;
    }
    const summary = emptySummary();
    for (const result of results) addToSummary(summary, result);
    mergeSummary(this.#totals, summary);
    const state = this.#partition(partitionId);
    state.events += events.length;
    state.last = last.sequenceNumber;
    let checkpointed = false;
    // A partition taken over while this batch ran is not ours to checkpoint: the write is unconditional and
    // could move the new owner's newer checkpoint back.
    for (let attempt = 1; state.owned && !checkpointed && attempt <= CHECKPOINT_ATTEMPTS; attempt++) {
      try {
        await context.updateCheckpoint(last);
        state.checkpointed = last.sequenceNumber;
        checkpointed = true;
      } catch (error) {
        this.#options.events?.onCheckpointError?.({ partitionId, sequenceNumber: last.sequenceNumber, error });
        // A few tries: the last batch of a quiet partition has no next batch whose checkpoint would cover it.
        if (attempt < CHECKPOINT_ATTEMPTS) await sleep(CHECKPOINT_RETRY_MS * attempt, [this.#stopped.signal]);
      }
    }
    this.#tell(partitionId, () => this.#options.events?.onBatch?.({
      partitionId,
      events: events.length,
      firstSequenceNumber: first.sequenceNumber,
      lastSequenceNumber: last.sequenceNumber,
      startedAt,
      finishedAt: clock(),
      summary,
      results,
      checkpointed,
      attempts,
    }));
  }

  /** Runs an observer; one that throws is reported, never allowed to fail the batch (it has its outcome). */
  #tell(partitionId: string, observe: () => void): void {
    try {
      observe();
    } catch (error) {
      this.#options.events?.onError?.({ partitionId, error });
    }
  }
}

/**
 * One envelope per event, labelled `eh:<partition>/<sequence>` like the Function's. A data-section body
 * arrives as bytes (`skipParsingBodyAsJson`) and goes on as UTF-8 text; a value or sequence body (not what
 * Defender sends) goes on as the value the SDK decoded.
 */
export function envelopeOf(event: ReceivedEventData, partitionId: string): Envelope {
  const body = bodyText(event.body);
  const enqueued = event.enqueuedTimeUtc instanceof Date && !Number.isNaN(event.enqueuedTimeUtc.getTime()) ? event.enqueuedTimeUtc.toISOString() : undefined;
  const metadata: EventMetadata = {
    partitionId,
    sequenceNumber: event.sequenceNumber,
    ...(typeof event.offset === 'string' || typeof event.offset === 'number' ? { offset: String(event.offset) } : {}),
    ...(enqueued !== undefined ? { enqueuedTimeUtc: enqueued } : {}),
    ...(typeof event.partitionKey === 'string' && event.partitionKey !== '' ? { partitionKey: event.partitionKey } : {}),
  };
  return { input: `eh:${partitionId}/${event.sequenceNumber}`, body, metadata };
}

/** Resolves when `work` settles or after `ms`, whichever comes first. Never rejects. */
async function withinMs(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Waits `ms`, or less when a signal aborts. Never rejects. */
function sleep(ms: number, signals: readonly AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    if (signals.some((signal) => signal.aborted)) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      for (const signal of signals) signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const signal of signals) signal.addEventListener('abort', done, { once: true });
  });
}
