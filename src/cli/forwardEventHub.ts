/**
 * `defender-forwarder forward --from-eventhub`: the standalone consumer. Reads the hub with
 * `EventHubConsumerClient` + `BlobCheckpointStore`, runs every batch through the same pipeline as the
 * Function, checkpoints a partition once the batch has a durable outcome, and shares the partitions with any
 * other instance using the same consumer group and checkpoint container.
 *
 * stdout: the per-record report (`--report json|table|none`). stderr: one `run.summary` JSON line per batch
 * (the accounting every host emits), a progress line every few seconds (events, rate, lag per partition),
 * partition ownership changes, and the run's summary when it stops.
 */
import { ContainerClient, type StoragePipelineOptions } from '@azure/storage-blob';
import { recordRun } from '../telemetry/metrics.js';
import { accountRun } from '../pipeline/accounting.js';
import { StandaloneConsumer, type EventHubSource } from '../eventhub/consumer.js';
import { oneLine, renderSummary, tableHeader } from './render.js';
import { createRunPipeline, RunTally, writeRecord, type PipelineParts, type ReportFormat } from './forward.js';
import { writeOut, isTerminal, type CliIo } from './io.js';
import { EXIT, type ExitCode } from './exit.js';
import { redactCredentials } from '../config/secret.js';
import type { BlobConnection } from '../storage/blobContainer.js';

export interface EventHubForwardOptions extends PipelineParts {
  readonly source: EventHubSource;
  readonly consumerGroup: string;
  readonly checkpoints: ContainerClient;
  readonly report: ReportFormat;
  readonly maxBatchSize: number;
  readonly maxWaitTimeInSeconds: number;
  readonly startPosition: 'earliest' | 'latest';
  /**
   * Stop once no event arrived for this long and every partition of the hub is checkpointed at its last event
   * (by this instance or another): catch-up runs, tests. Absent: run until stopped.
   */
  readonly exitWhenIdleMs?: number;
  /** Aborted: stop cleanly (finish the batches in flight, checkpoint them, close). */
  readonly stopSignal: AbortSignal;
  /** Aborted: abandon the batches in flight (no checkpoint) and cancel delivery. */
  readonly abandonSignal: AbortSignal;
  /** Progress interval (default 5 s; 1 s on a terminal). */
  readonly progressIntervalMs?: number;
  readonly loadBalancing?: { readonly updateIntervalInMs?: number; readonly partitionOwnershipExpirationIntervalInMs?: number };
}

export async function forwardFromEventHub(options: EventHubForwardOptions, io: CliIo): Promise<ExitCode> {
  const pipeline = createRunPipeline({ ...options, signal: options.abandonSignal }, io);
  const tally = new RunTally();
  const startedMs = Date.now();
  let lastEventMs = Date.now();
  let events = 0;
  // Records are written in order per batch; batches of different partitions interleave whole.
  let reportQueue: Promise<void> = Promise.resolve();
  let reportFailed = false;
  if (options.report === 'table') await writeOut(io.stdout, tableHeader());

  await options.checkpoints.createIfNotExists().catch((error: unknown) => {
    throw new Error(`cannot reach the checkpoint container "${options.checkpoints.containerName}": ${describe(error)}`, { cause: error });
  });

  const consumer = new StandaloneConsumer({
    source: options.source,
    consumerGroup: options.consumerGroup,
    checkpoints: options.checkpoints,
    pipeline,
    maxBatchSize: options.maxBatchSize,
    maxWaitTimeInSeconds: options.maxWaitTimeInSeconds,
    startPosition: options.startPosition,
    abandonSignal: options.abandonSignal,
    ...(options.loadBalancing ? { loadBalancing: options.loadBalancing } : {}),
    events: {
      onBatch: (batch) => {
        events += batch.events;
        lastEventMs = Date.now();
        for (const result of batch.results) tally.add(result);
        const account = accountRun(batch.summary, {
          host: 'standalone',
          source: `eh:${batch.partitionId}`,
          startedAt: batch.startedAt,
          finishedAt: batch.finishedAt,
          extra: {
            eventHub: consumer.eventHubName,
            consumerGroup: options.consumerGroup,
            partitionId: batch.partitionId,
            events: batch.events,
            firstSequenceNumber: batch.firstSequenceNumber,
            lastSequenceNumber: batch.lastSequenceNumber,
            checkpointed: batch.checkpointed,
            ...(batch.attempts > 1 ? { attempts: batch.attempts } : {}),
          },
        });
        recordRun(account);
        io.stderr.write(`${JSON.stringify(account)}\n`);
        const results = batch.results;
        reportQueue = reportQueue
          .then(async () => {
            for (const result of results) await writeRecord(io, options.report, result);
          })
          .catch((error: unknown) => {
            // stdout went away: the report is lost, the run (and its checkpoints) goes on.
            if (!reportFailed) io.stderr.write(`forward: the per-record report could not be written (${oneLine(describe(error))}); going on without it\n`);
            reportFailed = true;
          });
      },
      onPartition: (change) =>
        io.stderr.write(`forward: partition ${change.partitionId} ${change.state === 'claimed' ? 'claimed' : `released (${change.reason ?? 'stopped'})`}\n`),
      onBatchRetry: (retry) =>
        io.stderr.write(
          `forward: partition ${retry.partitionId}: a store is unreachable, ${retry.events} events kept unacknowledged; attempt ${retry.attempt} failed (${oneLine(describe(retry.error))}); running the batch again in ${(retry.delayMs / 1000).toFixed(1)} s\n`,
        ),
      onBatchAbandoned: (batch) =>
        io.stderr.write(`forward: partition ${batch.partitionId}: ${batch.events} events from sequence ${batch.firstSequenceNumber} left unacknowledged (stopping); the next owner reads them again\n`),
      onCheckpointError: (failure) =>
        io.stderr.write(`forward: partition ${failure.partitionId}: checkpoint at sequence ${failure.sequenceNumber} not written (${oneLine(describe(failure.error))}); the next batch's checkpoint covers it\n`),
      onError: (failure) =>
        io.stderr.write(`forward: ${failure.partitionId !== undefined ? `partition ${failure.partitionId}: ` : ''}${oneLine(describe(failure.error))} (the client recovers by itself)\n`),
    },
  });

  io.stderr.write(`forward: reading ${consumer.eventHubName} as consumer group "${options.consumerGroup}", checkpoints in container "${options.checkpoints.containerName}"\n`);
  consumer.start();

  const intervalMs = options.progressIntervalMs ?? (isTerminal(io.stderr) ? 1000 : 5000);
  let lastProgress = { ms: Date.now(), events: 0 };
  const progress = setInterval(() => {
    void consumer.lag().then(
      (lag) => {
        const nowMs = Date.now();
        const rate = ((events - lastProgress.events) * 1000) / Math.max(1, nowMs - lastProgress.ms);
        lastProgress = { ms: nowMs, events };
        const lags = Object.entries(lag).map(([partition, behind]) => `${partition}:${behind}`);
        const totals = tally.summary;
        const deadLettered = sum(totals.deadLettered);
        io.stderr.write(
          `forward: ${events.toLocaleString('en-US')} events, ${Math.round(rate).toLocaleString('en-US')}/s, lag ${lags.length > 0 ? lags.join(' ') : '-'}, quarantined ${totals.outcomes.quarantined}, dead-lettered ${deadLettered}\n`,
        );
      },
      () => undefined,
    );
  }, intervalMs);
  progress.unref();

  // Run until stopped, or (with --exit-when-idle) until nothing arrived for that long and nothing is behind.
  await new Promise<void>((resolve) => {
    if (options.stopSignal.aborted) return resolve();
    options.stopSignal.addEventListener('abort', () => resolve(), { once: true });
    if (options.exitWhenIdleMs === undefined) return;
    const idleMs = options.exitWhenIdleMs;
    const check = setInterval(() => {
      if (Date.now() - lastEventMs < idleMs) return;
      void consumer.backlog().then(
        (backlog) => {
          if (Date.now() - lastEventMs < idleMs) return;
          if (Object.values(backlog).every((behind) => behind === 0)) {
            clearInterval(check);
            resolve();
          }
        },
        () => undefined,
      );
    }, Math.min(500, idleMs));
    check.unref();
    options.stopSignal.addEventListener('abort', () => clearInterval(check), { once: true });
  });
  io.stderr.write('forward: stopping: finishing the batches in flight\n');
  await consumer.stop();
  clearInterval(progress);
  await reportQueue;

  const totals = consumer.totals();
  const title = `defender-forwarder forward --from-eventhub (${consumer.eventHubName}, consumer group ${options.consumerGroup})`;
  io.stderr.write(renderSummary({ title, dryRun: false, bodies: events, elapsedMs: Date.now() - startedMs, ...tally.view() }));
  const account = accountRun(totals, {
    host: 'standalone',
    source: `eh:${consumer.eventHubName}`,
    startedAt: new Date(startedMs),
    finishedAt: new Date(),
    extra: {
      scope: 'run',
      events,
      partitions: consumer.partitions().map((partition) => ({
        partitionId: partition.partitionId,
        events: partition.events,
        checkpointedSequenceNumber: partition.checkpointedSequenceNumber,
      })),
    },
  });
  io.stderr.write(`${JSON.stringify(account)}\n`);
  // A daemon that stopped as asked succeeded; what was dead-lettered or quarantined is in the summary.
  return EXIT.ok;
}

/** The checkpoint container, by connection string or by account URL and credential. */
export function checkpointContainer(connection: BlobConnection, containerName: string, pipelineOptions: StoragePipelineOptions = {}): ContainerClient {
  if ('connectionString' in connection) return new ContainerClient(connection.connectionString, containerName, pipelineOptions);
  return new ContainerClient(`${connection.accountUrl.replace(/\/+$/, '')}/${containerName}`, connection.credential, pipelineOptions);
}

function sum(map: Readonly<Record<string, number>>): number {
  return Object.values(map).reduce((total, count) => total + count, 0);
}

/** An error as one line of text, credentials masked (SDK messages can quote connection strings). */
function describe(error: unknown): string {
  const text = error instanceof Error ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}` : String(error);
  return redactCredentials(text);
}
