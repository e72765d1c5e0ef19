/**
 * A test-only stand-in for Azure Event Hubs: an AMQP 1.0 server on `rhea` that speaks enough of the service's
 * protocol for the real `@azure/event-hubs` clients (producer, consumer, load-balanced processor with a
 * checkpoint store), listening on 127.0.0.1 with an ephemeral port. Nothing leaves the machine.
 *
 * The official emulator needs Docker; the SDK talks plain AMQP (no TLS) to the port of a connection string
 * that ends with `;UseDevelopmentEmulator=true` (core-amqp `ConnectionContextBase`), which is what
 * {@link EventHubsStandIn.connectionString} returns.
 *
 * What it serves (each checked against the SDK's own code in node_modules/@azure/event-hubs and core-amqp):
 * - SASL ANONYMOUS and PLAIN (any credentials), and `$cbs` `put-token` (always 202: tokens are not checked);
 * - `$management` `READ` of `com.microsoft:eventhub` and `com.microsoft:partition`;
 * - senders on `<hub>` (partition by key hash, else round-robin) and `<hub>/Partitions/<id>`, single messages
 *   and the SDK's batch format (`0x80013700`: one transfer whose data sections are whole encoded messages);
 * - receivers on `<hub>/ConsumerGroups/<group>/Partitions/<id>` with the `apache.org:selector-filter:string`
 *   start filter, the receiver's own credit, owner levels (`com.microsoft:epoch`) and, when asked for with the
 *   `com.microsoft:enable-receiver-runtime-metric` capability, last-enqueued-event delivery annotations;
 * - fault hooks: drop every connection, refuse link attaches, delay answers.
 */
import { createHash } from 'node:crypto';
import type { Server, Socket } from 'node:net';
import rhea from 'rhea';
import type { AmqpError, Connection, Container, Delivery, EventContext, Receiver, Sender } from 'rhea';

/** An event to {@link EventHubsStandIn.append}. */
export interface StandInEvent {
  body: Buffer;
  partitionKey?: string;
  properties?: Record<string, string | number | boolean>;
}

/** An event as a partition holds it. */
export interface StoredEvent {
  sequenceNumber: number;
  offset: string;
  enqueuedTimeUtc: Date;
  partitionKey?: string;
  body: Buffer;
}

/** A receiver (consumer link) attached to a partition. */
export interface ReceiverInfo {
  hub: string;
  consumerGroup: string;
  partitionId: string;
  ownerLevel?: number;
  /** The stand-in's own number for the AMQP connection the link lives on (1, 2, ... in order of arrival). */
  connectionId: number;
}

/** A fault: refuse link attaches whose address matches. */
export interface LinkRefusal {
  /** A pattern, or a substring of the link's address (`hub/ConsumerGroups/$default/Partitions/0`, `hub`, `$cbs`...). */
  address: RegExp | string;
  /** AMQP error condition (default `amqp:internal-error`, which the SDK retries). */
  condition?: string;
  description?: string;
  /** How many attaches to refuse (default 1). */
  times?: number;
}

/** The running stand-in. */
export interface EventHubsStandIn {
  readonly host: string;
  readonly port: number;
  /** The checkpoint store's fullyQualifiedNamespace: the host without the port ('127.0.0.1'). */
  readonly fullyQualifiedNamespace: string;
  /** `Endpoint=sb://127.0.0.1:PORT/;SharedAccessKeyName=k;SharedAccessKey=v;EntityPath=<hub>;UseDevelopmentEmulator=true` (no EntityPath when hub is omitted). */
  connectionString(hub?: string): string;
  /** Adds a hub with partitions "0".."n-1" (hubs given to start exist already). Throws if it exists. */
  createHub(name: string, partitionCount: number): void;
  /**
   * Appends events straight into a partition, bypassing AMQP (fast seeding, and raw bodies exactly as
   * Defender's export sends them: the body is one AMQP data section holding these bytes). Returns the stored
   * events. A string body is UTF-8 encoded.
   */
  append(hub: string, partitionId: string, events: readonly (StandInEvent | string | Buffer)[]): StoredEvent[];
  /** What a partition holds. */
  events(hub: string, partitionId: string): readonly StoredEvent[];
  /** Receivers currently attached. */
  receivers(hub?: string): ReceiverInfo[];
  /** Number of open AMQP connections. */
  connectionCount(): number;
  /** Fault: destroys every open connection's socket now (the SDK must reconnect and resume). Returns how many. */
  dropConnections(): number;
  /** Fault: refuses the next matching link attach(es) with an AMQP error condition. */
  refuseLinks(refusal: LinkRefusal): void;
  /** Fault: delays every outgoing transfer to receivers and every management/CBS answer by `ms` (0 to stop). */
  setDelay(ms: number): void;
  /** Counters: events accepted from senders, events delivered to receivers, links attached/refused, connections dropped. */
  readonly stats: { received: number; delivered: number; linksAttached: number; linksRefused: number; connectionsDropped: number };
  /** Closes the listener and destroys every connection. Safe to call more than once. */
  close(): Promise<void>;
}

export interface StartEventHubsStandInOptions {
  /** Hub name -> partition count (default {}). */
  hubs?: Record<string, number>;
  /** Advertised on every link the server receives on, and enforced on batches (default 1 MiB). */
  maxMessageSizeBytes?: number;
}

/** The SDK's batch message format (`EventHubSender._trySendBatch`). */
const BATCH_MESSAGE_FORMAT = 0x80013700;
const SELECTOR_FILTER_NAME = 'apache.org:selector-filter:string';
const SELECTOR_FILTER_CODE = 0x468c00000004;
const OWNER_LEVEL_PROPERTY = 'com.microsoft:epoch';
const RUNTIME_METRIC_CAPABILITY = 'com.microsoft:enable-receiver-runtime-metric';
const IDEMPOTENT_PRODUCER_CAPABILITY = 'com.microsoft:idempotent-producer';
const CBS_NODE = '$cbs';
const MANAGEMENT_NODE = '$management';
const DEFAULT_MAX_MESSAGE_SIZE_BYTES = 1024 * 1024;
/** Credit the server grants each sender; rhea tops it up as messages arrive. */
const SENDER_CREDIT_WINDOW = 500;
/**
 * Offsets are cumulative byte positions, as on the real service, so that a consumer mixing offsets up with
 * sequence numbers fails here too. The overhead keeps them strictly increasing for empty bodies.
 */
const OFFSET_OVERHEAD_BYTES = 64;
/** Message properties a sender may set that the service hands on to receivers unchanged. */
const CARRIED_MESSAGE_PROPERTIES = [
  'message_id', 'user_id', 'to', 'subject', 'reply_to', 'correlation_id', 'content_type', 'content_encoding',
  'absolute_expiry_time', 'creation_time', 'group_id', 'group_sequence', 'reply_to_group_id',
] as const;

/** A stored event plus what only the wire needs. */
interface EventRecord {
  readonly stored: StoredEvent;
  readonly offsetBytes: number;
  readonly applicationProperties: Record<string, unknown> | undefined;
  readonly messageProperties: Record<string, unknown>;
}

interface PartitionLog {
  readonly id: string;
  readonly records: EventRecord[];
  nextOffsetBytes: number;
}

interface Hub {
  readonly name: string;
  readonly createdAt: Date;
  readonly partitions: Map<string, PartitionLog>;
  roundRobin: number;
}

/** A receiver's link, seen from the server: the server sends on it. */
interface ConsumerLink {
  readonly sender: Sender;
  readonly hub: Hub;
  readonly partition: PartitionLog;
  readonly consumerGroup: string;
  readonly ownerLevel: number | undefined;
  readonly connectionId: number;
  readonly runtimeMetric: boolean;
  /** Monotone in the event: the selector filter. Only events after the first match are delivered. */
  readonly accepts: (record: EventRecord) => boolean;
  /** Index of the next record to look at. */
  cursor: number;
  pumpTimer: NodeJS.Timeout | undefined;
}

interface RefusalRule {
  readonly address: RegExp | string;
  readonly condition: string;
  readonly description: string;
  remaining: number;
}

/** What a sender's message (one event) carries into the store. */
interface IncomingEvent {
  readonly body: Buffer;
  readonly partitionKey: string | undefined;
  readonly applicationProperties: Record<string, unknown> | undefined;
  readonly messageProperties: Record<string, unknown>;
}

/** A link-level refusal with the AMQP condition the SDK will translate. */
class LinkRefused extends Error {
  constructor(readonly condition: string, description: string) {
    super(description);
  }
}

function toAmqpError(error: unknown): AmqpError {
  if (error instanceof LinkRefused) return { condition: error.condition, description: error.message };
  return { condition: 'amqp:internal-error', description: error instanceof Error ? error.message : String(error) };
}

/** Starts a stand-in on 127.0.0.1, port 0. */
export async function startEventHubsStandIn(options: StartEventHubsStandInOptions = {}): Promise<EventHubsStandIn> {
  const standIn = new EventHubsStandInServer(options.maxMessageSizeBytes ?? DEFAULT_MAX_MESSAGE_SIZE_BYTES);
  for (const [name, partitionCount] of Object.entries(options.hubs ?? {})) standIn.createHub(name, partitionCount);
  await standIn.listen();
  return standIn;
}

class EventHubsStandInServer implements EventHubsStandIn {
  readonly host = '127.0.0.1';
  readonly fullyQualifiedNamespace = '127.0.0.1';
  readonly stats = { received: 0, delivered: 0, linksAttached: 0, linksRefused: 0, connectionsDropped: 0 };

  private readonly container: Container;
  private server: Server | undefined;
  private listeningPort = 0;
  private readonly hubs = new Map<string, Hub>();
  private readonly sockets = new Set<Socket>();
  private readonly connectionIds = new WeakMap<Connection, number>();
  private nextConnectionId = 1;
  private readonly consumers = new Map<Sender, ConsumerLink>();
  /** Per connection: the links request/response clients receive answers on, by link name and target address. */
  private readonly replyLinks = new WeakMap<Connection, Map<string, Sender>>();
  /** Answers waiting for credit on their reply link. */
  private readonly pendingAnswers = new Map<Sender, Buffer[]>();
  private readonly refusals: RefusalRule[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private delayMs = 0;
  private closing: Promise<void> | undefined;

  constructor(private readonly maxMessageSizeBytes: number) {
    this.container = rhea.create_container({
      id: 'event-hubs-stand-in',
      // Read by every link the server creates for a remote sender (rhea `Session.create_receiver`). Manual
      // settlement lets a batch that breaks the rules be rejected instead of silently accepted.
      receiver_options: { autoaccept: false, credit_window: SENDER_CREDIT_WINDOW, max_message_size: maxMessageSizeBytes },
    });
    enableSaslMechanisms(this.container.sasl_server_mechanisms);
    this.registerHandlers();
  }

  get port(): number {
    return this.listeningPort;
  }

  connectionString(hub?: string): string {
    const entityPath = hub === undefined ? '' : `EntityPath=${hub};`;
    return `Endpoint=sb://${this.host}:${this.port}/;SharedAccessKeyName=k;SharedAccessKey=v;${entityPath}UseDevelopmentEmulator=true`;
  }

  createHub(name: string, partitionCount: number): void {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`invalid hub name "${name}"`);
    if (!Number.isInteger(partitionCount) || partitionCount < 1) throw new Error(`hub "${name}": partition count must be a positive integer, got ${partitionCount}`);
    if (this.hubs.has(name.toLowerCase())) throw new Error(`hub "${name}" exists already`);
    const partitions = new Map<string, PartitionLog>();
    for (let i = 0; i < partitionCount; i++) partitions.set(String(i), { id: String(i), records: [], nextOffsetBytes: 0 });
    // Hub names are case-insensitive on the service.
    this.hubs.set(name.toLowerCase(), { name, createdAt: new Date(), partitions, roundRobin: 0 });
  }

  append(hub: string, partitionId: string, events: readonly (StandInEvent | string | Buffer)[]): StoredEvent[] {
    const { partition } = this.resolvePartition(hub, partitionId);
    const incoming = events.map((event): IncomingEvent => {
      if (typeof event === 'string') return { body: Buffer.from(event, 'utf8'), partitionKey: undefined, applicationProperties: undefined, messageProperties: {} };
      if (Buffer.isBuffer(event)) return { body: event, partitionKey: undefined, applicationProperties: undefined, messageProperties: {} };
      return {
        body: event.body,
        partitionKey: event.partitionKey,
        applicationProperties: event.properties === undefined ? undefined : { ...event.properties },
        messageProperties: {},
      };
    });
    return this.store(partition, incoming);
  }

  events(hub: string, partitionId: string): readonly StoredEvent[] {
    return this.resolvePartition(hub, partitionId).partition.records.map((record) => record.stored);
  }

  receivers(hub?: string): ReceiverInfo[] {
    const wanted = hub === undefined ? undefined : this.hubs.get(hub.toLowerCase());
    return [...this.consumers.values()]
      .filter((consumer) => hub === undefined || consumer.hub === wanted)
      .map((consumer) => ({
        hub: consumer.hub.name,
        consumerGroup: consumer.consumerGroup,
        partitionId: consumer.partition.id,
        ...(consumer.ownerLevel === undefined ? {} : { ownerLevel: consumer.ownerLevel }),
        connectionId: consumer.connectionId,
      }));
  }

  connectionCount(): number {
    return this.sockets.size;
  }

  dropConnections(): number {
    const sockets = [...this.sockets];
    for (const socket of sockets) {
      // With an error, destroy() emits 'error', which rhea listens to (it ignores 'close'): its connection then
      // goes through its disconnect path, stops its heartbeat timer and tells us through 'disconnected'.
      socket.destroy(new Error('connection dropped by the Event Hubs stand-in'));
      this.sockets.delete(socket);
    }
    // That 'error' comes on a later tick; callers should already see no receivers and no connections.
    this.forgetLinksWhere(() => true);
    this.stats.connectionsDropped += sockets.length;
    return sockets.length;
  }

  refuseLinks(refusal: LinkRefusal): void {
    const times = refusal.times ?? 1;
    if (!Number.isInteger(times) || times < 1) throw new Error(`refuseLinks: times must be a positive integer, got ${times}`);
    const condition = refusal.condition ?? 'amqp:internal-error';
    this.refusals.push({
      address: refusal.address,
      condition,
      description: refusal.description ?? `link refused by the Event Hubs stand-in (${condition})`,
      remaining: times,
    });
  }

  setDelay(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`setDelay: ms must be a non-negative number, got ${ms}`);
    this.delayMs = ms;
    if (ms === 0) for (const consumer of this.consumers.values()) this.pump(consumer);
  }

  listen(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const server = this.container.listen({ host: this.host, port: 0 });
      this.server = server;
      server.on('connection', (socket: Socket) => {
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
      });
      server.once('error', reject);
      server.once('listening', () => {
        server.off('error', reject);
        const address = server.address();
        if (address === null || typeof address === 'string') {
          reject(new Error(`Event Hubs stand-in: unexpected listening address ${String(address)}`));
          return;
        }
        this.listeningPort = address.port;
        resolve();
      });
    });
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const timer of this.timers) clearTimeout(timer);
      this.timers.clear();
      const server = this.server;
      for (const socket of this.sockets) socket.destroy(new Error('Event Hubs stand-in closed'));
      this.sockets.clear();
      this.forgetLinksWhere(() => true);
      if (server === undefined || !server.listening) {
        resolve();
        return;
      }
      // Resolves once every socket is gone; they were all destroyed above.
      server.close(() => resolve());
    });
    return this.closing;
  }

  private registerHandlers(): void {
    const container = this.container;
    container.on('sender_open', (context: EventContext) => {
      if (context.sender !== undefined) this.onSenderLinkOpen(context.sender, context.connection);
    });
    container.on('receiver_open', (context: EventContext) => {
      if (context.receiver !== undefined) this.onReceiverLinkOpen(context.receiver);
    });
    container.on('message', (context: EventContext) => this.onMessage(context));
    container.on('sendable', (context: EventContext) => {
      if (context.sender !== undefined) this.onSendable(context.sender);
    });
    // A client may detach a link, end a session or close or lose its connection: all end the receivers there.
    for (const event of ['sender_close', 'sender_error']) {
      container.on(event, (context: EventContext) => {
        if (context.sender !== undefined) this.forgetLink(context.sender);
      });
    }
    for (const event of ['session_close', 'session_error']) {
      container.on(event, (context: EventContext) => {
        const session = context.session;
        if (session !== undefined) this.forgetLinksWhere((sender) => sender.session === session);
      });
    }
    for (const event of ['connection_close', 'connection_error', 'disconnected']) {
      container.on(event, (context: EventContext) => {
        const connection = context.connection;
        this.forgetLinksWhere((sender) => sender.connection === connection);
        this.replyLinks.delete(connection);
      });
    }
    // rhea emits what nobody handled (a producer detaching with an error, a socket error) as the container's
    // 'error', which would throw without a listener; a broken frame ends only that client's connection.
    container.on('protocol_error', () => undefined);
    container.on('error', () => undefined);
  }

  /** A remote receiver attached: a consumer, or the reply side of a `$cbs`/`$management` client. */
  private onSenderLinkOpen(sender: Sender, connection: Connection): void {
    const source: unknown = sender.source;
    const address = readString(readField(source, 'address')) ?? '';
    // Echoed so the client's `receiver.address` (rhea-promise reads `source.address`) is never null.
    sender.set_source({ address });
    try {
      this.applyRefusals(address);
      if (address === CBS_NODE || address === MANAGEMENT_NODE) {
        this.registerReplyLink(connection, sender);
      } else {
        this.attachConsumer(sender, connection, address, readField(source, 'filter'));
      }
      this.stats.linksAttached += 1;
    } catch (error: unknown) {
      this.refuse(sender, error);
    }
  }

  /** A remote sender attached: a producer, or the request side of a `$cbs`/`$management` client. */
  private onReceiverLinkOpen(receiver: Receiver): void {
    const target: unknown = receiver.target;
    const address = readString(readField(target, 'address')) ?? '';
    receiver.set_target({ address });
    try {
      this.applyRefusals(address);
      if (address !== CBS_NODE && address !== MANAGEMENT_NODE) {
        if (capabilitiesOf(receiver.desired_capabilities).includes(IDEMPOTENT_PRODUCER_CAPABILITY)) {
          throw new LinkRefused('amqp:not-implemented', 'The Event Hubs stand-in does not implement idempotent publishing.');
        }
        this.resolveProducerTarget(address);
      }
      this.stats.linksAttached += 1;
    } catch (error: unknown) {
      this.refuse(receiver, error);
    }
  }

  private applyRefusals(address: string): void {
    const rule = this.refusals.find((candidate) =>
      typeof candidate.address === 'string' ? address.includes(candidate.address) : candidate.address.test(address),
    );
    if (rule === undefined) return;
    rule.remaining -= 1;
    if (rule.remaining === 0) this.refusals.splice(this.refusals.indexOf(rule), 1);
    throw new LinkRefused(rule.condition, rule.description);
  }

  /**
   * Refuses an attach the way the service does: rhea has already queued our attach (it opens every remote link
   * before telling us), so the detach with the error follows it at once, and the client sees the error.
   */
  private refuse(link: Sender | Receiver, error: unknown): void {
    this.stats.linksRefused += 1;
    link.close(toAmqpError(error));
  }

  private registerReplyLink(connection: Connection, sender: Sender): void {
    let links = this.replyLinks.get(connection);
    if (links === undefined) {
      links = new Map();
      this.replyLinks.set(connection, links);
    }
    // core-amqp's `$cbs` client names its link after its reply-to and sets no target address; its `$management`
    // client sets both. Either key finds the link.
    links.set(sender.name, sender);
    const targetAddress = readString(readField(sender.target, 'address'));
    if (targetAddress !== undefined) links.set(targetAddress, sender);
  }

  private attachConsumer(sender: Sender, connection: Connection, address: string, filter: unknown): void {
    const match = /^([^/]+)\/ConsumerGroups\/([^/]+)\/Partitions\/([^/]+)$/i.exec(entityPathOf(address));
    if (match?.[1] === undefined || match[2] === undefined || match[3] === undefined) {
      throw new LinkRefused('amqp:not-found', `The messaging entity '${this.entityUri(address)}' could not be found. (Event Hubs stand-in: expected <hub>/ConsumerGroups/<group>/Partitions/<id>)`);
    }
    const consumerGroup = match[2];
    const { hub, partition } = this.resolvePartition(match[1], match[3]);
    const accepts = parseStartFilter(readSelector(filter), partition);
    const properties: unknown = sender.properties;
    const ownerLevelValue = readField(properties, OWNER_LEVEL_PROPERTY);
    const ownerLevel = typeof ownerLevelValue === 'number' ? ownerLevelValue : undefined;
    this.enforceOwnerLevel(hub, consumerGroup, partition, ownerLevel, sender.name);

    const firstAccepted = partition.records.findIndex(accepts);
    const consumer: ConsumerLink = {
      sender,
      hub,
      partition,
      consumerGroup,
      ownerLevel,
      connectionId: this.connectionIdOf(connection),
      runtimeMetric: capabilitiesOf(sender.desired_capabilities).includes(RUNTIME_METRIC_CAPABILITY),
      accepts,
      cursor: firstAccepted === -1 ? partition.records.length : firstAccepted,
      pumpTimer: undefined,
    };
    this.consumers.set(sender, consumer);
  }

  /**
   * The service's owner-level ("epoch") rules for one (hub, consumer group, partition): a receiver with owner
   * level N disconnects every receiver there with a level <= N or none; one with a lower level than an existing
   * one, or none while one with a level exists, is refused. Both use `amqp:link:stolen`, which core-amqp maps to
   * ReceiverDisconnectedError.
   */
  private enforceOwnerLevel(hub: Hub, consumerGroup: string, partition: PartitionLog, ownerLevel: number | undefined, linkName: string): void {
    const peers = [...this.consumers.values()].filter(
      (other) => other.hub === hub && other.partition === partition && other.consumerGroup.toLowerCase() === consumerGroup.toLowerCase(),
    );
    const highest = Math.max(-Infinity, ...peers.flatMap((peer) => (peer.ownerLevel === undefined ? [] : [peer.ownerLevel])));
    const where = `partition '${partition.id}' of '${hub.name}' in consumer group '${consumerGroup}'`;
    if (ownerLevel === undefined) {
      if (highest > -Infinity) {
        throw new LinkRefused('amqp:link:stolen', `Receiver '${linkName}' without an owner level cannot be created on ${where}: a receiver with owner level '${highest}' exists.`);
      }
      return;
    }
    if (ownerLevel < highest) {
      throw new LinkRefused('amqp:link:stolen', `Receiver '${linkName}' with owner level '${ownerLevel}' cannot be created on ${where}: a receiver with the higher owner level '${highest}' exists.`);
    }
    for (const peer of peers) {
      this.forgetLink(peer.sender);
      peer.sender.close({
        condition: 'amqp:link:stolen',
        description: `New receiver '${linkName}' with higher epoch of '${ownerLevel}' is created hence current receiver '${peer.sender.name}' with epoch '${peer.ownerLevel ?? 'none'}' is getting disconnected.`,
      });
    }
  }

  private resolveProducerTarget(address: string): { hub: Hub; partition: PartitionLog | undefined } {
    const path = entityPathOf(address);
    const partitionMatch = /^([^/]+)\/Partitions\/([^/]+)$/i.exec(path);
    if (partitionMatch?.[1] !== undefined && partitionMatch[2] !== undefined) return this.resolvePartition(partitionMatch[1], partitionMatch[2]);
    if (path.includes('/')) throw new LinkRefused('amqp:not-found', `The messaging entity '${this.entityUri(address)}' could not be found.`);
    return { hub: this.resolveHub(path), partition: undefined };
  }

  private resolveHub(name: string): Hub {
    const hub = this.hubs.get(name.toLowerCase());
    // The wording matters: core-amqp maps "The messaging entity ... could not be found" to MessagingEntityNotFoundError.
    if (hub === undefined) throw new LinkRefused('amqp:not-found', `The messaging entity '${this.entityUri(name)}' could not be found.`);
    return hub;
  }

  private resolvePartition(hubName: string, partitionId: string): { hub: Hub; partition: PartitionLog } {
    const hub = this.resolveHub(hubName);
    const partition = hub.partitions.get(partitionId);
    if (partition === undefined) {
      throw new LinkRefused('com.microsoft:argument-out-of-range', `The specified partition '${partitionId}' is invalid for '${hub.name}': partitions are ${[...hub.partitions.keys()].join(', ')}.`);
    }
    return { hub, partition };
  }

  private entityUri(path: string): string {
    return `sb://${this.fullyQualifiedNamespace}/${entityPathOf(path)}`;
  }

  private onMessage(context: EventContext): void {
    const { receiver, delivery } = context;
    if (receiver === undefined || delivery === undefined) return;
    const address = readString(readField(receiver.target, 'address')) ?? '';
    // With a message format other than 0, rhea hands over the raw payload instead of decoding it.
    const payload: unknown = context.message;
    try {
      if (address === CBS_NODE || address === MANAGEMENT_NODE) {
        delivery.accept();
        const request = toRecord(payload);
        if (request !== undefined) this.answerRequest(context.connection, address, request);
        return;
      }
      this.receiveEvents(address, delivery, payload);
      delivery.accept();
    } catch (error: unknown) {
      delivery.reject(toAmqpError(error));
    }
  }

  private receiveEvents(address: string, delivery: Delivery, payload: unknown): void {
    const target = this.resolveProducerTarget(address);
    let events: IncomingEvent[];
    let outerPartitionKey: string | undefined;
    if (delivery.format === BATCH_MESSAGE_FORMAT && Buffer.isBuffer(payload)) {
      if (payload.length > this.maxMessageSizeBytes) {
        throw new LinkRefused('amqp:link:message-size-exceeded', `The received message (${payload.length} bytes) exceeds the limit (${this.maxMessageSizeBytes} bytes).`);
      }
      const outer = toRecord(rhea.message.decode(payload)) ?? {};
      outerPartitionKey = readString(readField(outer['message_annotations'], 'x-opt-partition-key'));
      events = dataSectionsOf(outer['body']).map((encoded) => toIncomingEvent(toRecord(rhea.message.decode(encoded)) ?? {}));
    } else if (delivery.format === 0) {
      const message = toRecord(payload) ?? {};
      events = [toIncomingEvent(message)];
      outerPartitionKey = events[0]?.partitionKey;
    } else {
      throw new LinkRefused('amqp:not-implemented', `Message format ${delivery.format} is not supported by the Event Hubs stand-in.`);
    }
    if (events.length === 0) return;
    // A whole batch lands in one partition, as on the service.
    const partitionKey = outerPartitionKey ?? events[0]?.partitionKey;
    const partition = target.partition ?? this.routeToPartition(target.hub, partitionKey);
    this.store(partition, events);
    this.stats.received += events.length;
  }

  private routeToPartition(hub: Hub, partitionKey: string | undefined): PartitionLog {
    const ids = [...hub.partitions.keys()];
    let index: number;
    if (partitionKey === undefined) {
      index = hub.roundRobin % ids.length;
      hub.roundRobin += 1;
    } else {
      // Stable, but not the service's own hash: do not predict partitions from keys in tests.
      index = createHash('sha256').update(partitionKey, 'utf8').digest().readUInt32BE(0) % ids.length;
    }
    const partition = hub.partitions.get(ids[index] ?? '0');
    if (partition === undefined) throw new Error(`hub "${hub.name}" has no partition ${index}`);
    return partition;
  }

  private store(partition: PartitionLog, events: readonly IncomingEvent[]): StoredEvent[] {
    const stored: StoredEvent[] = [];
    for (const event of events) {
      const last = partition.records.at(-1);
      // Never earlier than the previous event: enqueued-time filters rely on a monotone partition.
      const enqueuedMs = Math.max(Date.now(), last?.stored.enqueuedTimeUtc.getTime() ?? 0);
      const record: EventRecord = {
        stored: {
          sequenceNumber: partition.records.length,
          offset: String(partition.nextOffsetBytes),
          enqueuedTimeUtc: new Date(enqueuedMs),
          ...(event.partitionKey === undefined ? {} : { partitionKey: event.partitionKey }),
          body: event.body,
        },
        offsetBytes: partition.nextOffsetBytes,
        applicationProperties: event.applicationProperties,
        messageProperties: event.messageProperties,
      };
      partition.nextOffsetBytes += event.body.length + OFFSET_OVERHEAD_BYTES;
      partition.records.push(record);
      stored.push(record.stored);
    }
    for (const consumer of this.consumers.values()) if (consumer.partition === partition) this.pump(consumer);
    return stored;
  }

  private onSendable(sender: Sender): void {
    const consumer = this.consumers.get(sender);
    if (consumer !== undefined) {
      this.pump(consumer);
      return;
    }
    const pending = this.pendingAnswers.get(sender);
    while (pending !== undefined && pending.length > 0 && sender.sendable()) {
      const next = pending.shift();
      if (next !== undefined) sender.send(next, undefined, 0);
    }
    if (pending?.length === 0) this.pendingAnswers.delete(sender);
  }

  /** Sends what the receiver's credit allows, now or after the configured delay. */
  private pump(consumer: ConsumerLink): void {
    if (this.delayMs === 0) {
      this.pumpNow(consumer);
      return;
    }
    if (consumer.pumpTimer !== undefined) return;
    consumer.pumpTimer = this.later(this.delayMs, () => {
      consumer.pumpTimer = undefined;
      this.pumpNow(consumer);
    });
  }

  private pumpNow(consumer: ConsumerLink): void {
    const { sender, partition } = consumer;
    while (this.consumers.get(sender) === consumer && sender.is_open() && sender.sendable() && consumer.cursor < partition.records.length) {
      const record = partition.records[consumer.cursor];
      consumer.cursor += 1;
      if (record === undefined || !consumer.accepts(record)) continue;
      // Pre-encoded, sent as message format 0: rhea's `Message` type wants more than a plain object.
      sender.send(rhea.message.encode(this.toDeliveredMessage(consumer, record)), undefined, 0);
      this.stats.delivered += 1;
    }
  }

  private toDeliveredMessage(consumer: ConsumerLink, record: EventRecord): Record<string, unknown> {
    const { stored } = record;
    const annotations: Record<string, unknown> = {
      'x-opt-sequence-number': rhea.types.wrap_long(stored.sequenceNumber),
      'x-opt-offset': stored.offset,
      'x-opt-enqueued-time': stored.enqueuedTimeUtc,
    };
    if (stored.partitionKey !== undefined) annotations['x-opt-partition-key'] = stored.partitionKey;
    const message: Record<string, unknown> = {
      ...record.messageProperties,
      message_annotations: annotations,
      body: rhea.message.data_section(stored.body),
    };
    if (record.applicationProperties !== undefined) message['application_properties'] = record.applicationProperties;
    const last = consumer.partition.records.at(-1)?.stored;
    if (consumer.runtimeMetric && last !== undefined) {
      // What `fromRheaMessage` reads into lastEnqueuedEventProperties when trackLastEnqueuedEventProperties is on.
      message['delivery_annotations'] = {
        last_enqueued_sequence_number: rhea.types.wrap_long(last.sequenceNumber),
        last_enqueued_offset: last.offset,
        last_enqueued_time_utc: last.enqueuedTimeUtc,
        runtime_info_retrieval_time_utc: new Date(),
      };
    }
    return message;
  }

  private answerRequest(connection: Connection, node: string, request: Record<string, unknown>): void {
    const properties = toRecord(request['application_properties']) ?? {};
    const operation = readString(properties['operation']);
    if (node === CBS_NODE) {
      // Tokens are not checked: any put-token is accepted.
      if (operation === 'put-token') this.answer(connection, request, 202, 'Accepted');
      else this.answer(connection, request, 501, `The stand-in's $cbs node does not implement '${operation ?? ''}'.`, undefined, 'amqp:not-implemented');
      return;
    }
    if (operation !== 'READ') {
      this.answer(connection, request, 501, `The stand-in's $management node does not implement '${operation ?? ''}'.`, undefined, 'amqp:not-implemented');
      return;
    }
    const name = readString(properties['name']) ?? '';
    const hub = this.hubs.get(name.toLowerCase());
    if (hub === undefined) {
      // Both the 404 and this wording make core-amqp report MessagingEntityNotFoundError.
      this.answer(connection, request, 404, `The messaging entity '${this.entityUri(name)}' could not be found. status-code: 404`, undefined, 'amqp:not-found');
      return;
    }
    const type = readString(properties['type']);
    if (type === 'com.microsoft:eventhub') {
      this.answer(connection, request, 200, 'OK', {
        name: hub.name,
        created_at: hub.createdAt,
        partition_count: rhea.types.wrap_int(hub.partitions.size),
        partition_ids: [...hub.partitions.keys()],
      });
      return;
    }
    if (type === 'com.microsoft:partition') {
      const partitionId = readString(properties['partition']) ?? '';
      const partition = hub.partitions.get(partitionId);
      if (partition === undefined) {
        this.answer(connection, request, 400, `The specified partition '${partitionId}' is invalid for '${hub.name}'.`, undefined, 'com.microsoft:argument-out-of-range');
        return;
      }
      const first = partition.records[0]?.stored;
      const last = partition.records.at(-1)?.stored;
      // An empty partition: sequence number -1 and offset "-1" (the SDK's own "before the first event"), time 0.
      this.answer(connection, request, 200, 'OK', {
        name: hub.name,
        partition: partition.id,
        begin_sequence_number: rhea.types.wrap_long(first?.sequenceNumber ?? 0),
        last_enqueued_sequence_number: rhea.types.wrap_long(last?.sequenceNumber ?? -1),
        last_enqueued_offset: last?.offset ?? '-1',
        last_enqueued_time_utc: last?.enqueuedTimeUtc ?? new Date(0),
        is_partition_empty: last === undefined,
      });
      return;
    }
    this.answer(connection, request, 400, `Unknown management type '${type ?? ''}'.`, undefined, 'com.microsoft:argument-error');
  }

  /** Replies on the link named by the request's reply-to, correlated by its message id (core-amqp `RequestResponseLink`). */
  private answer(connection: Connection, request: Record<string, unknown>, statusCode: number, statusDescription: string, body?: Record<string, unknown>, errorCondition?: string): void {
    const replyTo = readString(request['reply_to']);
    const sender = replyTo === undefined ? undefined : this.replyLinks.get(connection)?.get(replyTo);
    if (sender === undefined || replyTo === undefined) return;
    const applicationProperties: Record<string, unknown> = {
      'status-code': rhea.types.wrap_int(statusCode),
      'status-description': statusDescription,
    };
    if (errorCondition !== undefined) applicationProperties['error-condition'] = errorCondition;
    const encoded = rhea.message.encode({
      correlation_id: request['message_id'],
      to: replyTo,
      application_properties: applicationProperties,
      ...(body === undefined ? {} : { body }),
    });
    const send = (): void => {
      if (!sender.is_open()) return;
      if (sender.sendable()) {
        sender.send(encoded, undefined, 0);
        return;
      }
      const pending = this.pendingAnswers.get(sender) ?? [];
      pending.push(encoded);
      this.pendingAnswers.set(sender, pending);
    };
    if (this.delayMs === 0) send();
    else this.later(this.delayMs, send);
  }

  private forgetLink(sender: Sender): void {
    const consumer = this.consumers.get(sender);
    if (consumer !== undefined) {
      clearTimeout(consumer.pumpTimer);
      this.consumers.delete(sender);
    }
    this.pendingAnswers.delete(sender);
  }

  private forgetLinksWhere(predicate: (sender: Sender) => boolean): void {
    for (const sender of [...this.consumers.keys(), ...this.pendingAnswers.keys()]) {
      if (predicate(sender)) this.forgetLink(sender);
    }
  }

  private connectionIdOf(connection: Connection): number {
    let id = this.connectionIds.get(connection);
    if (id === undefined) {
      id = this.nextConnectionId++;
      this.connectionIds.set(connection, id);
    }
    return id;
  }

  private later(ms: number, action: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      action();
    }, ms);
    this.timers.add(timer);
    return timer;
  }
}

/** Accepts SASL ANONYMOUS and PLAIN with any credentials (the SDK uses ANONYMOUS for the emulator). */
function enableSaslMechanisms(mechanisms: unknown): void {
  if (!isSaslServerMechanisms(mechanisms)) throw new Error('rhea: unexpected sasl_server_mechanisms');
  mechanisms.enable_anonymous();
  mechanisms.enable_plain(() => true);
}

interface SaslServerMechanisms {
  enable_anonymous(): void;
  enable_plain(verify: (username: string, password: string) => boolean): void;
}

function isSaslServerMechanisms(value: unknown): value is SaslServerMechanisms {
  return typeof readField(value, 'enable_anonymous') === 'function' && typeof readField(value, 'enable_plain') === 'function';
}

/** The entity path of an address, which may come as `amqps://host/path`, `/path` or `path`. */
function entityPathOf(address: string): string {
  return address.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '').replace(/^\/+/, '');
}

/** The selector text of a source filter, or undefined without one. Throws on a filter it does not know. */
function readSelector(filter: unknown): string | undefined {
  const entries = toRecord(filter);
  if (entries === undefined || Object.keys(entries).length === 0) return undefined;
  for (const [key, value] of Object.entries(entries)) {
    const descriptor = readField(readField(value, 'descriptor'), 'value');
    if (key === SELECTOR_FILTER_NAME || descriptor === SELECTOR_FILTER_CODE || descriptor === SELECTOR_FILTER_NAME) {
      const text = readString(readField(value, 'value')) ?? readString(value);
      if (text !== undefined) return text;
    }
  }
  throw new LinkRefused('com.microsoft:argument-error', `The Event Hubs stand-in does not know the source filter(s) ${Object.keys(entries).join(', ')}; it knows ${SELECTOR_FILTER_NAME}.`);
}

const SELECTOR = /^\s*amqp\.annotation\.(x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)\s*(>=|>)\s*'([^']*)'\s*$/;

/**
 * Turns the SDK's start-position selector (`getEventPositionFilter`) into a test on records. The test is
 * monotone along the partition, so delivery starts at the first record that passes. No filter means the start.
 */
function parseStartFilter(selector: string | undefined, partition: PartitionLog): (record: EventRecord) => boolean {
  if (selector === undefined) return () => true;
  const match = SELECTOR.exec(selector);
  const [, annotation, operator, operand] = match ?? [];
  if (annotation === undefined || operator === undefined || operand === undefined) {
    throw new LinkRefused('com.microsoft:argument-error', `The Event Hubs stand-in cannot parse the selector filter "${selector}".`);
  }
  const inclusive = operator === '>=';
  if (annotation === 'x-opt-offset') {
    if (operand === '-1') return () => true;
    if (operand === '@latest') {
      const firstNew = partition.records.length;
      return (record) => record.stored.sequenceNumber >= firstNew;
    }
    const offset = parseInteger(operand, selector);
    return (record) => (inclusive ? record.offsetBytes >= offset : record.offsetBytes > offset);
  }
  const value = parseInteger(operand, selector);
  if (annotation === 'x-opt-sequence-number') {
    return (record) => (inclusive ? record.stored.sequenceNumber >= value : record.stored.sequenceNumber > value);
  }
  return (record) => {
    const enqueuedMs = record.stored.enqueuedTimeUtc.getTime();
    return inclusive ? enqueuedMs >= value : enqueuedMs > value;
  };
}

function parseInteger(text: string, selector: string): number {
  if (!/^-?\d+$/.test(text)) throw new LinkRefused('com.microsoft:argument-error', `The selector filter "${selector}" does not hold an integer.`);
  return Number(text);
}

/** One event from a decoded AMQP message (an inner message of a batch, or a single message). */
function toIncomingEvent(message: Record<string, unknown>): IncomingEvent {
  const messageProperties: Record<string, unknown> = {};
  for (const name of CARRIED_MESSAGE_PROPERTIES) {
    const value = message[name];
    if (value !== undefined && value !== null) messageProperties[name] = value;
  }
  return {
    body: bodyBytesOf(message['body']),
    partitionKey: readString(readField(message['message_annotations'], 'x-opt-partition-key')),
    applicationProperties: toRecord(message['application_properties']),
    messageProperties,
  };
}

/**
 * The bytes of a message body. Data sections are kept exactly; an amqp-value or amqp-sequence body (which
 * the SDK sends only for AmqpAnnotatedMessage with bodyType value/sequence) is stored as its JSON text.
 */
function bodyBytesOf(body: unknown): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (isSection(body)) {
    if (body.typecode === 0x75) return Buffer.concat(dataSectionsOf(body));
    return Buffer.from(JSON.stringify(body.content), 'utf8');
  }
  if (Buffer.isBuffer(body)) return body;
  return Buffer.from(JSON.stringify(body), 'utf8');
}

/** The buffers of a body made of data sections (rhea folds several into one section with `multiple`). */
function dataSectionsOf(body: unknown): Buffer[] {
  if (!isSection(body) || body.typecode !== 0x75) return [];
  const contents = body.multiple === true && Array.isArray(body.content) ? (body.content as unknown[]) : [body.content];
  return contents.map((content) => (Buffer.isBuffer(content) ? content : content instanceof Uint8Array ? Buffer.from(content) : Buffer.alloc(0)));
}

interface Section {
  typecode: number;
  content: unknown;
  multiple?: unknown;
}

function isSection(value: unknown): value is Section {
  return typeof readField(value, 'typecode') === 'number' && value !== null && typeof value === 'object' && 'content' in value;
}

function capabilitiesOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

function toRecord(value: unknown): Record<string, unknown> | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value)) return undefined;
  return value as Record<string, unknown>;
}

/** A property of an object of unknown shape (rhea's decoded frames are plain objects or composites with getters). */
function readField(value: unknown, key: string): unknown {
  if (value === null || value === undefined || (typeof value !== 'object' && typeof value !== 'function')) return undefined;
  return (value as Record<string, unknown>)[key];
}

function readString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
