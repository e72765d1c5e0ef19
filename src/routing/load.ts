/**
 * Loads the routing rules file: YAML (keeping node positions) -> JSON Schema (ajv, compiled once) ->
 * cross-reference checks -> the typed objects of `types.ts` -> deep freeze. Every problem found is collected
 * and thrown at once as a `RulesError`, each issue naming the key and the line (`routes.yaml:14:
 * routes[2].to: unknown destination "teams-soc"`). Secrets are never echoed: the schema accepts them only as
 * `${ENV_VAR}` references and messages about them do not repeat the value.
 *
 * Expired mutes load fine (`routes lint` reports them): an old mute must not stop the forwarder.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { isSeverityName, KINDS, parseSeverity, SEVERITIES, type Kind } from '../model/finding.js';
import { packageRoot } from '../config/packageRoot.js';
import { compileMatch } from './match.js';
import {
  MATCH_KEYS,
  type Destination,
  type DestinationType,
  type Match,
  type Mute,
  type Route,
  type RoutingRules,
  type RulesIssue,
} from './types.js';

export type { RulesIssue } from './types.js';

/** Thrown for every rules file that cannot be used; `message` lists every issue, one a line. */
export class RulesError extends Error {
  override readonly name = 'RulesError';
  /** The file (or `<inline>`) the issues are about. */
  readonly source: string;
  /** Every issue found, in file order. */
  readonly issues: readonly RulesIssue[];

  constructor(source: string, issues: readonly RulesIssue[], options?: ErrorOptions) {
    super(issues.map((issue) => formatRulesIssue(source, issue)).join('\n'), options);
    this.source = source;
    this.issues = Object.freeze(issues.map((issue) => Object.freeze({ ...issue })));
  }
}

/** `<source>:<line>: <path>: <message>` (the line and path are left out when there is none). */
export function formatRulesIssue(source: string, issue: RulesIssue): string {
  const line = issue.line !== undefined ? `:${issue.line}` : '';
  const path = issue.path !== '' ? `${issue.path}: ` : '';
  return `${source}${line}: ${path}${issue.message}`;
}

/**
 * Reads and parses a rules file. File-system errors (ENOENT, EACCES, EISDIR) are thrown as they are, with
 * their `code`; everything wrong with the content is a `RulesError`.
 */
export async function loadRulesFile(path: string): Promise<RoutingRules> {
  const text = await readFile(path, 'utf8');
  return parseRules(text, path);
}

/**
 * Parses rules file text. `source` names it in messages (a path, or `<inline>`).
 *
 * @throws RulesError listing every problem: YAML syntax, schema, cross references (unknown or duplicate names,
 *   muted Splunk destinations, bad dates, unknown severities).
 */
export function parseRules(text: string, source: string): RoutingRules {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    version: '1.2',
    merge: false,
  });
  if (doc.errors.length > 0) {
    throw new RulesError(
      source,
      doc.errors.map((error) => ({
        path: '',
        line: lineCounter.linePos(error.pos[0]).line,
        message: `invalid YAML: ${error.message.split('\n')[0] ?? error.message}`,
      })),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (error: unknown) {
    // Only alias bombs get here ("Excessive alias count").
    throw new RulesError(source, [{ path: '', message: `invalid YAML: ${messageOf(error)}` }], { cause: error });
  }

  const issues = new IssueList(doc, lineCounter);
  if (data === null || data === undefined) {
    issues.add([], 'the rules file is empty: it needs destinations and routes', 1);
  } else {
    canonicaliseKinds(data);
    const validate = rulesValidator();
    if (!validate(data)) addSchemaIssues(validate.errors ?? [], data, issues);
    checkReferences(data, issues);
  }
  if (issues.length > 0) throw new RulesError(source, issues.sorted());

  return buildRules(data as RawRules, source, issues);
}

/**
 * Match values are case-insensitive, `kind` included (`kind: Alert`): kind names are put in their canonical
 * spelling before the schema, whose enum then checks them. Unknown names are left for the schema to report.
 */
function canonicaliseKinds(data: unknown): void {
  if (!isRecord(data)) return;
  for (const list of [data['routes'], data['mutes']]) {
    if (!Array.isArray(list)) continue;
    for (const item of list as unknown[]) {
      if (!isRecord(item) || !isRecord(item['match'])) continue;
      const match = item['match'];
      const kind = match['kind'];
      if (typeof kind === 'string') match['kind'] = canonicalKind(kind);
      else if (Array.isArray(kind)) match['kind'] = kind.map((value: unknown) => (typeof value === 'string' ? canonicalKind(value) : value));
    }
  }
}

function canonicalKind(value: string): string {
  const wanted = value.trim().toLowerCase();
  return KINDS.find((kind) => kind.toLowerCase() === wanted) ?? value;
}

// ---------------------------------------------------------------------------------------------------------
// Schema

let compiledValidator: ValidateFunction | undefined;

/** The schema validator, compiled on first use and kept. */
function rulesValidator(): ValidateFunction {
  if (compiledValidator === undefined) {
    const schemaFile = join(packageRoot(), 'schemas', 'routing-rules.schema.json');
    const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<string, unknown>;
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
    // Annotations of our own: the message to give instead of ajv's, and "never echo this value".
    ajv.addKeyword({ keyword: 'x-error', schemaType: 'string' });
    ajv.addKeyword({ keyword: 'x-secret', schemaType: 'boolean' });
    compiledValidator = ajv.compile(schema);
  }
  return compiledValidator;
}

function addSchemaIssues(errors: readonly ErrorObject[], data: unknown, issues: IssueList): void {
  for (const error of errors) {
    // `if` only says "the then-branch failed" (its errors are reported themselves); errors inside
    // propertyNames are reported once by the propertyNames error.
    if (error.keyword === 'if' || error.propertyName !== undefined) continue;
    const path = pointerToSegments(error.instancePath, data);
    const params: Readonly<Record<string, unknown>> = error.params;
    const parent: unknown = error.parentSchema;
    const custom = schemaString(parent, 'x-error');
    const secret = schemaFlag(parent, 'x-secret');
    switch (error.keyword) {
      case 'additionalProperties': {
        const key = String(params['additionalProperty']);
        issues.add([...path, key], unknownKeyMessage(key, allowedKeys(parent)));
        break;
      }
      case 'required':
        issues.add(path, `missing required key "${String(params['missingProperty'])}"`);
        break;
      case 'propertyNames':
        issues.add([...path, String(params['propertyName'])], `"${String(params['propertyName'])}" is not a valid name here`);
        break;
      case 'type': {
        if (secret && custom !== undefined) {
          issues.add(path, custom);
          break;
        }
        const hint = path[path.length - 1] === 'match' && error.data === null ? ' (write {} to match everything)' : '';
        issues.add(path, `must be ${describeTypes(params['type'])}, not ${describeValue(error.data)}${hint}`);
        break;
      }
      case 'enum': {
        const allowed = Array.isArray(params['allowedValues']) ? params['allowedValues'].map(String) : [];
        issues.add(path, `must be one of ${allowed.join(', ')}, not ${describeValue(error.data)}`);
        break;
      }
      case 'minItems':
        issues.add(path, 'must not be an empty list');
        break;
      case 'minimum':
      case 'maximum':
        issues.add(path, `${error.message ?? 'is out of range'}, not ${describeValue(error.data)}`);
        break;
      default:
        issues.add(path, custom ?? error.message ?? `fails ${error.keyword}`);
    }
  }
}

function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const near = allowed.find((candidate) => isNear(key, candidate));
  if (near !== undefined) return `unknown key "${key}" (did you mean "${near}"?)`;
  return allowed.length > 0 ? `unknown key "${key}"; allowed keys: ${allowed.join(', ')}` : `unknown key "${key}"`;
}

/** Same word but for case, or at most two edits apart (for "did you mean"). */
function isNear(typed: string, candidate: string): boolean {
  const a = typed.toLowerCase();
  const b = candidate.toLowerCase();
  if (a === b) return true;
  if (Math.abs(a.length - b.length) > 2 || Math.min(a.length, b.length) < 4) return false;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return (previous[b.length] ?? 99) <= 2;
}

function allowedKeys(schema: unknown): string[] {
  if (!isRecord(schema) || !isRecord(schema['properties'])) return [];
  return Object.keys(schema['properties']);
}

function schemaString(schema: unknown, key: string): string | undefined {
  if (!isRecord(schema)) return undefined;
  const value = schema[key];
  return typeof value === 'string' ? value : undefined;
}

function schemaFlag(schema: unknown, key: string): boolean {
  return isRecord(schema) && schema[key] === true;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'a string',
  array: 'a list',
  object: 'a mapping',
  boolean: 'true or false',
  number: 'a number',
  integer: 'a whole number',
  null: 'empty',
};

function describeTypes(types: unknown): string {
  const list = (Array.isArray(types) ? types.map(String) : String(types).split(',')).map((type) => type.trim());
  if (list.length === 2 && list.includes('string') && list.includes('array')) return 'a string or a list of strings';
  return list.map((type) => TYPE_WORDS[type] ?? type).join(' or ');
}

/** A short description of a (non-secret) value for messages. */
function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'empty';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 59)}…` : value);
  return String(value);
}

/** `/routes/2/to` -> `['routes', 2, 'to']`, indexes as numbers where the data holds a list. */
function pointerToSegments(pointer: string, data: unknown): PathSegment[] {
  if (pointer === '') return [];
  const segments: PathSegment[] = [];
  let value: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(value) && /^\d+$/.test(key)) {
      segments.push(Number(key));
      value = value[Number(key)];
    } else {
      segments.push(key);
      value = isRecord(value) ? value[key] : undefined;
    }
  }
  return segments;
}

// ---------------------------------------------------------------------------------------------------------
// Cross-reference checks (run on whatever the schema let through, so every problem is reported at once)

const ENV_REFERENCE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
/** ISO 8601 date-time with a zone; the schema has the same pattern. */
const ISO_INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))$/;

function checkReferences(data: unknown, issues: IssueList): void {
  if (!isRecord(data)) return;
  const destinations = isRecord(data['destinations']) ? data['destinations'] : undefined;
  if (destinations !== undefined) {
    for (const [name, destination] of Object.entries(destinations)) {
      if (!isRecord(destination)) continue;
      forEachString(destination, ['destinations', name], (value, path) => {
        if (value.includes('${') && !ENV_REFERENCE.test(value)) {
          issues.add(path, 'an ${ENV_VAR} reference must be the whole value ("${NAME}"); partial interpolation is not supported');
        }
      });
    }
  }
  const typeOf = (name: string): unknown => (destinations !== undefined && isRecord(destinations[name]) ? destinations[name]['type'] : undefined);

  const checkList = (kind: 'routes' | 'mutes', onItem: (item: Record<string, unknown>, index: number) => void): void => {
    const list = data[kind];
    if (!Array.isArray(list)) return;
    const firstIndexByName = new Map<string, number>();
    list.forEach((item: unknown, index) => {
      if (!isRecord(item)) return;
      const name = item['name'];
      if (typeof name === 'string') {
        const first = firstIndexByName.get(name);
        if (first === undefined) {
          firstIndexByName.set(name, index);
        } else {
          const firstLine = issues.lineOf([kind, first]);
          issues.add(
            [kind, index, 'name'],
            `duplicate ${kind === 'routes' ? 'route' : 'mute'} name "${name}" (first used by ${kind}[${first}]${firstLine !== undefined ? ` on line ${firstLine}` : ''})`,
          );
        }
      }
      if (isRecord(item['match'])) checkMatchValues(item['match'], [kind, index, 'match'], issues);
      onItem(item, index);
    });
  };

  const checkTargets = (item: Record<string, unknown>, path: PathSegment[], isMute: boolean): void => {
    forEachName(item['to'], (name, itemPath) => {
      if (destinations === undefined) return; // the schema already complained
      const at = [...path, 'to'];
      const line = issues.lineOf([...at, ...itemPath]);
      if (!Object.hasOwn(destinations, name)) {
        const known = Object.keys(destinations);
        issues.add(at, `unknown destination "${name}"${known.length > 0 ? `; destinations are ${known.join(', ')}` : ''}`, line);
      } else if (isMute && typeOf(name) === 'splunk-hec') {
        issues.add(at, `"${name}" is a splunk-hec destination: Splunk is the system of record and is never muted`, line);
      }
    });
  };

  checkList('routes', (route, index) => checkTargets(route, ['routes', index], false));
  checkList('mutes', (mute, index) => {
    checkTargets(mute, ['mutes', index], true);
    const until = mute['until'];
    if (typeof until === 'string' && ISO_INSTANT.test(until.trim()) && parseInstant(until) === undefined) {
      issues.add(['mutes', index, 'until'], `${JSON.stringify(until)} is not a real date-time`);
    }
  });
}

function checkMatchValues(match: Record<string, unknown>, path: PathSegment[], issues: IssueList): void {
  const minimum = match['minSeverity'];
  if (typeof minimum === 'string') {
    if (!isSeverityName(minimum)) {
      issues.add([...path, 'minSeverity'], unknownSeverityMessage(minimum, false));
    } else if (parseSeverity(minimum) === 'Unknown') {
      issues.add(
        [...path, 'minSeverity'],
        'minSeverity cannot be Unknown (Unknown never meets a minimum): use Informational for any known severity, or severity: [Unknown]',
      );
    }
  }
  forEachName(match['severity'], (value, itemPath) => {
    if (!isSeverityName(value)) issues.add([...path, 'severity'], unknownSeverityMessage(value, true), issues.lineOf([...path, 'severity', ...itemPath]));
  });
}

function unknownSeverityMessage(value: string, unknownAllowed: boolean): string {
  const names = SEVERITIES.filter((severity) => unknownAllowed || severity !== 'Unknown');
  return `unknown severity ${JSON.stringify(value)}; use one of ${names.join(', ')} (any case)`;
}

/** Calls `visit` for a name given as a string or for each string of a list (with its index path). */
function forEachName(value: unknown, visit: (name: string, itemPath: PathSegment[]) => void): void {
  if (typeof value === 'string') visit(value, []);
  else if (Array.isArray(value)) {
    value.forEach((item: unknown, index) => {
      if (typeof item === 'string') visit(item, [index]);
    });
  }
}

function forEachString(value: unknown, path: PathSegment[], visit: (value: string, path: PathSegment[]) => void): void {
  if (typeof value === 'string') visit(value, path);
  else if (Array.isArray(value)) value.forEach((item: unknown, index) => forEachString(item, [...path, index], visit));
  else if (isRecord(value)) {
    for (const [key, item] of Object.entries(value)) forEachString(item, [...path, key], visit);
  }
}

/** Milliseconds since the epoch for a valid ISO 8601 date-time with a zone; undefined otherwise. */
export function parseInstant(text: string): number | undefined {
  const parts = ISO_INSTANT.exec(text.trim());
  if (parts === null) return undefined;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((group) => Number(parts[group] ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const fraction = parts[7] !== undefined ? Number(`0${parts[7]}`) : 0;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (parts[8] === undefined) {
    const offsetHours = Number(parts[10]);
    const offsetMins = Number(parts[11]);
    if (offsetHours > 23 || offsetMins > 59) return undefined;
    offsetMinutes = (parts[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day); // setUTCFullYear keeps years below 100 as written
  utc.setUTCHours(hour, minute, second, Math.round(fraction * 1000));
  return utc.getTime() - offsetMinutes * 60_000;
}

// ---------------------------------------------------------------------------------------------------------
// Building the typed, frozen rules (the data passed the schema and the checks)

type TextList = string | readonly string[];

interface RawMatch {
  readonly kind?: TextList;
  readonly minSeverity?: string;
  readonly severity?: TextList;
  readonly status?: TextList;
  readonly alertType?: TextList;
  readonly tactic?: TextList;
  readonly subscription?: TextList;
  readonly resourceGroup?: TextList;
  readonly resource?: TextList;
  readonly cluster?: TextList;
  readonly title?: TextList;
  readonly cve?: TextList;
  readonly minCvss?: number;
  readonly snapshot?: boolean;
}

interface RawDestination {
  readonly type: DestinationType;
  readonly dedupe?: boolean;
  readonly [setting: string]: unknown;
}

interface RawRoute {
  readonly name: string;
  readonly match: RawMatch;
  readonly to: TextList;
  readonly continue?: boolean;
}

interface RawMute {
  readonly name: string;
  readonly match: RawMatch;
  readonly until: string;
  readonly reason: string;
  readonly to?: TextList;
}

interface RawRules {
  readonly version?: number;
  readonly destinations: Readonly<Record<string, RawDestination>>;
  readonly routes: readonly RawRoute[];
  readonly mutes?: readonly RawMute[];
}

function buildRules(raw: RawRules, source: string, issues: IssueList): RoutingRules {
  const destinations = new Map<string, Destination>();
  for (const [name, rawDestination] of Object.entries(raw.destinations)) {
    const { type, dedupe, ...settings } = rawDestination;
    const notify = type !== 'splunk-hec';
    const envRefs: string[] = [];
    forEachString(settings, [], (value) => {
      const name = ENV_REFERENCE.exec(value)?.[1];
      if (name !== undefined && !envRefs.includes(name)) envRefs.push(name);
    });
    destinations.set(name, {
      name,
      type,
      notify,
      dedupe: dedupe ?? notify,
      settings,
      envRefs,
      line: issues.lineOf(['destinations', name]) ?? 1,
    });
  }
  const notificationDestinations = [...destinations.values()].filter((d) => d.notify).map((d) => d.name);

  const routes: Route[] = raw.routes.map((route, index) => ({
    name: route.name,
    index,
    match: buildMatch(route.match),
    to: unique(toList(route.to)),
    continue: route.continue ?? false,
    line: issues.lineOf(['routes', index]) ?? 1,
  }));

  const mutes: Mute[] = (raw.mutes ?? []).map((mute, index) => {
    const untilMs = parseInstant(mute.until) ?? Number.NaN; // checked above
    return {
      name: mute.name,
      index,
      match: buildMatch(mute.match),
      until: new Date(untilMs).toISOString(),
      untilMs,
      reason: mute.reason.trim(),
      to: mute.to !== undefined ? unique(toList(mute.to)) : notificationDestinations,
      line: issues.lineOf(['mutes', index]) ?? 1,
    };
  });

  const rules: RoutingRules = {
    source,
    destinations: freezeMap(destinations),
    routes,
    mutes,
  };
  deepFreeze(rules);
  // Compile every glob now, once, so that no record pays for it (and the compiled form is cached).
  for (const { match } of [...rules.routes, ...rules.mutes]) compileMatch(match);
  return rules;
}

type MutableMatch = { -readonly [K in keyof Match]: Match[K] };

function buildMatch(raw: RawMatch): Match {
  const match: MutableMatch = {};
  for (const key of MATCH_KEYS) {
    switch (key) {
      case 'kind':
        if (raw.kind !== undefined) match.kind = unique(toList(raw.kind)) as Kind[];
        break;
      case 'minSeverity':
        if (raw.minSeverity !== undefined) match.minSeverity = parseSeverity(raw.minSeverity);
        break;
      case 'severity':
        if (raw.severity !== undefined) match.severity = unique(toList(raw.severity).map(parseSeverity));
        break;
      case 'minCvss':
        if (raw.minCvss !== undefined) match.minCvss = raw.minCvss;
        break;
      case 'snapshot':
        if (raw.snapshot !== undefined) match.snapshot = raw.snapshot;
        break;
      default: {
        const value = raw[key];
        if (value !== undefined) match[key] = unique(toList(value));
      }
    }
  }
  return match;
}

function toList(value: TextList): string[] {
  return typeof value === 'string' ? [value] : [...value];
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

/** A Map whose mutators throw (Object.freeze alone does not stop `set`). */
function freezeMap<K, V>(map: Map<K, V>): ReadonlyMap<K, V> {
  const refuse = (): never => {
    throw new TypeError('routing rules are read-only');
  };
  for (const value of map.values()) deepFreeze(value);
  Object.defineProperties(map, { set: { value: refuse }, delete: { value: refuse }, clear: { value: refuse } });
  return Object.freeze(map);
}

function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const item of Object.values(value)) deepFreeze(item);
}

// ---------------------------------------------------------------------------------------------------------
// Issues and their lines

type PathSegment = string | number;

/** Collects issues, locating each key path in the YAML document. */
class IssueList {
  private readonly issues: RulesIssue[] = [];
  private readonly seen = new Set<string>();

  constructor(
    private readonly doc: Document.Parsed,
    private readonly lineCounter: LineCounter,
  ) {}

  get length(): number {
    return this.issues.length;
  }

  /** Adds an issue at `path`; its line is that of `path` unless given. Exact repeats are dropped. */
  add(path: readonly PathSegment[], message: string, line: number | undefined = this.lineOf(path)): void {
    const text = formatRulesPath(path);
    const identity = `${String(line)}\u0000${text}\u0000${message}`;
    if (this.seen.has(identity)) return;
    this.seen.add(identity);
    this.issues.push(line !== undefined ? { path: text, line, message } : { path: text, message });
  }

  /** In file order (stable for issues on the same line). */
  sorted(): RulesIssue[] {
    return this.issues
      .map((issue, order) => ({ issue, order }))
      .sort((a, b) => (a.issue.line ?? 0) - (b.issue.line ?? 0) || a.order - b.order)
      .map(({ issue }) => issue);
  }

  /**
   * The line of the node at `path`: for a mapping entry, the line of its key; for a list item, the line where
   * the item starts. Where the path leaves the document (a missing key), the deepest node found.
   */
  lineOf(path: readonly PathSegment[]): number | undefined {
    let node: unknown = this.doc.contents;
    let line = this.lineOfNode(node);
    for (const segment of path) {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
        if (pair === undefined) return line;
        line = this.lineOfNode(pair.key) ?? line;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === 'number') {
        const item: unknown = node.items[segment];
        if (item === undefined) return line;
        line = this.lineOfNode(item) ?? line;
        node = item;
      } else {
        return line;
      }
    }
    return line;
  }

  private lineOfNode(node: unknown): number | undefined {
    if (node === null || typeof node !== 'object' || !('range' in node)) return undefined;
    const range: unknown = node.range;
    if (!Array.isArray(range) || typeof range[0] !== 'number') return undefined;
    return this.lineCounter.linePos(range[0]).line;
  }
}

/** `['routes', 2, 'to']` -> `routes[2].to`; odd keys are quoted: `headers["X Key"]`. */
export function formatRulesPath(path: readonly (string | number)[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) text += text === '' ? segment : `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
