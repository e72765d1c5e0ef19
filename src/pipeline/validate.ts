/**
 * Validate: checks a classified record's case-folded view against the JSON Schema of its kind (and, for
 * alerts, of its shape) in `schemas/defender/`, and turns ajv's errors into precise {@link SchemaError}s.
 *
 * The schemas require only what routing needs and type the fields routing reads; see their descriptions and
 * docs/defender-export.md for why. They are compiled once, on the first call, by one ajv instance.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type AnySchemaObject, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { packageRoot } from '../config/packageRoot.js';
import type { Kind } from '../model/finding.js';
import type { AlertShape } from './classify.js';
import { foldKey } from './decode.js';
import type { SchemaError } from './quarantine.js';

/** Files of `schemas/defender/`: the shared definitions first, then one schema per kind. */
const SCHEMA_FILES = [
  'common',
  'alert',
  'recommendation',
  'finding',
  'secureScore',
  'secureScoreControl',
  'regulatoryCompliance',
] as const satisfies readonly ('common' | Kind)[];

/** The definition in alert.schema.json for each alert shape. `arm` is the REST shape: both are ARM resources. */
const ALERT_DEFINITION: Readonly<Record<AlertShape | 'arm', string>> = {
  eventHub: 'eventHubAlert',
  rest: 'restAlert',
  arm: 'restAlert',
  activityLog: 'activityLogAlert',
};

/**
 * Most errors reported for one record. A record with thousands of bad array items would otherwise fill the
 * quarantine entry with the same complaint; the rest are counted in one closing entry.
 */
const MAX_REPORTED_ERRORS = 50;

/** Longest string value quoted in `got`, in characters. */
const MAX_QUOTED_CHARS = 40;

interface Validators {
  readonly byKind: ReadonlyMap<Exclude<Kind, 'alert'>, ValidateFunction>;
  readonly alertByShape: ReadonlyMap<AlertShape | 'arm', ValidateFunction>;
}

let validators: Validators | undefined;

/**
 * Validates the case-folded `view` of a record (see `decodeBody`) that `classifyRecord` found to be `kind` in
 * `shape`. Returns the violations, at most {@link MAX_REPORTED_ERRORS} plus one entry counting the rest;
 * an empty array means the record is valid. Kinds other than `alert` have one schema and ignore `shape`.
 *
 * Paths spell keys as `original`, the record as received, spells them (`Severity`), so they can be found in it;
 * without it, as the view does (first letter lower-case).
 *
 * @throws Error when the schemas cannot be loaded or compiled (a broken install, not a bad record).
 */
export function validateRecord(
  kind: Kind,
  shape: AlertShape | 'arm',
  view: Readonly<Record<string, unknown>>,
  original?: unknown,
): SchemaError[] {
  validators ??= compileValidators();
  const validate = kind === 'alert' ? validators.alertByShape.get(shape) : validators.byKind.get(kind);
  if (validate === undefined) throw new Error(`no schema compiled for ${kind}/${shape}`);
  if (validate(view)) return [];
  return describeErrors(validate.errors ?? [], view, original);
}

// ------------------------------------------------------------------------------------------ compilation

function compileValidators(): Validators {
  const directory = join(packageRoot(), 'schemas', 'defender');
  const ajv = new Ajv2020({
    allErrors: true,
    // The schemas themselves must be exact: unknown keywords, ignored keywords and untyped applicators fail.
    strict: true,
    // `["string", "null"]` is how the schemas say "may be null".
    allowUnionTypes: true,
    // Errors carry the offending value and the schema that rejected it, for `got` and titles in `expected`.
    verbose: true,
  });
  const ids = new Map<string, string>();
  for (const name of SCHEMA_FILES) {
    const file = join(directory, `${name}.schema.json`);
    const schema = readSchema(file);
    try {
      ajv.addSchema(schema);
    } catch (error: unknown) {
      throw new Error(`schema ${file} is not a valid JSON Schema`, { cause: error });
    }
    ids.set(name, schema.$id);
  }
  const compile = (ref: string): ValidateFunction => {
    let validate: ValidateFunction | undefined;
    try {
      validate = ajv.getSchema(ref);
    } catch (error: unknown) {
      throw new Error(`schema ${ref} does not compile`, { cause: error });
    }
    if (validate === undefined) throw new Error(`schema ${ref} not found`);
    return validate;
  };
  const idOf = (name: (typeof SCHEMA_FILES)[number]): string => {
    const id = ids.get(name);
    if (id === undefined) throw new Error(`schema ${name} was not loaded`);
    return id;
  };

  const byKind = new Map<Exclude<Kind, 'alert'>, ValidateFunction>();
  for (const name of SCHEMA_FILES) {
    // Compiling every root (common and alert included) makes strict-mode mistakes fail now, not later.
    const validate = compile(idOf(name));
    if (name !== 'common' && name !== 'alert') byKind.set(name, validate);
  }
  const alertByShape = new Map<AlertShape | 'arm', ValidateFunction>();
  for (const [shape, definition] of Object.entries(ALERT_DEFINITION) as [AlertShape | 'arm', string][]) {
    alertByShape.set(shape, compile(`${idOf('alert')}#/$defs/${definition}`));
  }
  return { byKind, alertByShape };
}

function readSchema(file: string): AnySchemaObject & { $id: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (error: unknown) {
    throw new Error(`cannot read schema ${file}`, { cause: error });
  }
  if (!isObject(parsed) || typeof parsed['$id'] !== 'string') {
    throw new Error(`schema ${file} is not an object with a string $id`);
  }
  return parsed as AnySchemaObject & { $id: string };
}

// ------------------------------------------------------------------------------------------ error report

type AjvError = ErrorObject;

/** An ajv error reduced to what a SchemaError needs, before paths are rendered. */
interface Problem {
  /** JSON pointer of the offending (or, for `required`, the missing) value. */
  readonly pointer: string;
  readonly expected: string;
  /** The offending value; `missing` when there is none. */
  readonly value: unknown;
  readonly missing: boolean;
}

function describeErrors(errors: readonly AjvError[], view: unknown, original: unknown): SchemaError[] {
  const problems = condense(errors);
  const seen = new Set<string>();
  const out: SchemaError[] = [];
  for (const problem of problems) {
    const path = renderPath(view, problem.pointer, original);
    // One error per location: a value that breaks two rules (an empty id is too short and blank) is one
    // problem to fix, reported by the first rule.
    const key = problem.missing ? `${path}\u0000${problem.expected}` : path;
    if (seen.has(key)) continue;
    seen.add(key);
    const got = problem.missing ? 'missing' : describeValue(problem.value);
    out.push({ path, message: `${path}: expected ${problem.expected}, got ${got}`, expected: problem.expected, got });
  }
  if (out.length <= MAX_REPORTED_ERRORS) return out;
  const more = out.length - MAX_REPORTED_ERRORS;
  const kept = out.slice(0, MAX_REPORTED_ERRORS);
  kept.push({
    path: '(root)',
    message: `${more} more schema errors not listed`,
    expected: `at most ${MAX_REPORTED_ERRORS} reported errors`,
    got: `${more} more`,
  });
  return kept;
}

/**
 * Turns ajv's list into problems, one per real violation:
 * - `if` errors only say "must match then/else"; the then/else errors say what is wrong, so `if` goes.
 * - an `anyOf`/`oneOf` failure comes after one error list per alternative. When every alternative failed on
 *   the value itself (wrong type, wrong enum), they become ONE problem listing what would have been accepted
 *   (the schema's `title` when it has one); when some alternative got further into the value, only that
 *   alternative's errors are kept, since it is what the record most likely meant.
 *
 * Works backwards because ajv reports an alternative's errors just before the `anyOf` error itself.
 */
function condense(errors: readonly AjvError[]): Problem[] {
  const out: Problem[] = [];
  let end = errors.length;
  while (end > 0) {
    const error = errors[end - 1];
    end -= 1;
    if (error === undefined || error.keyword === 'if') continue;
    if (error.keyword !== 'anyOf' && error.keyword !== 'oneOf') {
      out.push(toProblem(error));
      continue;
    }
    const start = branchStart(errors, end, error);
    const branchErrors = errors.slice(start, end);
    end = start;
    out.push(...condenseAlternatives(error, branchErrors));
  }
  return out.reverse();
}

/**
 * Index of the first error that belongs to the alternatives of `composite` (whose errors end at `end`): the
 * run of errors at or below its value, stopping at an error of a sibling keyword of the same schema object
 * (that one was reported before the alternatives were tried).
 */
function branchStart(errors: readonly AjvError[], end: number, composite: AjvError): number {
  const ownPath = composite.schemaPath;
  const parentPath = ownPath.slice(0, ownPath.lastIndexOf('/'));
  let start = end;
  while (start > 0) {
    const candidate = errors[start - 1];
    if (candidate === undefined || !isWithin(candidate.instancePath, composite.instancePath)) break;
    const inAlternative = candidate.schemaPath.startsWith(`${ownPath}/`);
    const inSibling = candidate.schemaPath.startsWith(`${parentPath}/`);
    // Alternatives that are `$ref`s report paths inside the referenced schema: neither own nor sibling.
    if (!inAlternative && inSibling) break;
    start -= 1;
  }
  return start;
}

function condenseAlternatives(composite: AjvError, branchErrors: readonly AjvError[]): Problem[] {
  const alternatives = condense(branchErrors);
  const deepest = alternatives.reduce((depth, problem) => Math.max(depth, pointerDepth(problem.pointer)), -1);
  const ownDepth = pointerDepth(composite.instancePath);
  if (alternatives.length > 0 && deepest > ownDepth) {
    // Some alternative matched the value's type and failed inside it: report that alternative's findings.
    return alternatives.filter((problem) => pointerDepth(problem.pointer) > ownDepth);
  }
  const title = composite.parentSchema?.['title'];
  let expected: string;
  if (typeof title === 'string' && title !== '') {
    expected = title;
  } else if (composite.keyword === 'oneOf' && alternatives.length === 0) {
    expected = 'exactly one matching alternative';
  } else {
    expected = [...new Set(alternatives.map((problem) => problem.expected))].join(' or ') || 'one of the alternatives';
  }
  return [{ pointer: composite.instancePath, expected, value: composite.data, missing: false }];
}

function toProblem(error: AjvError): Problem {
  const params = error.params;
  switch (error.keyword) {
    case 'required': {
      const property = String(params['missingProperty']);
      return { pointer: `${error.instancePath}/${escapePointer(property)}`, expected: `required property "${property}"`, value: undefined, missing: true };
    }
    case 'type': {
      const types: unknown = params['type'];
      const expected = (Array.isArray(types) ? types.map(String) : String(types).split(',')).join(' or ');
      return problemAt(error, expected);
    }
    case 'enum': {
      const allowed: unknown = params['allowedValues'];
      const values = Array.isArray(allowed) ? allowed.map((value) => (typeof value === 'string' ? value : JSON.stringify(value))) : [];
      return problemAt(error, `one of ${values.join('|')}`);
    }
    case 'const':
      return problemAt(error, `exactly ${JSON.stringify(params['allowedValue'])}`);
    case 'minLength': {
      const limit = Number(params['limit']);
      return problemAt(error, limit === 1 ? 'non-empty string' : `string of at least ${limit} characters`);
    }
    case 'maxLength':
      return problemAt(error, `string of at most ${Number(params['limit'])} characters`);
    case 'pattern': {
      const title = error.parentSchema?.['title'];
      return problemAt(error, typeof title === 'string' && title !== '' ? title : `string matching /${String(params['pattern'])}/`);
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return problemAt(error, `number ${String(params['comparison'])} ${String(params['limit'])}`);
    case 'minItems':
      return problemAt(error, `array of at least ${Number(params['limit'])} items`);
    case 'maxItems':
      return problemAt(error, `array of at most ${Number(params['limit'])} items`);
    case 'false schema':
      return problemAt(error, 'no value here');
    default:
      return problemAt(error, error.message ?? error.keyword);
  }
}

function problemAt(error: AjvError, expected: string): Problem {
  return { pointer: error.instancePath, expected, value: error.data, missing: false };
}

// ------------------------------------------------------------------------------------------ rendering

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * Renders a JSON pointer into the (case-folded) view as a dotted path: `/properties/status/code` ->
 * `properties.status.code`, `/entities/2/type` -> `entities[2].type`. With the original record, each key is
 * spelled as the record spells it (`Severity`, not `severity`), so the path can be found in the record;
 * Newtonsoft `{"$values": [...]}` wrappers are stepped through.
 */
function renderPath(root: unknown, pointer: string, original?: unknown): string {
  if (pointer === '') return '(root)';
  let node: unknown = root;
  let source: unknown = original;
  let out = '';
  for (const segment of pointer.slice(1).split('/').map(unescapePointer)) {
    if (isObject(source) && Array.isArray(source['$values']) && Array.isArray(node)) source = source['$values'];
    if (Array.isArray(node) && /^(0|[1-9][0-9]*)$/.test(segment)) {
      out += `[${segment}]`;
      node = node[Number(segment)];
      source = Array.isArray(source) ? source[Number(segment)] : undefined;
      continue;
    }
    const key = isObject(source) ? originalKey(source, segment) : segment;
    out += IDENTIFIER.test(key) ? (out === '' ? key : `.${key}`) : `[${JSON.stringify(key)}]`;
    node = isObject(node) ? node[segment] : undefined;
    source = isObject(source) ? source[key] : undefined;
  }
  return out;
}

/** The record's own spelling of a folded key (the folded key itself when the record lacks it). */
function originalKey(object: Readonly<Record<string, unknown>>, folded: string): string {
  if (Object.prototype.hasOwnProperty.call(object, folded)) return folded;
  for (const key of Object.keys(object)) {
    if (key !== '$type' && foldKey(key) === folded) return key;
  }
  return folded;
}

/** `number 3`, `string "High"`, `null`, `array of 2 items`, `object {value, localizedValue}`. */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'empty array' : `array of ${value.length} item${value.length === 1 ? '' : 's'}`;
  switch (typeof value) {
    case 'string':
      return `string ${JSON.stringify(value.length > MAX_QUOTED_CHARS ? `${value.slice(0, MAX_QUOTED_CHARS)}…` : value)}`;
    case 'number':
    case 'boolean':
      return `${typeof value} ${String(value)}`;
    case 'object': {
      const keys = Object.keys(value as object);
      if (keys.length === 0) return 'empty object';
      const shown = keys.slice(0, 3).join(', ');
      return `object {${keys.length > 3 ? `${shown}, …` : shown}}`;
    }
    default:
      return typeof value;
  }
}

function pointerDepth(pointer: string): number {
  return pointer === '' ? 0 : pointer.split('/').length - 1;
}

function isWithin(pointer: string, ancestor: string): boolean {
  return pointer === ancestor || pointer.startsWith(`${ancestor}/`);
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
