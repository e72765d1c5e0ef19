/**
 * The Event Hubs stand-in (test/support/eventHubs.ts) against the REAL clients: `EventHubProducerClient`,
 * `EventHubConsumerClient` and `BlobCheckpointStore` over the shared Azurite. These prove that the stand-in
 * answers everything the SDK asks of it on the paths our code uses, faults included.
 */
import {
  EventHubConsumerClient,
  EventHubProducerClient,
  earliestEventPosition,
  latestEventPosition,
  type CheckpointStore,
  type EventHubConsumerClientOptions,
  type PartitionContext,
  type ReceivedEventData,
  type SubscribeOptions,
  type Subscription,
} from '@azure/event-hubs';
import { BlobCheckpointStore } from '@azure/eventhubs-checkpointstore-blob';
import rhea from 'rhea';
import type { AmqpError, Receiver } from 'rhea';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createTestContainer, type TestContainer } from '../support/azurite.js';
import { startEventHubsStandIn, type EventHubsStandIn, type StoredEvent } from '../support/eventHubs.js';

const azuriteConnectionString = inject('azuriteConnectionString');

/**
 * The SDK's defaults wait 30 s between retries and 60 s for an operation: far too slow for a test. Every
 * client here uses these.
 */
const FAST_RETRIES = { maxRetries: 3, retryDelayInMs: 100, timeoutInMs: 5_000 };
const CLIENT_OPTIONS: EventHubConsumerClientOptions = { retryOptions: FAST_RETRIES };
/** How long a consumer waits before handing over an empty batch; short so that a dropped link is noticed. */
const MAX_WAIT_S = 1;

let standIn: EventHubsStandIn;
/** Run after each test, last first: every client, subscription and container a test opened. */
let cleanups: (() => Promise<void>)[] = [];

beforeEach(async () => {
  standIn = await startEventHubsStandIn();
  cleanups = [];
});

afterEach(async () => {
  // Bounded: a client closed while its connection is being lost can hang for good (see the close test).
  for (const cleanup of cleanups.reverse()) await settleWithin(cleanup(), 3_000);
  await standIn.close();
});

function producerFor(hub: string): EventHubProducerClient {
  const producer = new EventHubProducerClient(standIn.connectionString(hub), { retryOptions: FAST_RETRIES });
  cleanups.push(() => producer.close());
  return producer;
}

function consumerFor(hub: string, checkpointStore?: CheckpointStore, options: EventHubConsumerClientOptions = CLIENT_OPTIONS): EventHubConsumerClient {
  const consumer =
    checkpointStore === undefined
      ? new EventHubConsumerClient('$default', standIn.connectionString(hub), options)
      : new EventHubConsumerClient('$default', standIn.connectionString(hub), checkpointStore, options);
  cleanups.push(() => consumer.close());
  return consumer;
}

async function testContainer(): Promise<TestContainer> {
  const container = await createTestContainer(azuriteConnectionString, 'ehstandin');
  cleanups.push(() => container.dispose());
  return container;
}

/** What a subscription saw, in order. */
interface Collected {
  readonly events: ReceivedEventData[];
  readonly errors: unknown[];
  /** Partitions currently initialised and not yet closed. */
  readonly owned: Set<string>;
  readonly subscription: Subscription;
}

interface CollectOptions extends SubscribeOptions {
  /** Awaited with the last event of each non-empty batch before processEvents returns. */
  onBatch?: (last: ReceivedEventData, context: PartitionContext) => Promise<void>;
}

/** Subscribes to one partition, or to all through the load balancer when `partitionId` is undefined. */
function collect(consumer: EventHubConsumerClient, partitionId: string | undefined, options: CollectOptions = {}): Collected {
  const { onBatch, ...subscribeOptions } = options;
  const events: ReceivedEventData[] = [];
  const errors: unknown[] = [];
  const owned = new Set<string>();
  const handlers = {
    processInitialize: async (context: PartitionContext) => {
      owned.add(context.partitionId);
    },
    processClose: async (_reason: unknown, context: PartitionContext) => {
      owned.delete(context.partitionId);
    },
    processEvents: async (batch: ReceivedEventData[], context: PartitionContext) => {
      events.push(...batch);
      const last = batch.at(-1);
      if (onBatch !== undefined && last !== undefined) await onBatch(last, context);
    },
    processError: async (error: Error) => {
      errors.push(error);
    },
  };
  const settings: SubscribeOptions = { maxWaitTimeInSeconds: MAX_WAIT_S, ...subscribeOptions };
  const subscription = partitionId === undefined ? consumer.subscribe(handlers, settings) : consumer.subscribe(partitionId, handlers, settings);
  cleanups.push(() => subscription.close());
  return { events, errors, owned, subscription };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 8_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

async function settleWithin(task: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([task.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function sequenceNumbers(events: readonly { sequenceNumber: number }[]): number[] {
  return events.map((event) => event.sequenceNumber);
}

function range(from: number, toExclusive: number): number[] {
  return Array.from({ length: toExclusive - from }, (_, i) => from + i);
}

/** The fields the SDK derives from the stand-in's annotations must match what the partition holds. */
function expectSameAsStored(received: readonly ReceivedEventData[], stored: readonly StoredEvent[]): void {
  expect(received.map((event) => ({
    sequenceNumber: event.sequenceNumber,
    offset: event.offset,
    enqueuedMs: event.enqueuedTimeUtc.getTime(),
    partitionKey: event.partitionKey ?? undefined,
  }))).toEqual(stored.map((event) => ({
    sequenceNumber: event.sequenceNumber,
    offset: event.offset,
    enqueuedMs: event.enqueuedTimeUtc.getTime(),
    partitionKey: event.partitionKey,
  })));
}

describe('Event Hubs stand-in with the real SDK', () => {
  it('answers hub and partition properties, for empty and non-empty partitions and an unknown hub', async () => {
    standIn.createHub('props', 3);
    const stored = standIn.append('props', '1', ['{"a":1}', '{"a":2}']);
    const producer = producerFor('props');

    const hub = await producer.getEventHubProperties();
    expect(hub.name).toBe('props');
    expect(hub.partitionIds).toEqual(['0', '1', '2']);
    expect(hub.createdOn).toBeInstanceOf(Date);
    expect(Math.abs(hub.createdOn.getTime() - Date.now())).toBeLessThan(10_000);
    expect(await producer.getPartitionIds()).toEqual(['0', '1', '2']);

    const empty = await producer.getPartitionProperties('0');
    expect(empty).toEqual({
      eventHubName: 'props',
      partitionId: '0',
      beginningSequenceNumber: 0,
      lastEnqueuedSequenceNumber: -1,
      lastEnqueuedOffset: '-1',
      lastEnqueuedOnUtc: new Date(0),
      isEmpty: true,
    });
    const written = await producer.getPartitionProperties('1');
    expect(written).toEqual({
      eventHubName: 'props',
      partitionId: '1',
      beginningSequenceNumber: 0,
      lastEnqueuedSequenceNumber: 1,
      lastEnqueuedOffset: stored[1]?.offset,
      lastEnqueuedOnUtc: stored[1]?.enqueuedTimeUtc,
      isEmpty: false,
    });

    const unknown = producerFor('no-such-hub');
    await expect(unknown.getEventHubProperties()).rejects.toMatchObject({ code: 'MessagingEntityNotFoundError' });
    await expect(producer.getPartitionProperties('7')).rejects.toMatchObject({ code: 'ArgumentOutOfRangeError' });
  });

  it('stores what producers send (by key, to a partition, as an array, a large batch) and consumers get it intact', async () => {
    standIn.createHub('send', 4);
    const producer = producerFor('send');

    const keyed = await producer.createBatch({ partitionKey: 'tenant-1' });
    expect(keyed.maxSizeInBytes).toBe(1024 * 1024); // the stand-in's max_message_size on the sender's link
    for (let i = 0; i < 3; i++) expect(keyed.tryAdd({ body: { kind: 'alert', i }, properties: { source: 'defender', n: i, urgent: i === 0 } })).toBe(true);
    await producer.sendBatch(keyed);

    const pinned = await producer.createBatch({ partitionId: '2' });
    expect(pinned.tryAdd({ body: 'plain text', contentType: 'text/plain', messageId: 'm-1' })).toBe(true);
    await producer.sendBatch(pinned);
    await producer.sendBatch([{ body: { array: true } }, { body: { array: 2 } }], { partitionId: '3' });

    const large = await producer.createBatch({ partitionId: '1' });
    const filler = 'x'.repeat(200);
    for (let i = 0; i < 300; i++) expect(large.tryAdd({ body: { i, filler }, properties: { i } })).toBe(true);
    await producer.sendBatch(large);

    expect(standIn.stats.received).toBe(3 + 1 + 2 + 300);
    // A keyed batch lands whole in one partition, which the key decides.
    const keyedPartition = ['0', '1', '2', '3'].find((id) => standIn.events('send', id).some((event) => event.partitionKey === 'tenant-1'));
    expect(keyedPartition).toBeDefined();
    const keyedStored = standIn.events('send', keyedPartition ?? '').filter((event) => event.partitionKey === 'tenant-1');
    expect(keyedStored).toHaveLength(3);
    // The SDK JSON-encodes non-Buffer bodies, strings included: "plain text" travels with its quotes.
    expect(standIn.events('send', '2').at(-1)?.body.toString('utf8')).toBe('"plain text"');

    const consumer = consumerFor('send');
    const byPartition = new Map(['0', '1', '2', '3'].map((id) => [id, collect(consumer, id, { startPosition: earliestEventPosition, maxBatchSize: 100 })]));
    const total = () => [...byPartition.values()].reduce((sum, collected) => sum + collected.events.length, 0);
    await waitFor(() => total() === 306, 'all 306 events');

    for (const [id, collected] of byPartition) {
      expectSameAsStored(collected.events, standIn.events('send', id));
      expect(collected.errors).toEqual([]);
    }
    const keyedReceived = byPartition.get(keyedPartition ?? '')?.events.filter((event) => event.partitionKey === 'tenant-1') ?? [];
    expect(keyedReceived.map((event) => [event.body, event.properties])).toEqual([0, 1, 2].map((i) => [{ kind: 'alert', i }, { source: 'defender', n: i, urgent: i === 0 }]));

    const pinnedReceived = byPartition.get('2')?.events.at(-1);
    expect(pinnedReceived?.body).toBe('plain text');
    expect(pinnedReceived?.contentType).toBe('text/plain');
    expect(pinnedReceived?.messageId).toBe('m-1');
    const unkeyedOn3 = byPartition.get('3')?.events.filter((event) => event.partitionKey === undefined || event.partitionKey === null) ?? [];
    expect(unkeyedOn3.map((event) => event.body)).toEqual([{ array: true }, { array: 2 }]);

    const largeReceived = byPartition.get('1')?.events ?? [];
    expect(sequenceNumbers(largeReceived)).toEqual(range(0, 300));
    expect(largeReceived.every((event, i) => event.body.i === i && event.body.filler === filler && event.properties?.['i'] === i)).toBe(true);
    expect(standIn.stats.delivered).toBe(306);
  });

  it('hands appended raw bytes back unchanged to a consumer that skips JSON parsing', async () => {
    standIn.createHub('raw', 1);
    const bodies = [Buffer.from('{"truncated":'), Buffer.from([0xff, 0xfe, 0x00, 0x7b]), Buffer.alloc(0), Buffer.from('[{"id":"a"},{"id":"b"}]')];
    standIn.append('raw', '0', [...bodies, { body: Buffer.from('{"k":1}'), partitionKey: 'pk', properties: { type: 'Alert', count: 2, ok: false } }]);

    // One EventHubConsumerClient takes one subscription per partition ("Partition already has a subscriber").
    let lastEnqueued: PartitionContext['lastEnqueuedEventProperties'] | undefined;
    const rawCollected = collect(consumerFor('raw'), '0', {
      startPosition: earliestEventPosition,
      skipParsingBodyAsJson: true,
      trackLastEnqueuedEventProperties: true,
      onBatch: async (_last, context) => {
        lastEnqueued = { ...context.lastEnqueuedEventProperties };
      },
    });
    const parsedCollected = collect(consumerFor('raw'), '0', { startPosition: earliestEventPosition });
    await waitFor(() => rawCollected.events.length === 5 && parsedCollected.events.length === 5, 'both consumers to get 5 events');

    for (const [i, body] of bodies.entries()) {
      const received: unknown = rawCollected.events[i]?.body;
      expect(Buffer.isBuffer(received) && received.equals(body)).toBe(true);
    }
    expect(rawCollected.events[4]).toMatchObject({ partitionKey: 'pk', properties: { type: 'Alert', count: 2, ok: false } });
    // Without skipParsingBodyAsJson the SDK parses what it can and hands the rest over as the raw Buffer.
    expect(parsedCollected.events.map((event) => event.body)).toEqual([bodies[0], bodies[1], bodies[2], [{ id: 'a' }, { id: 'b' }], { k: 1 }]);
    const stored = standIn.events('raw', '0');
    expectSameAsStored(rawCollected.events, stored);
    expect(lastEnqueued).toMatchObject({ sequenceNumber: 4, offset: stored[4]?.offset, enqueuedOn: stored[4]?.enqueuedTimeUtc });
  });

  it('starts from earliest, latest, a sequence number, an offset (inclusive and exclusive) and an enqueued time', async () => {
    standIn.createHub('positions', 1);
    standIn.append('positions', '0', range(0, 5).map((i) => `{"i":${i}}`));
    await sleep(25);
    const second = standIn.append('positions', '0', range(5, 10).map((i) => `{"i":${i}}`));
    const firstOfSecond = second[0];
    if (firstOfSecond === undefined) throw new Error('nothing appended');
    const stored = standIn.events('positions', '0');
    const offsetOf = (sequenceNumber: number): string => stored[sequenceNumber]?.offset ?? 'missing';

    const cases = {
      earliest: { position: earliestEventPosition, expected: range(0, 10) },
      sequenceExclusive: { position: { sequenceNumber: 3 }, expected: range(4, 10) },
      sequenceInclusive: { position: { sequenceNumber: 3, isInclusive: true }, expected: range(3, 10) },
      offsetExclusive: { position: { offset: offsetOf(4) }, expected: range(5, 10) },
      offsetInclusive: { position: { offset: offsetOf(4), isInclusive: true }, expected: range(4, 10) },
      enqueuedTime: { position: { enqueuedOn: firstOfSecond.enqueuedTimeUtc.getTime() - 1 }, expected: range(5, 10) },
    };
    const collected = Object.fromEntries(Object.entries(cases).map(([name, { position }]) => [name, collect(consumerFor('positions'), '0', { startPosition: position })]));
    const latest = collect(consumerFor('positions'), '0', { startPosition: latestEventPosition });
    await waitFor(() => standIn.receivers('positions').length === 7, 'all seven receivers to attach');

    // Only now: "latest" means after what the partition held when the receiver attached.
    standIn.append('positions', '0', ['{"i":10}']);
    for (const [name, { expected }] of Object.entries(cases)) {
      await waitFor(() => collected[name]?.events.length === expected.length + 1, `${name} to receive ${expected.length + 1} events`);
      expect(sequenceNumbers(collected[name]?.events ?? []), name).toEqual([...expected, 10]);
    }
    await waitFor(() => latest.events.length === 1, 'the latest consumer to receive the new event');
    await sleep(100);
    expect(sequenceNumbers(latest.events)).toEqual([10]);
  });

  it('resumes after the checkpoint in a BlobCheckpointStore: nothing repeated, nothing missed', async () => {
    standIn.createHub('resume', 1);
    const container = await testContainer();
    const checkpointStore = new BlobCheckpointStore(container.containerClient);
    const producer = producerFor('resume');
    await producer.sendBatch(range(0, 5).map((i) => ({ body: { i } })));

    const options: EventHubConsumerClientOptions = { ...CLIENT_OPTIONS, loadBalancingOptions: { updateIntervalInMs: 200, partitionOwnershipExpirationIntervalInMs: 2_000 } };
    const first = consumerFor('resume', checkpointStore, options);
    const firstRun = collect(first, undefined, {
      startPosition: earliestEventPosition,
      onBatch: (last, context) => context.updateCheckpoint(last),
    });
    await waitFor(() => firstRun.events.length === 5, 'the first consumer to get 5 events');
    const checkpoints = async () => checkpointStore.listCheckpoints(standIn.fullyQualifiedNamespace, 'resume', '$default');
    await expect.poll(async () => (await checkpoints())[0]?.sequenceNumber, { timeout: 5_000 }).toBe(4);
    await firstRun.subscription.close();
    await first.close();
    expect((await checkpoints())[0]).toMatchObject({ partitionId: '0', offset: standIn.events('resume', '0')[4]?.offset });

    await producer.sendBatch(range(5, 8).map((i) => ({ body: { i } })));
    const second = consumerFor('resume', checkpointStore, options);
    const secondRun = collect(second, undefined, { startPosition: earliestEventPosition });
    await waitFor(() => secondRun.events.length === 3, 'the second consumer to get the 3 new events');
    await sleep(150);
    expect(sequenceNumbers(firstRun.events)).toEqual(range(0, 5));
    expect(sequenceNumbers(secondRun.events)).toEqual(range(5, 8));
    expect(secondRun.events.map((event) => event.body)).toEqual([{ i: 5 }, { i: 6 }, { i: 7 }]);
  });

  it('lets two load-balanced consumers split a 4-partition hub, and one take over all 4 from the checkpoints', async () => {
    standIn.createHub('balance', 4);
    const partitionIds = ['0', '1', '2', '3'];
    const container = await testContainer();
    const checkpointStore = new BlobCheckpointStore(container.containerClient);
    const options: EventHubConsumerClientOptions = {
      ...CLIENT_OPTIONS,
      loadBalancingOptions: { strategy: 'balanced', updateIntervalInMs: 200, partitionOwnershipExpirationIntervalInMs: 2_000 },
    };
    const checkpointEachBatch: CollectOptions = {
      startPosition: earliestEventPosition,
      onBatch: (last, context) => context.updateCheckpoint(last),
    };
    const a = collect(consumerFor('balance', checkpointStore, options), undefined, checkpointEachBatch);
    const b = collect(consumerFor('balance', checkpointStore, options), undefined, checkpointEachBatch);
    const balancedAt = Date.now();
    // Initialised-and-not-closed overlaps for a moment while a partition changes hands: wait for disjoint halves.
    await waitFor(() => a.owned.size === 2 && b.owned.size === 2 && new Set([...a.owned, ...b.owned]).size === 4, 'each consumer to own 2 of the 4 partitions', 20_000);
    const balanceMs = Date.now() - balancedAt;
    expect([...a.owned, ...b.owned].sort()).toEqual(partitionIds);
    const ownedByA = [...a.owned];
    const ownedByB = [...b.owned];
    // With a checkpoint store the SDK attaches with owner level 0, so a partition taken over while the two
    // were settling cost its previous holder a ReceiverDisconnectedError: that is the service's way, not a fault.
    const settlingErrors = [...a.errors, ...b.errors];
    for (const error of settlingErrors) expect(error).toMatchObject({ code: 'ReceiverDisconnectedError' });

    for (const id of partitionIds) standIn.append('balance', id, range(0, 5).map((i) => `{"p":"${id}","i":${i}}`));
    const seenBy = (collected: Collected, id: string): number[] => sequenceNumbers(collected.events.filter((event) => event.body.p === id));
    await waitFor(() => partitionIds.every((id) => (ownedByA.includes(id) ? seenBy(a, id) : seenBy(b, id)).length === 5), 'each owner to get its 5 events');
    for (const id of ownedByA) expect(seenBy(b, id)).toEqual([]);
    for (const id of ownedByB) expect(seenBy(a, id)).toEqual([]);

    // Closing abandons A's ownerships; B claims them (one per load-balancing round) and starts after A's checkpoints.
    await a.subscription.close();
    const takeoverFrom = Date.now();
    await waitFor(() => b.owned.size === 4, 'B to own all 4 partitions', 20_000);
    const takeoverMs = Date.now() - takeoverFrom;
    for (const id of partitionIds) standIn.append('balance', id, range(5, 8).map((i) => `{"p":"${id}","i":${i}}`));
    await waitFor(() => partitionIds.every((id) => seenBy(b, id).includes(7)), 'B to get the new events everywhere');
    await sleep(100);
    for (const id of ownedByA) {
      expect(seenBy(a, id), `A on ${id}`).toEqual(range(0, 5));
      expect(seenBy(b, id), `B on ${id}`).toEqual(range(5, 8));
    }
    for (const id of ownedByB) expect(seenBy(b, id), `B on ${id}`).toEqual(range(0, 8));
    expect([...a.errors, ...b.errors]).toEqual(settlingErrors);
    // About 0.3-0.9 s each with a 200 ms update interval; the bounds are generous for slow machines.
    expect(balanceMs).toBeLessThan(8_000);
    expect(takeoverMs).toBeLessThan(8_000);
  }, 50_000);

  it('disconnects a receiver when one with a higher owner level attaches, and refuses a lower one', async () => {
    standIn.createHub('owners', 1);
    standIn.append('owners', '0', ['{"i":0}']);
    const first = collect(consumerFor('owners'), '0', { startPosition: earliestEventPosition, ownerLevel: 1 });
    await waitFor(() => first.events.length === 1, 'the first receiver to get the event');
    expect(standIn.receivers('owners')).toEqual([{ hub: 'owners', consumerGroup: '$default', partitionId: '0', ownerLevel: 1, connectionId: expect.any(Number) }]);

    const second = collect(consumerFor('owners'), '0', { startPosition: earliestEventPosition, ownerLevel: 2 });
    await waitFor(() => first.errors.length > 0, "the first receiver's processError");
    expect(first.errors[0]).toMatchObject({ code: 'ReceiverDisconnectedError' });
    await waitFor(() => second.events.length === 1, 'the second receiver to get the event');
    const receivers = standIn.receivers('owners');
    expect(receivers).toEqual([{ hub: 'owners', consumerGroup: '$default', partitionId: '0', ownerLevel: 2, connectionId: expect.any(Number) }]);
    // The pump stops for good on ReceiverDisconnectedError and reports OwnershipLost.
    await waitFor(() => first.owned.size === 0, 'the first subscription to close its partition');

    const lower = collect(consumerFor('owners'), '0', { startPosition: earliestEventPosition, ownerLevel: 0 });
    const none = collect(consumerFor('owners'), '0', { startPosition: earliestEventPosition });
    await waitFor(() => lower.errors.length > 0 && none.errors.length > 0, 'the lower and the level-less receivers to be refused');
    expect(lower.errors[0]).toMatchObject({ code: 'ReceiverDisconnectedError' });
    expect(none.errors[0]).toMatchObject({ code: 'ReceiverDisconnectedError' });
    expect(standIn.receivers('owners')).toEqual(receivers);
    expect(standIn.stats.linksRefused).toBe(2);
  });

  it('survives dropped connections mid-stream: the consumer reconnects and resumes with no gap', async () => {
    standIn.createHub('drops', 1);
    standIn.append('drops', '0', range(0, 50).map((i) => `{"i":${i}}`));
    const collected = collect(consumerFor('drops'), '0', { startPosition: earliestEventPosition, maxBatchSize: 5, prefetchCount: 5 });
    await waitFor(() => collected.events.length >= 10, 'the first events');
    const connectionsBefore = standIn.connectionCount();
    expect(connectionsBefore).toBeGreaterThan(0);
    const [before] = standIn.receivers('drops');

    const droppedAt = Date.now();
    expect(standIn.dropConnections()).toBe(connectionsBefore);
    expect(standIn.receivers()).toEqual([]);
    expect(standIn.connectionCount()).toBe(0);
    standIn.append('drops', '0', range(50, 60).map((i) => `{"i":${i}}`));
    await waitFor(() => standIn.receivers('drops').some((receiver) => receiver.connectionId !== before?.connectionId), 'the consumer to attach again on a new connection');
    const reattachMs = Date.now() - droppedAt;
    standIn.append('drops', '0', range(60, 70).map((i) => `{"i":${i}}`));
    await waitFor(() => new Set(sequenceNumbers(collected.events)).size === 70, 'all 70 distinct events');

    const distinct = [...new Set(sequenceNumbers(collected.events))].sort((x, y) => x - y);
    expect(distinct).toEqual(range(0, 70));
    expect(standIn.stats.connectionsDropped).toBe(connectionsBefore);

    // A producer whose connection is dropped reconnects on its next send.
    const producer = producerFor('drops');
    await producer.sendBatch([{ body: { i: 70 } }], { partitionId: '0' });
    const secondDrop = standIn.dropConnections();
    expect(secondDrop).toBe(2); // the consumer's connection and the producer's
    // A send issued before the client has seen the reset waits for its try timeout (timeoutInMs) instead.
    await sleep(50);
    const sentAt = Date.now();
    await producer.sendBatch([{ body: { i: 71 } }], { partitionId: '0' });
    await waitFor(() => new Set(sequenceNumbers(collected.events)).size === 72, 'the events sent around the second drop');
    expect(standIn.stats.connectionsDropped).toBe(connectionsBefore + secondDrop);
    expect(reattachMs).toBeLessThan(5_000);
  });

  it('refuses a link once on request: processError sees it, then the consumer receives', async () => {
    standIn.createHub('refusals', 1);
    standIn.append('refusals', '0', ['{"i":0}', '{"i":1}']);
    standIn.refuseLinks({ address: 'refusals/ConsumerGroups/$default/Partitions/0', condition: 'com.microsoft:server-busy', description: 'busy, try later' });
    // processError sees only what is left when the SDK's own retries are spent: with none, it sees every failure.
    const consumer = consumerFor('refusals', undefined, { retryOptions: { ...FAST_RETRIES, maxRetries: 0 } });
    const collected = collect(consumer, '0', { startPosition: earliestEventPosition });
    await waitFor(() => collected.events.length === 2, 'both events after the refusal');
    expect(collected.errors).toHaveLength(1);
    expect(collected.errors[0]).toMatchObject({ code: 'ServerBusyError', message: 'busy, try later' });
    expect(standIn.stats).toMatchObject({ linksRefused: 1 });

    // A regular expression picks links too, here the producer's; the SDK retries it (FAST_RETRIES) and succeeds.
    standIn.refuseLinks({ address: /^refusals\/Partitions\/0$/, times: 2 });
    await producerFor('refusals').sendBatch([{ body: { i: 2 } }], { partitionId: '0' });
    await waitFor(() => collected.events.length === 3, 'the event sent after two refused sender attaches');
    expect(standIn.stats.linksRefused).toBe(3);
  });

  it('closes with clients still attached, without hanging', async () => {
    standIn.createHub('closing', 1);
    const collected = collect(consumerFor('closing'), '0', { startPosition: earliestEventPosition });
    const producer = producerFor('closing');
    await producer.sendBatch([{ body: 1 }]);
    await waitFor(() => collected.events.length === 1, 'the event');
    const closingAt = Date.now();
    await standIn.close();
    expect(Date.now() - closingAt).toBeLessThan(1_000);
    expect(standIn.connectionCount()).toBe(0);
    // rhea-promise 3.0.3 never settles a link close that is under way when the connection is lost (its
    // onDisconnected only removes listeners), so let the clients see the reset before closing them.
    await sleep(100);
    const clientsClosingAt = Date.now();
    await collected.subscription.close();
    await producer.close();
    expect(Date.now() - clientsClosingAt).toBeLessThan(1_000);
  });

  it('speaks plain AMQP: stores a single (non-batch) message, and refuses unknown entities and filters clearly', async () => {
    standIn.createHub('plain', 2);
    // With a username and password rhea authenticates with SASL PLAIN (the SDK itself uses ANONYMOUS).
    const connection = rhea.create_container().connect({ host: standIn.host, port: standIn.port, username: 'user', password: 'any', reconnect: false });
    cleanups.push(async () => connection.close());
    await new Promise((resolve) => connection.once('connection_open', resolve));

    const sender = connection.open_sender({ target: { address: 'plain/Partitions/1' } });
    await new Promise((resolve) => sender.once('sendable', resolve));
    const outcome = new Promise<string>((resolve) => {
      sender.once('accepted', () => resolve('accepted'));
      sender.once('rejected', () => resolve('rejected'));
    });
    const message = {
      message_id: 'plain-1',
      message_annotations: { 'x-opt-partition-key': 'pk' },
      application_properties: { kind: 'plain' },
      body: rhea.message.data_section(Buffer.from('{"plain":true}')),
    };
    sender.send(rhea.message.encode(message), undefined, 0);
    expect(await outcome).toBe('accepted');
    expect(standIn.events('plain', '1')).toMatchObject([{ sequenceNumber: 0, offset: '0', partitionKey: 'pk', body: Buffer.from('{"plain":true}') }]);

    const refusalOf = async (address: string, filter?: Record<string, unknown>): Promise<AmqpError | Error | undefined> => {
      const receiver: Receiver = connection.open_receiver({ source: { address, ...(filter === undefined ? {} : { filter }) }, credit_window: 0 });
      await new Promise((resolve) => receiver.once('receiver_close', resolve));
      return receiver.error;
    };
    const selector = (text: string) => ({ 'apache.org:selector-filter:string': rhea.types.wrap_described(text, 0x468c00000004) });
    expect(await refusalOf('nohub/ConsumerGroups/$default/Partitions/0')).toMatchObject({ condition: 'amqp:not-found', description: expect.stringMatching(/The messaging entity .* could not be found/) });
    expect(await refusalOf('plain/ConsumerGroups/$default/Partitions/9')).toMatchObject({ condition: 'com.microsoft:argument-out-of-range' });
    expect(await refusalOf('plain/ConsumerGroups/$default/Partitions/0', { 'com.example:other': 'x' })).toMatchObject({
      condition: 'com.microsoft:argument-error',
      description: expect.stringContaining('com.example:other'),
    });
    expect(await refusalOf('plain/ConsumerGroups/$default/Partitions/0', selector("amqp.annotation.x-opt-foo > '1'"))).toMatchObject({
      condition: 'com.microsoft:argument-error',
      description: expect.stringContaining('cannot parse'),
    });
    expect(standIn.stats.linksRefused).toBe(4);

    connection.close();
    await waitFor(() => standIn.connectionCount() === 0, 'the connection to close');
  });

  it('delays management answers and deliveries while a delay is set', async () => {
    standIn.createHub('slow', 1);
    const producer = producerFor('slow');
    await producer.getPartitionProperties('0');
    standIn.setDelay(300);
    let started = Date.now();
    await producer.getPartitionProperties('0');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);

    const collected = collect(consumerFor('slow'), '0', { startPosition: earliestEventPosition });
    await waitFor(() => standIn.receivers('slow').length === 1, 'the receiver to attach');
    started = Date.now();
    standIn.append('slow', '0', ['{"i":0}']);
    await waitFor(() => collected.events.length === 1, 'the delayed event');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);

    standIn.setDelay(0);
    started = Date.now();
    standIn.append('slow', '0', ['{"i":1}']);
    await waitFor(() => collected.events.length === 2, 'the undelayed event');
    expect(Date.now() - started).toBeLessThan(250);
  });
});
