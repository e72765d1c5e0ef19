/**
 * The forwarder's metrics, recorded through the OpenTelemetry API. Without a meter provider (no
 * `APPLICATIONINSIGHTS_CONNECTION_STRING`, see ./azureMonitor.ts) every instrument is a no-op, so recording
 * costs nothing in tests and command-line runs that do not export.
 *
 * The counters are fed from the one place that already totals a run (the `run.summary` account), so the
 * metrics and the summary lines cannot disagree. Retries and delivery latency come from the one retry loop
 * (src/delivery/retry.ts), batch age from the pipeline when a batch starts.
 *
 * Names (Application Insights `customMetrics.name`, Log Analytics `AppMetrics.Name`):
 *
 * | metric                              | kind      | unit     | dimensions                 |
 * |-------------------------------------|-----------|----------|----------------------------|
 * | forwarder.records.received          | counter   | {record} | host                       |
 * | forwarder.records.routed            | counter   | {record} | host                       |
 * | forwarder.records.unrouted          | counter   | {record} | host                       |
 * | forwarder.records.muted             | counter   | {record} | host                       |
 * | forwarder.records.quarantined       | counter   | {record} | host, reason               |
 * | forwarder.deliveries.delivered      | counter   | {record} | host, destination          |
 * | forwarder.deliveries.duplicates     | counter   | {record} | host, destination          |
 * | forwarder.deliveries.muted          | counter   | {record} | host, destination          |
 * | forwarder.deliveries.dead_lettered  | counter   | {record} | host, destination          |
 * | forwarder.deliveries.redriven       | counter   | {record} | host, destination          |
 * | forwarder.delivery.retries          | counter   | {retry}  | destination, reason        |
 * | forwarder.delivery.duration         | histogram | ms       | destination, outcome       |
 * | forwarder.batch.age                 | histogram | ms       | (none)                     |
 *
 * `host` is `function`, `standalone`, `cli` or `redrive`. A dry run records nothing: it delivered nothing.
 * Dimension values are destination names from the rules file and fixed codes, never record content.
 */
import { metrics, type Counter, type Histogram } from '@opentelemetry/api';
import type { RunAccount } from '../pipeline/accounting.js';

/** The meter's name: the instrumentation scope of every metric above. */
export const METER_NAME = 'defender-forwarder';

export const METRIC = Object.freeze({
  received: 'forwarder.records.received',
  routed: 'forwarder.records.routed',
  unrouted: 'forwarder.records.unrouted',
  muted: 'forwarder.records.muted',
  quarantined: 'forwarder.records.quarantined',
  delivered: 'forwarder.deliveries.delivered',
  duplicates: 'forwarder.deliveries.duplicates',
  mutedFor: 'forwarder.deliveries.muted',
  deadLettered: 'forwarder.deliveries.dead_lettered',
  redriven: 'forwarder.deliveries.redriven',
  retries: 'forwarder.delivery.retries',
  deliveryDuration: 'forwarder.delivery.duration',
  batchAge: 'forwarder.batch.age',
});

interface Instruments {
  readonly records: Readonly<Record<'received' | 'routed' | 'unrouted' | 'muted' | 'quarantined', Counter>>;
  readonly deliveries: Readonly<Record<'delivered' | 'duplicates' | 'mutedFor' | 'deadLettered' | 'redriven', Counter>>;
  readonly retries: Counter;
  readonly deliveryDuration: Histogram;
  readonly batchAge: Histogram;
}

// Instruments are bound to the meter provider that was global when they were made. They are made anew when
// the provider changes (a test, or the exporter starting after the first record), never per record.
let made: { readonly provider: unknown; readonly instruments: Instruments } | undefined;

function instruments(): Instruments {
  const provider = metrics.getMeterProvider();
  if (made?.provider === provider) return made.instruments;
  const meter = provider.getMeter(METER_NAME);
  const counter = (name: string, description: string, unit = '{record}'): Counter => meter.createCounter(name, { description, unit });
  const instrumentSet: Instruments = {
    records: {
      received: counter(METRIC.received, 'Records received (a body with several records counts each)'),
      routed: counter(METRIC.routed, 'Records routed to at least one destination'),
      unrouted: counter(METRIC.unrouted, 'Valid records no route matched'),
      muted: counter(METRIC.muted, 'Records every destination of which was muted'),
      quarantined: counter(METRIC.quarantined, 'Records quarantined, by reason code'),
    },
    deliveries: {
      delivered: counter(METRIC.delivered, 'Records a destination accepted'),
      duplicates: counter(METRIC.duplicates, 'Notifications suppressed because the ledger says they were sent'),
      mutedFor: counter(METRIC.mutedFor, 'Records a mute kept from a destination'),
      deadLettered: counter(METRIC.deadLettered, 'Records dead-lettered for a destination after their retries'),
      redriven: counter(METRIC.redriven, 'Dead letters a re-drive delivered'),
    },
    retries: counter(METRIC.retries, 'Waits before another delivery attempt, by the failure that caused them', '{retry}'),
    deliveryDuration: meter.createHistogram(METRIC.deliveryDuration, { description: 'Time of one delivery attempt to a destination', unit: 'ms' }),
    batchAge: meter.createHistogram(METRIC.batchAge, { description: 'Age of the oldest event of a batch when its processing starts (now - enqueued time)', unit: 'ms' }),
  };
  made = { provider, instruments: instrumentSet };
  return instrumentSet;
}

/** Counts a finished run from its `run.summary` account. A dry run is not counted. */
export function recordRun(account: RunAccount): void {
  if (account['dryRun'] === true) return;
  const { records, deliveries } = instruments();
  const host = { host: account.host };
  const add = (counter: Counter, value: number, attributes: Record<string, string>): void => {
    if (value > 0) counter.add(value, attributes);
  };
  add(records.received, account.received, host);
  add(records.routed, account.routed, host);
  add(records.unrouted, account.unrouted, host);
  add(records.muted, account.muted, host);
  for (const [reason, count] of Object.entries(account.quarantinedBy)) add(records.quarantined, count, { ...host, reason });
  const perDestination: readonly (readonly [Counter, Readonly<Record<string, number>>])[] = [
    [deliveries.delivered, account.delivered],
    [deliveries.duplicates, account.duplicates],
    [deliveries.mutedFor, account.mutedBy],
    [deliveries.deadLettered, account.deadLettered],
    [deliveries.redriven, account.redriven],
  ];
  for (const [counter, counts] of perDestination) {
    for (const [destination, count] of Object.entries(counts)) add(counter, count, { ...host, destination });
  }
}

/** One wait before another attempt: `reason` is the failure's class (`throttled`, `unavailable`, ...). */
export function recordRetry(destination: string, reason: string): void {
  instruments().retries.add(1, { destination, reason });
}

/** One delivery attempt (one request carrying one or more records): `outcome` is `ok` or the failure class. */
export function recordDeliveryAttempt(destination: string, outcome: string, durationMs: number): void {
  instruments().deliveryDuration.record(Math.max(0, durationMs), { destination, outcome });
}

/**
 * The age of a batch when its processing starts: now minus the enqueued time of its oldest event. Batches
 * without enqueued times (files on the command line) record nothing. A batch run again (a host retry, an
 * in-place re-run while a store is down) is sampled again: the count is of attempts.
 */
export function recordBatchAge(enqueuedTimes: Iterable<string | undefined>, now: Date): void {
  let oldest = Number.POSITIVE_INFINITY;
  for (const time of enqueuedTimes) {
    if (time === undefined) continue;
    const ms = Date.parse(time);
    if (Number.isFinite(ms) && ms < oldest) oldest = ms;
  }
  if (oldest === Number.POSITIVE_INFINITY) return;
  instruments().batchAge.record(Math.max(0, now.getTime() - oldest));
}
