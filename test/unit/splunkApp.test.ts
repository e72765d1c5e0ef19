/**
 * The Splunk app in splunk/defender_forwarder (props, eventtypes, tags, fields) against the events the HEC
 * encoder really writes: every field the app refers to must exist in those events, the alert eventtype must
 * select exactly the alerts, and the tag must name an existing eventtype. Events come from the bundled
 * samples and the Defender test fixtures, run through inspectEnvelope and buildHecEnvelope.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { KINDS } from '../../src/model/finding.js';
import { inspectEnvelope } from '../../src/pipeline/run.js';
import type { HecEnvelopeOptions } from '../../src/sinks/splunk-hec/config.js';
import { buildHecEnvelope, hecSourcetype, type HecEnvelope } from '../../src/sinks/splunk-hec/encode.js';

const root = path.resolve(import.meta.dirname, '../..');
const appDir = path.join(root, 'splunk/defender_forwarder');

// ---------------------------------------------------------------------------------------------------------
// A small .conf reader: `[stanza]`, `key = value`, `#` comment lines. Keys before any stanza go to "".

type Stanza = Map<string, string>;
type Conf = Map<string, Stanza>;

function parseConf(text: string, file: string): Conf {
  const conf: Conf = new Map();
  let current: Stanza = new Map();
  conf.set('', current);
  text.split(/\r?\n/).forEach((rawLine, index) => {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    const header = /^\[(.*)\]$/.exec(line);
    if (header) {
      const name = header[1] ?? '';
      if (conf.has(name) && name !== '') throw new Error(`${file}:${index + 1}: stanza [${name}] repeated`);
      current = conf.get(name) ?? new Map();
      conf.set(name, current);
      return;
    }
    const at = line.indexOf('=');
    if (at <= 0) throw new Error(`${file}:${index + 1}: not a key = value line: ${line}`);
    const key = line.slice(0, at).trim();
    if (current.has(key)) throw new Error(`${file}:${index + 1}: key ${key} repeated`);
    current.set(key, line.slice(at + 1).trim());
  });
  if (conf.get('')?.size === 0) conf.delete('');
  return conf;
}

function readConf(relative: string): Conf {
  return parseConf(readFileSync(path.join(appDir, relative), 'utf8'), relative);
}

function stanza(conf: Conf, name: string): Stanza {
  const found = conf.get(name);
  if (!found) throw new Error(`no stanza [${name}]`);
  return found;
}

// ---------------------------------------------------------------------------------------------------------
// Real events, as the encoder writes them.

/** The sourcetype config/routes.example.yaml sets on its splunk-hec destination. */
function exampleSourcetype(): string {
  const rules: unknown = parseYaml(readFileSync(path.join(root, 'config/routes.example.yaml'), 'utf8'));
  const destinations = (rules as { destinations?: Record<string, Record<string, unknown>> }).destinations ?? {};
  const hec = Object.values(destinations).filter((destination) => destination['type'] === 'splunk-hec');
  expect(hec).toHaveLength(1);
  const sourcetype = hec[0]?.['sourcetype'];
  if (typeof sourcetype !== 'string') throw new Error('the example splunk-hec destination sets no sourcetype');
  return sourcetype;
}

const EXAMPLE_SOURCETYPE = exampleSourcetype();
const EXAMPLE_OPTIONS: HecEnvelopeOptions = { source: 'defender-for-cloud', sourcetype: EXAMPLE_SOURCETYPE, sourcetypes: {} };
const DEFAULT_OPTIONS: HecEnvelopeOptions = { source: 'defender-for-cloud', sourcetypes: {} };

interface Sample {
  readonly label: string;
  readonly body: string;
}

function samples(): Sample[] {
  const out: Sample[] = [];
  for (const dir of ['samples', 'test/fixtures/defender']) {
    for (const name of readdirSync(path.join(root, dir)).sort()) {
      const text = () => readFileSync(path.join(root, dir, name), 'utf8');
      if (name.endsWith('.json')) out.push({ label: `${dir}/${name}`, body: text() });
      if (name.endsWith('.jsonl')) {
        text()
          .split('\n')
          .filter((line) => line.trim() !== '')
          .forEach((line, index) => out.push({ label: `${dir}/${name}#${index + 1}`, body: line }));
      }
    }
  }
  return out;
}

interface EncodedEvent {
  readonly label: string;
  readonly envelope: HecEnvelope;
  /** Splunk's KV_MODE=json names of the event's leaves (`a.b`, `list{}.c`), with their values. */
  readonly json: Map<string, string[]>;
}

function jsonLeaves(value: unknown, prefix: string, out: Map<string, string[]>): void {
  if (value === null || value === undefined) return;
  if (Array.isArray(value)) {
    for (const entry of value) jsonLeaves(entry, `${prefix}{}`, out);
    return;
  }
  if (typeof value === 'object') {
    for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
      jsonLeaves(entry, prefix === '' ? key : `${prefix}.${key}`, out);
    }
    return;
  }
  const list = out.get(prefix) ?? [];
  list.push(String(value));
  out.set(prefix, list);
}

function encodeAll(options: HecEnvelopeOptions): EncodedEvent[] {
  const events: EncodedEvent[] = [];
  for (const sample of samples()) {
    for (const record of inspectEnvelope({ input: sample.label, body: sample.body })) {
      if (!record.ok) continue;
      const envelope = buildHecEnvelope({ input: sample.label, finding: record.finding }, options);
      const json = new Map<string, string[]>();
      jsonLeaves(envelope.event, '', json);
      events.push({ label: sample.label, envelope, json });
    }
  }
  return events;
}

const EVENTS = encodeAll(EXAMPLE_OPTIONS);
const DEFAULT_EVENTS = encodeAll(DEFAULT_OPTIONS);
const kindOf = (event: EncodedEvent): string | string[] | undefined => event.envelope.fields['kind'];
const ALERTS = EVENTS.filter((event) => kindOf(event) === 'alert');

/** A field as Splunk would see it at search time: the indexed value(s) plus what KV_MODE=json extracts. */
function valuesOf(event: EncodedEvent, field: string): string[] {
  if (field === 'sourcetype') return [event.envelope.sourcetype];
  const indexed = event.envelope.fields[field];
  const fromIndex = indexed === undefined ? [] : typeof indexed === 'string' ? [indexed] : indexed;
  return [...fromIndex, ...(event.json.get(field) ?? [])];
}

const hasField = (event: EncodedEvent, field: string): boolean => valuesOf(event, field).length > 0;

// ---------------------------------------------------------------------------------------------------------
// props.conf expressions.

/** Field references of an EVAL expression: every field must be written 'quoted'; bare words are functions. */
function evalReferences(expression: string): string[] {
  const withoutStrings = expression.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const references = [...withoutStrings.matchAll(/'([^']+)'/g)].map((match) => match[1] ?? '');
  const bare = withoutStrings.replace(/'[^']*'/g, "''");
  for (const match of bare.matchAll(/[A-Za-z_][A-Za-z0-9_.{}]*/g)) {
    const word = match[0];
    const after = bare.slice((match.index ?? 0) + word.length).trimStart();
    const isFunction = after.startsWith('(');
    if (!isFunction && !['AND', 'OR', 'NOT', 'true', 'false', 'null'].includes(word)) {
      throw new Error(`EVAL refers to ${word} without quotes ('${word}'): the test cannot check it`);
    }
  }
  return references;
}

/** FIELDALIAS value: `from AS to [from AS to ...]`. */
function aliasPairs(value: string): { from: string; to: string }[] {
  const tokens = value.split(/\s+/).filter((token) => token !== '');
  const pairs: { from: string; to: string }[] = [];
  for (let i = 0; i < tokens.length; i += 3) {
    const [from, as, to] = [tokens[i], tokens[i + 1], tokens[i + 2]];
    if (from === undefined || to === undefined || (as !== 'AS' && as !== 'ASNEW')) {
      throw new Error(`FIELDALIAS not of the form "a AS b": ${value}`);
    }
    pairs.push({ from, to });
  }
  return pairs;
}

/** What one props stanza produces: output field -> the fields it reads. */
function producedFields(props: Stanza): Map<string, string[]> {
  const produced = new Map<string, string[]>();
  for (const [key, value] of props) {
    if (key.startsWith('EVAL-')) produced.set(key.slice('EVAL-'.length), evalReferences(value));
    if (key.startsWith('FIELDALIAS-')) for (const { from, to } of aliasPairs(value)) produced.set(to, [from]);
  }
  return produced;
}

// ---------------------------------------------------------------------------------------------------------
// eventtypes.conf searches, of the form `(a="x" OR b="y") c=z ...` (AND of terms and OR-groups).

interface Term {
  readonly field: string;
  readonly value: string;
}

function parseTerm(text: string): Term {
  const match = /^([A-Za-z_][A-Za-z0-9_.]*)=(?:"([^"]*)"|([^\s"()]+))$/.exec(text);
  if (!match?.[1]) throw new Error(`eventtype term not understood: ${text}`);
  return { field: match[1], value: match[2] ?? match[3] ?? '' };
}

/** The search as a conjunction of disjunctions. */
function parseSearch(search: string): Term[][] {
  const clauses: Term[][] = [];
  const pattern = /\(([^()]*)\)|(\S+)/g;
  for (const match of search.matchAll(pattern)) {
    if (match[1] !== undefined) clauses.push(match[1].split(/\s+OR\s+/).map((term) => parseTerm(term.trim())));
    else if (match[2] !== undefined) clauses.push([parseTerm(match[2])]);
  }
  return clauses;
}

function globMatches(pattern: string, value: string): boolean {
  const regex = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
  return regex.test(value);
}

function termMatches(event: EncodedEvent, term: Term): boolean {
  // Splunk compares field values case-insensitively in a search; `*` is a wildcard.
  return valuesOf(event, term.field).some((value) => globMatches(term.value, value));
}

function searchMatches(event: EncodedEvent, clauses: Term[][]): boolean {
  return clauses.every((clause) => clause.some((term) => termMatches(event, term)));
}

// ---------------------------------------------------------------------------------------------------------

const props = readConf('default/props.conf');
const eventtypes = readConf('default/eventtypes.conf');
const tags = readConf('default/tags.conf');
const fieldsConf = readConf('default/fields.conf');

/** CIM Alerts fields every Defender alert must end up with (the README's mapping table). */
const CIM_ALERT_FIELDS = ['app', 'description', 'dest', 'id', 'severity', 'severity_id', 'signature', 'subject', 'type', 'vendor_account'];
/** CIM Alerts fields only some alerts can have (an Activity Log alert names no alert type: no signature_id). */
const CIM_ALERT_FIELDS_SOMETIMES = ['dest_type', 'mitre_technique_id', 'signature_id'];

describe('the events under test', () => {
  it('cover every shape of alert and the other kinds', () => {
    expect(ALERTS.length).toBeGreaterThanOrEqual(5);
    expect(ALERTS.some((event) => event.json.has('SystemAlertId'))).toBe(true); // Event Hub shape
    expect(ALERTS.some((event) => event.json.has('properties.systemAlertId'))).toBe(true); // REST shape
    expect(new Set(EVENTS.map((event) => kindOf(event)))).toEqual(new Set(['alert', 'recommendation', 'finding', 'regulatoryCompliance', 'secureScore', 'secureScoreControl']));
  });
});

describe('props.conf', () => {
  const expected = new Set<string>([EXAMPLE_SOURCETYPE, ...KINDS.map((kind) => hecSourcetype(kind, DEFAULT_OPTIONS))]);

  it('has a stanza for the example rules sourcetype and for every default sourcetype, and no other', () => {
    expect(new Set(props.keys())).toEqual(expected);
    expect(EVENTS.every((event) => props.has(event.envelope.sourcetype))).toBe(true);
    expect(DEFAULT_EVENTS.every((event) => props.has(event.envelope.sourcetype))).toBe(true);
  });

  it('gives every sourcetype the same settings, JSON extraction and no index-time time settings', () => {
    const first = stanza(props, EXAMPLE_SOURCETYPE);
    expect(first.get('KV_MODE')).toBe('json');
    for (const name of expected) expect(Object.fromEntries(stanza(props, name))).toEqual(Object.fromEntries(first));
    for (const key of first.keys()) expect(key).not.toMatch(/^(TIME_|MAX_TIMESTAMP|DATETIME_CONFIG|LINE_BREAKER|SHOULD_LINEMERGE|INDEXED_EXTRACTIONS)/);
  });

  const produced = producedFields(stanza(props, EXAMPLE_SOURCETYPE));

  it('reads only fields that exist in at least one alert the encoder writes (indexed field or JSON path)', () => {
    expect(produced.size).toBeGreaterThan(0);
    for (const [output, inputs] of produced) {
      expect(inputs.length, output).toBeGreaterThan(0);
      for (const input of inputs) {
        expect(ALERTS.some((event) => hasField(event, input)), `${output} <- ${input}`).toBe(true);
      }
    }
  });

  it('produces only CIM Alerts fields', () => {
    for (const output of produced.keys()) expect([...CIM_ALERT_FIELDS, ...CIM_ALERT_FIELDS_SOMETIMES]).toContain(output);
  });

  it('gives every alert each required CIM Alerts field (from the indexed fields or a mapping)', () => {
    for (const field of CIM_ALERT_FIELDS) {
      for (const event of ALERTS) {
        const inputs = produced.get(field) ?? [field];
        expect(inputs.some((input) => hasField(event, input)), `${field} for ${event.label}`).toBe(true);
      }
    }
    for (const field of CIM_ALERT_FIELDS_SOMETIMES) {
      const inputs = produced.get(field) ?? [field];
      expect(ALERTS.some((event) => inputs.some((input) => hasField(event, input))), field).toBe(true);
    }
  });

  it('overrides, with an EVAL, every CIM field that both the encoder indexes and KV_MODE=json extracts', () => {
    const clashes = new Set<string>();
    for (const event of ALERTS) {
      for (const field of Object.keys(event.envelope.fields)) if (event.json.has(field)) clashes.add(field);
    }
    const cimClashes = [...clashes].filter((field) => CIM_ALERT_FIELDS.includes(field));
    expect(cimClashes.length).toBeGreaterThan(0); // REST-shaped alerts have top-level id and type
    for (const field of cimClashes) expect(stanza(props, EXAMPLE_SOURCETYPE).has(`EVAL-${field}`), field).toBe(true);
  });

  it('keeps the CIM type values the encoder writes (alarm | alert | event | task | warning)', () => {
    const typeEval = stanza(props, EXAMPLE_SOURCETYPE).get('EVAL-type') ?? '';
    for (const event of EVENTS) {
      const value = event.envelope.fields['type'];
      expect(typeof value === 'string' && typeEval.includes(`"${value}"`), `${event.label}: type ${String(value)}`).toBe(true);
    }
  });
});

describe('eventtypes.conf', () => {
  it('defines the alert eventtype on the kind the encoder writes for alerts', () => {
    const search = stanza(eventtypes, 'defender_forwarder_alert').get('search') ?? '';
    expect(parseSearch(search).flat()).toContainEqual({ field: 'kind', value: 'alert' });
  });

  for (const [name, settings] of eventtypes) {
    const clauses = parseSearch(settings.get('search') ?? '');
    const kind = name.replace(/^defender_forwarder_/, '');

    it(`${name}: names an existing kind and refers only to sourcetypes in props.conf and indexed fields`, () => {
      expect(KINDS as readonly string[]).toContain(kind);
      for (const term of clauses.flat()) {
        if (term.field === 'sourcetype') {
          expect([...props.keys()].some((sourcetype) => globMatches(term.value, sourcetype)), term.value).toBe(true);
        } else {
          expect(EVENTS.some((event) => event.envelope.fields[term.field] !== undefined), term.field).toBe(true);
          // Indexed values are not terms of _raw: without this, `kind=alert` finds nothing.
          expect(fieldsConf.get(term.field)?.get('INDEXED_VALUE'), term.field).toBe('false');
        }
      }
    });

    for (const [label, events] of [['mscs:defender sourcetype', EVENTS], ['default sourcetypes', DEFAULT_EVENTS]] as const) {
      it(`${name}: selects exactly the ${kind} records (${label})`, () => {
        const wanted = events.filter((event) => kindOf(event) === kind);
        expect(wanted.length).toBeGreaterThan(0);
        for (const event of events) {
          expect(searchMatches(event, clauses), `${event.label} (${String(kindOf(event))})`).toBe(kindOf(event) === kind);
        }
      });
    }
  }
});

describe('tags.conf and fields.conf', () => {
  it('tags only existing eventtypes, and only alerts as alert', () => {
    expect(tags.size).toBeGreaterThan(0);
    for (const [name, settings] of tags) {
      const match = /^eventtype=(.+)$/.exec(name);
      expect(match?.[1] !== undefined && eventtypes.has(match[1]), name).toBe(true);
      for (const [tag, state] of settings) {
        expect(state).toMatch(/^(enabled|disabled)$/);
        if (tag === 'alert' && state === 'enabled') {
          const clauses = parseSearch(stanza(eventtypes, match?.[1] ?? '').get('search') ?? '');
          const matched = EVENTS.filter((event) => searchMatches(event, clauses));
          expect(matched.length).toBeGreaterThan(0);
          expect(matched.every((event) => kindOf(event) === 'alert')).toBe(true);
        }
      }
    }
    expect(stanza(tags, 'eventtype=defender_forwarder_alert').get('alert')).toBe('enabled');
  });

  it('never marks a field INDEXED = true (fields.conf is global: it would break other sourcetypes)', () => {
    for (const [name, settings] of fieldsConf) {
      expect(settings.get('INDEXED'), name).not.toBe('true');
      expect(EVENTS.some((event) => event.envelope.fields[name] !== undefined), name).toBe(true);
    }
  });
});

describe('app packaging', () => {
  it('is a Splunk app named after its folder, exporting its knowledge objects', () => {
    const app = readConf('default/app.conf');
    expect(stanza(app, 'package').get('id')).toBe(path.basename(appDir));
    const meta = readConf('metadata/default.meta');
    for (const object of ['props', 'eventtypes', 'tags', 'fields']) {
      expect(meta.get(object)?.get('export') ?? meta.get('')?.get('export'), object).toBe('system');
    }
  });

  it('documents the sourcetypes it expects and every field it produces', () => {
    const readme = readFileSync(path.join(appDir, 'README.md'), 'utf8');
    expect(readme).toContain(`sourcetype: "${EXAMPLE_SOURCETYPE}"`);
    expect(readme).toContain('`azure:defender:<kind>`');
    for (const kind of KINDS) expect(readme, kind).toContain(kind === 'alert' ? '`azure:defender:alert`' : `\`...:${kind}\``);
    for (const field of [...CIM_ALERT_FIELDS, ...CIM_ALERT_FIELDS_SOMETIMES]) expect(readme, field).toContain(`| \`${field}\` |`);
  });
});
