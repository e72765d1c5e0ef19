/**
 * Decode: turns one Event Hub body (as the Functions trigger or a file hands it over) into records, or into
 * quarantine entries with a precise reason. It never throws for bad input and never lets a hostile key reach
 * an object's prototype.
 *
 * A body is one JSON object, an array of objects, or `{"records": [...]}`. The Functions library JSON-parses
 * string bodies it can, so a body may arrive as an object, a number, a string or a Buffer.
 */

/** Where an event came from on the Event Hub (absent for files). */
export interface EventMetadata {
  readonly partitionId?: string;
  readonly sequenceNumber?: number;
  readonly offset?: string;
  readonly enqueuedTimeUtc?: string;
  readonly partitionKey?: string;
}

/** One body with its label (`file.json`, `file.jsonl:12`, `eh:0/1234`) and event metadata. */
export interface Envelope {
  readonly input: string;
  readonly body: unknown;
  readonly metadata?: EventMetadata;
}

export type QuarantineCode =
  | 'empty-body'
  | 'not-json'
  | 'not-an-object'
  | 'bad-records-wrapper'
  | 'too-large'
  | 'hostile-key'
  | 'too-deep'
  | 'unknown-kind'
  | 'schema'
  /** A defect of the forwarder itself met this record: it is kept, and the batch goes on. */
  | 'internal-error';

/** A record that will not go through the pipeline, with everything needed to look at it again. */
export interface Rejection {
  readonly ok: false;
  readonly input: string;
  readonly code: QuarantineCode;
  /** Human-readable and precise: what is wrong and where. */
  readonly reason: string;
  /** The original text (string bodies) or value (parsed bodies) of what was rejected. */
  readonly raw: unknown;
  readonly metadata?: EventMetadata;
  /** Index of the record inside a multi-record body. */
  readonly index?: number;
}

/** A record that decoded safely. */
export interface DecodedRecord {
  readonly ok: true;
  readonly input: string;
  /** The record exactly as received (parsed JSON). */
  readonly record: Record<string, unknown>;
  /** Its JSON text, when the body was this one record as text on one line (not an array, not a wrapper). */
  readonly text?: string;
  /**
   * The same record with key casing folded for validation and normalisation: first letter lower-cased
   * (`SystemAlertId` -> `systemAlertId`), Newtonsoft `$type` annotations dropped, `{"$values": [...]}`
   * wrappers unwrapped. Parts the fold leaves unchanged are shared with `record` (copy on write): neither
   * may be modified.
   */
  readonly view: Record<string, unknown>;
  readonly metadata?: EventMetadata;
  readonly index?: number;
}

export type Decoded = DecodedRecord | Rejection;

export interface DecodeLimits {
  /** Largest record accepted, in bytes of JSON (Event Hubs caps an event at 1 MB). */
  readonly maxRecordBytes: number;
  /**
   * Largest body parsed at all, in bytes. A body may hold many records (a file with an array), so it may be
   * larger than one record; beyond this it is refused before parsing, which would cost memory in proportion.
   */
  readonly maxBodyBytes: number;
  /** Deepest nesting of objects and arrays accepted. Real Defender records stay under 20. */
  readonly maxDepth: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = Object.freeze({
  maxRecordBytes: 1024 * 1024,
  maxBodyBytes: 64 * 1024 * 1024,
  maxDepth: 64,
});

/** Keys that could reach a prototype if a consumer ever copied the record with plain assignment. */
const HOSTILE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

class RecordProblem extends Error {
  constructor(
    readonly code: QuarantineCode,
    message: string,
  ) {
    super(message);
  }
}

/** Decodes one body into records and rejections, in body order. */
export function decodeBody(envelope: Envelope, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): Decoded[] {
  const { input, metadata } = envelope;
  const reject = (code: QuarantineCode, reason: string, raw: unknown, index?: number): Rejection =>
    withOptional({ ok: false as const, input, code, reason, raw }, metadata, index);

  let body = bodyText(envelope.body);
  let text: string | undefined;
  if (typeof body === 'string') {
    text = body.charCodeAt(0) === 0xfeff ? body.slice(1) : body;
    if (text.trim() === '') return [reject('empty-body', 'body is empty', text)];
    if (text.length > limits.maxRecordBytes) {
      // Larger than one event can be: only a file holding many records gets here. Refuse what is too large
      // to parse, and nesting too deep to walk, before JSON.parse spends memory on it.
      const bytes = Buffer.byteLength(text, 'utf8');
      if (bytes > limits.maxBodyBytes) {
        return [reject('too-large', `body is ${bytes} bytes, over the ${limits.maxBodyBytes}-byte limit for one body`, text.slice(0, 4096))];
      }
      const deepAt = nestingBeyond(text, limits.maxDepth);
      if (deepAt !== undefined) {
        return [reject('too-deep', `nesting deeper than ${limits.maxDepth} levels at character ${deepAt}`, text.slice(0, 4096))];
      }
    }
    try {
      body = JSON.parse(text) as unknown;
    } catch (error) {
      return [reject('not-json', `body is not JSON: ${describeParseError(error, text)}`, text)];
    }
  }

  if (body === null || typeof body !== 'object') {
    const what = body === null ? 'null' : `a JSON ${typeof body}`;
    return [reject('not-an-object', `body is ${what}, not an object`, text ?? body)];
  }

  let records: unknown[];
  let many = false;
  if (Array.isArray(body)) {
    records = body;
    many = true;
  } else if (Object.prototype.hasOwnProperty.call(body, 'records') && Object.keys(body).length === 1) {
    const inner = (body as { records: unknown }).records;
    if (!Array.isArray(inner)) {
      return [reject('bad-records-wrapper', `"records" is ${typeName(inner)}, expected an array`, text ?? body)];
    }
    records = inner;
    many = true;
  } else {
    records = [body];
  }
  if (records.length === 0) return [reject('empty-body', 'body holds no records (empty array)', text ?? body)];

  // A single-record string body's size is its text length; otherwise the walk estimates it.
  const knownBytes = !many && text !== undefined ? Buffer.byteLength(text, 'utf8') : undefined;
  const out: Decoded[] = [];
  records.forEach((record, i) => {
    const index = many ? i : undefined;
    const label = many ? `${input}#${i}` : input;
    const rawForQuarantine = many ? record : (text ?? record);
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      const where = many ? `record ${i}` : 'body';
      out.push(
        withOptional(
          { ok: false as const, input: label, code: 'not-an-object' as const, reason: `${where} is ${typeName(record)}, not an object`, raw: rawForQuarantine },
          metadata,
          index,
        ),
      );
      return;
    }
    if (knownBytes !== undefined && knownBytes > limits.maxRecordBytes) {
      out.push(
        withOptional(
          { ok: false as const, input: label, code: 'too-large' as const, reason: `record is ${knownBytes} bytes, over the ${limits.maxRecordBytes}-byte limit`, raw: rawForQuarantine },
          metadata,
          index,
        ),
      );
      return;
    }
    try {
      const walk: WalkState = { bytes: 0, limits };
      const view = foldRecord(record as Record<string, unknown>, walk);
      // The walk counts UTF-16 units; UTF-8 takes at most 3 bytes for each, so only a record that could be
      // over the limit is measured exactly.
      if (knownBytes === undefined && walk.bytes * 3 > limits.maxRecordBytes) {
        const bytes = Buffer.byteLength(JSON.stringify(record), 'utf8');
        if (bytes > limits.maxRecordBytes) {
          throw new RecordProblem('too-large', `record is ${bytes} bytes, over the ${limits.maxRecordBytes}-byte limit`);
        }
      }
      // The text is kept only when it is one line (as Event Hubs bodies are): a HEC batch is a line per event.
      const lineText = knownBytes !== undefined && text !== undefined && !text.includes('\n') && !text.includes('\r') ? text.trim() : undefined;
      const accepted = { ok: true as const, input: label, record: record as Record<string, unknown>, view, ...(lineText !== undefined ? { text: lineText } : {}) };
      out.push(withOptional(accepted, metadata, index));
    } catch (error) {
      if (!(error instanceof RecordProblem)) throw error;
      out.push(withOptional({ ok: false as const, input: label, code: error.code, reason: error.message, raw: rawForQuarantine }, metadata, index));
    }
  });
  return out;
}

/**
 * A body handed over as bytes (a Buffer, any Uint8Array) as its UTF-8 text; any other body as it is. Hosts
 * turn event bodies into text with it, so that a record's text, not its bytes, reaches the pipeline.
 */
export function bodyText(body: unknown): unknown {
  return body instanceof Uint8Array ? Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8') : body;
}

function withOptional<T extends object>(value: T, metadata: EventMetadata | undefined, index: number | undefined): T {
  const result: T & { metadata?: EventMetadata; index?: number } = value;
  if (metadata !== undefined) result.metadata = metadata;
  if (index !== undefined) result.index = index;
  return result;
}

/** Folds a key the way Newtonsoft's PascalCase and camelCase outputs meet: first letter lower-case. */
export function foldKey(key: string): string {
  const first = key.charCodeAt(0);
  if (!(first >= 65 && first <= 90)) return key;
  // Defender's keys repeat from record to record: each is folded once (the cache stops growing at a bound,
  // so hostile records with endless distinct keys cannot grow it).
  let folded = FOLDED_KEYS.get(key);
  if (folded === undefined) {
    folded = String.fromCharCode(first + 32) + key.slice(1);
    if (FOLDED_KEYS.size < FOLDED_KEYS_MAX) FOLDED_KEYS.set(key, folded);
  }
  return folded;
}

const FOLDED_KEYS = new Map<string, string>();
const FOLDED_KEYS_MAX = 20_000;

interface WalkState {
  bytes: number;
  readonly limits: DecodeLimits;
}

/**
 * A problem found by the walk, deep in the record. Its path is built only when it is thrown: each level it
 * passes on the way up adds its key or index (`steps` holds them innermost first).
 */
class WalkProblem {
  readonly steps: (string | number)[] = [];
  constructor(
    readonly code: QuarantineCode,
    /** The reason, given the path of the value concerned (`a.b[0].c`, or '' for the record itself). */
    readonly reason: (path: string) => string,
  ) {}

  /** The problem as a RecordProblem, its path written out. */
  resolve(): RecordProblem {
    let path = '';
    for (let i = this.steps.length - 1; i >= 0; i--) {
      const step = this.steps[i] as string | number;
      path += typeof step === 'number' ? `[${step}]` : path === '' ? step : `.${step}`;
    }
    return new RecordProblem(this.code, this.reason(path));
  }
}

/** Adds the key or index of the level a WalkProblem passes through; anything else goes on as it is. */
function through(error: unknown, step: string | number): unknown {
  if (error instanceof WalkProblem) error.steps.push(step);
  return error;
}

function foldRecord(record: Record<string, unknown>, walk: WalkState): Record<string, unknown> {
  try {
    return foldObject(record, walk, 1);
  } catch (error) {
    throw error instanceof WalkProblem ? error.resolve() : error;
  }
}

const tooDeep = (walk: WalkState): WalkProblem => new WalkProblem('too-deep', (path) => `nesting deeper than ${walk.limits.maxDepth} levels at ${path}`);

/**
 * The folded value. Copy on write: an object or array none of whose keys and values the fold changes is
 * returned as it is (camelCase records are mostly shared with the parsed record, which nothing modifies).
 */
function foldValue(value: unknown, walk: WalkState, depth: number): unknown {
  if (value === null) {
    walk.bytes += 4;
    return null;
  }
  switch (typeof value) {
    case 'string':
      walk.bytes += value.length + 2;
      return value;
    case 'number':
    case 'boolean':
      walk.bytes += 6;
      return value;
    case 'object':
      break;
    default: {
      // JSON never yields anything else; a host handing us functions or symbols is not a Defender record.
      const type = typeof value;
      throw new WalkProblem('not-an-object', (path) => `${path || 'record'} holds a ${type}, which JSON cannot carry`);
    }
  }
  if (depth > walk.limits.maxDepth) throw tooDeep(walk);
  if (Array.isArray(value)) {
    walk.bytes += 2;
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      let folded: unknown;
      try {
        folded = foldValue(item, walk, depth + 1);
      } catch (error) {
        throw through(error, i);
      }
      if (out === undefined) {
        if (folded === item) continue;
        out = value.slice(0, i);
      }
      out[i] = folded;
    }
    return out ?? value;
  }
  const object = value as Record<string, unknown>;
  // Newtonsoft's typed collections: {"$type": "...", "$values": [...]} stand for the array itself. Only that
  // exact shape is unwrapped: an object with other keys beside $values is walked (and checked) whole.
  if (Array.isArray(object['$values']) && isTypedCollection(object)) {
    return foldValue(object['$values'], walk, depth);
  }
  return foldObject(object, walk, depth + 1);
}

function foldObject(object: Record<string, unknown>, walk: WalkState, depth: number): Record<string, unknown> {
  if (depth > walk.limits.maxDepth) throw tooDeep(walk);
  walk.bytes += 2;
  const keys = Object.keys(object);
  // Allocated at the first key or value the fold changes, with the unchanged keys before it.
  let out: Record<string, unknown> | undefined;
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k] as string;
    // The hostile keys are 9 and 11 characters long: the set is consulted only for those.
    if ((key.length === 9 || key.length === 11) && HOSTILE_KEYS.has(key)) {
      throw through(new WalkProblem('hostile-key', (path) => `forbidden key "${key}" at ${path}`), key);
    }
    walk.bytes += key.length + 4;
    const first = key.charCodeAt(0);
    if (first === 0x24 /* $ */ && key === '$type') {
      out ??= copyKeys(object, keys, k);
      continue;
    }
    const folded = first >= 65 && first <= 90 ? foldKey(key) : key;
    const original = object[key];
    let value: unknown;
    try {
      value = foldValue(original, walk, depth);
    } catch (error) {
      throw through(error, key);
    }
    if (out === undefined) {
      if (folded === key && value === original) continue;
      out = copyKeys(object, keys, k);
    }
    // When both spellings occur, keep the first one that carries a value.
    if (!Object.prototype.hasOwnProperty.call(out, folded) || out[folded] === null || out[folded] === undefined) {
      out[folded] = value;
    }
  }
  return out ?? object;
}

/** A new object with the first `count` keys of `object` (which the fold left as they were). */
function copyKeys(object: Record<string, unknown>, keys: readonly string[], count: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let k = 0; k < count; k++) {
    const key = keys[k] as string;
    out[key] = object[key];
  }
  return out;
}

/**
 * Scans JSON text for nesting deeper than `maxDepth` (outside strings) without parsing it; answers the
 * character position where it first happens.
 */
function nestingBeyond(text: string, maxDepth: number): number | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > maxDepth) return i;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return undefined;
}

function isTypedCollection(object: Record<string, unknown>): boolean {
  for (const key of Object.keys(object)) {
    if (key !== '$values' && key !== '$type') return false;
  }
  return true;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * Turns V8's parse error into "Unexpected ... at line L column C". V8 quotes the start of the body in some
 * messages (`Unexpected token 'x', "xSECRET..."... is not valid JSON`): that excerpt is dropped, so a
 * reason never repeats the record's content.
 */
function describeParseError(error: unknown, text: string): string {
  const message = (error instanceof Error ? error.message : String(error)).replace(/, ".*is not valid JSON$/s, '');
  const match = /position (\d+)/.exec(message);
  if (!match?.[1]) return message;
  const position = Number(match[1]);
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  const base = message.replace(/\s*\(line \d+ column \d+\)/, '').replace(/ (?:in|after) JSON at position \d+.*$/, '');
  return `${base} at line ${line} column ${column}`;
}
