/**
 * A Splunk HTTP Event Collector stand-in on node:http (127.0.0.1, port 0) that answers as Splunk does
 * (protocols.md): token auth with the real codes, concatenated (and gzipped) JSON event batches checked event
 * by event (the events before a bad one ARE indexed), indexes, channels and indexer acknowledgement, the
 * health endpoint. It can be scripted to fail the next event requests: busy (503 code 9, optional
 * `Retry-After`), internal error (500 code 8), a bad event at position K, hang, close the connection, or an
 * acknowledgement that stays false.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** What HEC indexed: the envelope objects as received, in order. */
export type ReceivedEvent = Record<string, unknown>;

export interface ReceivedRequest {
  readonly method: string;
  /** Path and query, as requested. */
  readonly url: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** Header names and values as sent, in order. */
  readonly rawHeaders: readonly string[];
  /** Body bytes on the wire. */
  readonly bodyBytes: number;
  /** Body bytes after gunzip (equal to `bodyBytes` when not compressed). */
  readonly uncompressedBytes: number;
}

/** One scripted failure for the next event request. `times` repeats it (default 1). */
export type HecScriptStep = { readonly times?: number } & (
  /** Answer normally (to script a failure for a later request). */
  | { readonly fail: 'none' }
  /** 503 `{"text":"Server is busy","code":9}`, with `Retry-After` when given. */
  | { readonly fail: 'busy'; readonly retryAfter?: string }
  /** 500 `{"text":"Internal server error","code":8}`. */
  | { readonly fail: 'internal' }
  /** Treat the event at 0-based position `at` as invalid (code 6, or 12/13); the ones before are indexed. */
  | { readonly fail: 'invalid-event'; readonly at: number; readonly code?: 6 | 12 | 13 }
  /** Read the request and never answer (until `stop`). */
  | { readonly fail: 'hang' }
  /** Read the request and drop the connection without an answer. */
  | { readonly fail: 'close' }
  /** Index the request normally, but its acknowledgement stays false forever. */
  | { readonly fail: 'hold-ack' }
);

export interface HecReceiverOptions {
  /** The one valid token. */
  readonly token: string;
  /** Tokens that exist but are disabled (403 code 1). */
  readonly disabledTokens?: readonly string[];
  /** Indexer acknowledgement on (the token's `useACK`): channels required, `ackId` in answers. */
  readonly acks?: boolean;
  /** Indexes the token may write to; an event naming another gets 400 code 7. Default: any. */
  readonly indexes?: readonly string[];
}

export interface HecReceiver {
  /** Base URL (`http://127.0.0.1:PORT`), as a user would configure it. */
  readonly url: string;
  /** Indexed events, in order. */
  readonly events: ReceivedEvent[];
  /** Every request (event, ack, health, unknown paths), in order of arrival (recorded once its body is read). */
  readonly requests: ReceivedRequest[];
  /** Requests to the event endpoints. */
  eventRequests(): ReceivedRequest[];
  /** Queues failures for the next event requests (those that pass auth and channel checks), in order. */
  script(...steps: HecScriptStep[]): void;
  /** Resolves once `count` requests have arrived in all. */
  waitForRequests(count: number): Promise<void>;
  /** Closes the server and every connection (hung requests included). */
  stop(): Promise<void>;
}

const EVENT_PATHS = new Set(['/services/collector', '/services/collector/event', '/services/collector/event/1.0']);
const ACK_PATH = '/services/collector/ack';
const HEALTH_PATH = '/services/collector/health';
const ENVELOPE_KEYS = new Set(['time', 'host', 'source', 'sourcetype', 'index', 'event', 'fields']);
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

const TEXTS: Readonly<Record<number, string>> = {
  0: 'Success',
  1: 'Token disabled',
  2: 'Token is required',
  3: 'Invalid authorization',
  4: 'Invalid token',
  5: 'No data',
  6: 'Invalid data format',
  7: 'Incorrect index',
  8: 'Internal server error',
  9: 'Server is busy',
  10: 'Data channel is missing',
  11: 'Invalid data channel',
  12: 'Event field is required',
  13: 'Event field cannot be blank',
  14: 'ACK is disabled',
  15: 'Error in handling indexed fields',
  16: 'Query string authorization is not enabled',
  17: 'HEC is healthy',
};

interface Channel {
  nextAckId: number;
  /** ackId -> indexed (true), or held (false, forever). Forgotten once answered true. */
  readonly acks: Map<number, boolean>;
}

export async function startHecReceiver(options: HecReceiverOptions): Promise<HecReceiver> {
  const events: ReceivedEvent[] = [];
  const requests: ReceivedRequest[] = [];
  const queue: HecScriptStep[] = [];
  const channels = new Map<string, Channel>();
  const waiters: { count: number; resolve: () => void }[] = [];

  const answer = (res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8', ...headers });
    res.end(JSON.stringify(body));
  };
  const code = (res: ServerResponse, status: number, hecCode: number, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): void =>
    answer(res, status, { text: TEXTS[hecCode] ?? 'Unknown', code: hecCode, ...extra }, headers);

  /** Auth exactly as Splunk checks it; answers and returns false when refused. */
  const authorised = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams): boolean => {
    const header = req.headers.authorization;
    if (header === undefined) {
      if (query.has('token')) code(res, 400, 16);
      else code(res, 401, 2);
      return false;
    }
    if (!header.startsWith('Splunk ')) {
      code(res, 401, 3);
      return false;
    }
    const token = header.slice('Splunk '.length).trim();
    if (options.disabledTokens?.includes(token)) {
      code(res, 403, 1);
      return false;
    }
    if (token !== options.token) {
      code(res, 403, 4);
      return false;
    }
    return true;
  };

  /** The channel when acks are on (answers 10/11 and returns undefined when missing or invalid). */
  const channelOf = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Channel | undefined => {
    const header = req.headers['x-splunk-request-channel'];
    const id = (Array.isArray(header) ? header[0] : header) ?? query.get('channel') ?? undefined;
    if (id === undefined || id === '') {
      code(res, 400, 10);
      return undefined;
    }
    if (!GUID.test(id)) {
      code(res, 400, 11);
      return undefined;
    }
    const key = id.toLowerCase();
    let channel = channels.get(key);
    if (channel === undefined) {
      channel = { nextAckId: 0, acks: new Map() };
      channels.set(key, channel);
    }
    return channel;
  };

  const handleEvents = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams, body: Buffer | undefined): void => {
    if (!authorised(req, res, query)) return;
    let channel: Channel | undefined;
    if (options.acks) {
      channel = channelOf(req, res, query);
      if (channel === undefined) return;
    }
    const step = queue.shift();
    if (step?.fail === 'hang') return; // never answered; stop() closes the socket
    if (step?.fail === 'close') {
      req.socket.destroy();
      return;
    }
    if (step?.fail === 'busy') {
      code(res, 503, 9, {}, step.retryAfter !== undefined ? { 'Retry-After': step.retryAfter } : {});
      return;
    }
    if (step?.fail === 'internal') {
      code(res, 500, 8);
      return;
    }
    if (body === undefined) {
      code(res, 400, 6, { 'invalid-event-number': 0 });
      return;
    }
    const text = body.toString('utf8');
    if (text.trim() === '') {
      code(res, 400, 5);
      return;
    }
    const forcedAt = step?.fail === 'invalid-event' ? step.at : undefined;
    const forcedCode = step?.fail === 'invalid-event' ? (step.code ?? 6) : 6;
    let position = 0;
    for (const parsed of scanConcatenated(text)) {
      const problem = position === forcedAt ? forcedCode : parsed.ok ? checkEnvelope(parsed.value, options.indexes) : 6;
      if (problem !== 0) {
        code(res, 400, problem, { 'invalid-event-number': position });
        return;
      }
      if (parsed.ok) events.push(parsed.value as ReceivedEvent);
      position += 1;
    }
    if (channel === undefined) {
      code(res, 200, 0);
      return;
    }
    const ackId = channel.nextAckId++;
    channel.acks.set(ackId, step?.fail !== 'hold-ack');
    code(res, 200, 0, { ackId });
  };

  const handleAck = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams, body: Buffer | undefined): void => {
    if (!authorised(req, res, query)) return;
    if (!options.acks) {
      code(res, 400, 14);
      return;
    }
    const channel = channelOf(req, res, query);
    if (channel === undefined) return;
    let ids: unknown;
    try {
      ids = (JSON.parse(body?.toString('utf8') ?? '') as { acks?: unknown }).acks;
    } catch {
      ids = undefined;
    }
    if (!Array.isArray(ids) || !ids.every((id): id is number => Number.isInteger(id))) {
      code(res, 400, 6);
      return;
    }
    const acks: Record<string, boolean> = {};
    for (const id of ids) {
      const done = channel.acks.get(id) === true;
      acks[String(id)] = done;
      if (done) channel.acks.delete(id); // an id answered true once is forgotten
    }
    answer(res, 200, { acks });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      let body: Buffer | undefined = raw;
      if (/gzip/i.test(req.headers['content-encoding'] ?? '')) {
        try {
          body = gunzipSync(raw);
        } catch {
          body = undefined;
        }
      }
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        path: url.pathname,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        bodyBytes: raw.length,
        uncompressedBytes: body?.length ?? 0,
      });
      for (const waiter of waiters.filter((candidate) => requests.length >= candidate.count)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
      const path = url.pathname.replace(/\/+$/, '');
      if (path === HEALTH_PATH && req.method === 'GET') answer(res, 200, { text: TEXTS[17], code: 17 });
      else if (EVENT_PATHS.has(path) && req.method === 'POST') handleEvents(req, res, url.searchParams, body);
      else if (path === ACK_PATH && req.method === 'POST') handleAck(req, res, url.searchParams, body);
      else answer(res, 404, { text: 'The requested URL was not found on this server.', code: 404 });
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    events,
    requests,
    eventRequests: () => requests.filter((request) => EVENT_PATHS.has(request.path.replace(/\/+$/, ''))),
    script(...steps: HecScriptStep[]): void {
      for (const step of steps) {
        for (let i = 0; i < (step.times ?? 1); i++) queue.push(step);
      }
    },
    waitForRequests(count: number): Promise<void> {
      if (requests.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    async stop(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

/**
 * Checks one envelope as HEC does: an object with known keys only (6), `event` present (12) and not blank
 * (13), `time` a number of seconds (6), flat `fields` of strings or string lists (15), an allowed index (7).
 * Answers 0 when it is fine.
 */
function checkEnvelope(value: unknown, indexes: readonly string[] | undefined): number {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 6;
  const envelope = value as Record<string, unknown>;
  if (Object.keys(envelope).some((key) => !ENVELOPE_KEYS.has(key))) return 6;
  const time = envelope['time'];
  if (time !== undefined && !(typeof time === 'number' && Number.isFinite(time)) && !(typeof time === 'string' && /^\d+(\.\d+)?$/.test(time))) return 6;
  if (!('event' in envelope) || envelope['event'] === null) return 12;
  const event = envelope['event'];
  if (typeof event === 'string' && event.trim() === '') return 13;
  const fields = envelope['fields'];
  if (fields !== undefined) {
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) return 15;
    for (const field of Object.values(fields as Record<string, unknown>)) {
      const ok = typeof field === 'string' || (Array.isArray(field) && field.every((entry) => typeof entry === 'string'));
      if (!ok) return 15;
    }
  }
  const index = envelope['index'];
  if (index !== undefined && (typeof index !== 'string' || (indexes !== undefined && !indexes.includes(index)))) return 7;
  return 0;
}

/**
 * Splits concatenated JSON objects (`{...}{...}` with any whitespace between). Yields each object, or one
 * failure for text that is not a whole JSON object, after which it stops. Strings are skipped with `indexOf`
 * (most of an event is string content), so that the stand-in keeps up with the forwarder in `npm run bench`.
 */
function* scanConcatenated(text: string): Generator<{ ok: true; value: unknown } | { ok: false }> {
  const length = text.length;
  let i = 0;
  while (i < length) {
    while (i < length && isJsonSpace(text.charCodeAt(i))) i++;
    if (i >= length) return;
    if (text.charCodeAt(i) !== 0x7b /* { */) {
      yield { ok: false };
      return;
    }
    const start = i;
    let depth = 0;
    for (; i < length; i++) {
      const char = text.charCodeAt(i);
      if (char === 0x22 /* " */) {
        const end = closingQuote(text, i + 1);
        if (end === -1) {
          i = length;
          break;
        }
        i = end;
      } else if (char === 0x7b || char === 0x5b /* { [ */) depth++;
      else if (char === 0x7d || char === 0x5d /* } ] */) {
        depth--;
        if (depth === 0) {
          i++;
          break;
        }
      }
    }
    if (depth !== 0) {
      yield { ok: false };
      return;
    }
    try {
      yield { ok: true, value: JSON.parse(text.slice(start, i)) };
    } catch {
      yield { ok: false };
      return;
    }
  }
}

function isJsonSpace(char: number): boolean {
  return char === 0x20 || char === 0x0a || char === 0x0d || char === 0x09;
}

/** The index of the quote that closes a string whose content starts at `from`, or -1. */
function closingQuote(text: string, from: number): number {
  for (let at = text.indexOf('"', from); at !== -1; at = text.indexOf('"', at + 1)) {
    let backslashes = 0;
    for (let k = at - 1; k >= from && text.charCodeAt(k) === 0x5c; k--) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
  return -1;
}
