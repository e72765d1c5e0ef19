/**
 * The fault-injection suite's generator must be right about every record: its `expected` is what the suite
 * counts receivers against. Checked here against the project's own pipeline (decode, classify, validate,
 * normalise, route with mutes, dedupe) under test/faults/routes.yaml, with a fixed clock.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { KINDS } from '../../src/model/finding.js';
import { addToSummary, createPipeline, emptySummary, inspectEnvelope, type RecordResult } from '../../src/pipeline/run.js';
import { MemoryLedger } from '../../src/routing/dedupe.js';
import { lintRules } from '../../src/routing/lint.js';
import { loadRulesFile } from '../../src/routing/load.js';
import { routeFinding } from '../../src/routing/route.js';
import type { RoutingRules } from '../../src/routing/types.js';
import {
  FAULT_DESTINATIONS,
  FAULT_ROUTES_ENV_NAMES,
  FAULT_ROUTES_FILE,
  MUTED_ALERT_TYPE,
  expectedTotals,
  generateRecords,
  type GeneratedRecord,
} from '../support/generateRecords.js';

/** Any instant before the mute's end (2099) will do; a fixed one keeps the run reproducible. */
const NOW = new Date('2026-11-28T12:00:00Z');
const COUNT = 4_000;
const SEED = 20_261_127;

let rules: RoutingRules;
let records: GeneratedRecord[];
/** The pipeline's results for each generated body (a JSON array body makes several). */
let resultsByBody: RecordResult[][];

beforeAll(async () => {
  rules = await loadRulesFile(FAULT_ROUTES_FILE);
  records = generateRecords({ count: COUNT, seed: SEED });
  // The real pipeline, as the Function and the consumer run it: inspectEnvelope (decode, classify, validate,
  // normalise), routeFinding with mutes at NOW, and dedupe against a ledger.
  const pipeline = createPipeline({ rules, ledger: new MemoryLedger(), now: () => NOW });
  const results = await pipeline.processBatch(records.map((record) => ({ input: `gen:${record.index}`, body: record.body })));
  resultsByBody = records.map(() => []);
  for (const result of results) {
    const index = Number(/^gen:(\d+)/.exec(result.report.input)?.[1]);
    resultsByBody[index]?.push(result);
  }
});

/** What the pipeline made of one body, in the shape of `expected`. */
function actualOutcome(results: readonly RecordResult[]): Record<string, unknown> {
  const [first] = results;
  if (results.length === 1 && first?.finding !== undefined && first.decision !== undefined) {
    const { finding, decision, report } = first;
    const muted = decision.muted.map((entry) => entry.destination);
    return {
      valid: true,
      kind: finding.kind,
      id: finding.id,
      status: finding.status,
      severity: finding.severity,
      ...(finding.alertType !== undefined ? { alertType: finding.alertType } : {}),
      // What routeFinding decided, mutes applied; and what the pipeline reports after dedupe: the same.
      destinations: decision.destinations.filter((name) => !muted.includes(name)),
      muted,
      records: 1,
      ...(JSON.stringify(report.destinations) !== JSON.stringify(decision.destinations.filter((name) => !muted.includes(name))) ? { afterDedupe: report.destinations } : {}),
    };
  }
  const codes = [...new Set(results.map((result) => result.quarantine?.code ?? 'accepted'))];
  const kinds = [...new Set(results.map((result) => result.quarantine?.kind ?? null))];
  return {
    valid: false,
    ...(kinds.length === 1 && kinds[0] !== null && kinds[0] !== undefined ? { kind: kinds[0] } : {}),
    destinations: [],
    muted: [],
    quarantineCode: codes.length === 1 ? codes[0] : codes.join('+'),
    records: results.length,
  };
}

/** JSON with the (top-level) keys in one order, so that key order never counts as a difference. */
function canonical(value: object): string {
  return JSON.stringify(value, Object.keys(value).sort());
}

describe('generateRecords against the pipeline', () => {
  it('expects, for every record, exactly what the pipeline (inspectEnvelope, routeFinding, dedupe) decides', () => {
    const mismatches: unknown[] = [];
    for (const record of records) {
      const actual = actualOutcome(resultsByBody[record.index] ?? []);
      if (canonical(actual) !== canonical(record.expected)) {
        mismatches.push({ index: record.index, variant: record.variant, expected: record.expected, actual });
      }
    }
    expect(mismatches.length, JSON.stringify(mismatches.slice(0, 3), null, 2)).toBe(0);
  });

  it('a lone body through inspectEnvelope gives the same answer as in the batch', () => {
    for (const record of records.filter((_, i) => i % 97 === 0)) {
      const inspected = inspectEnvelope({ input: 'one', body: record.body }, { now: NOW });
      expect(inspected).toHaveLength(record.expected.records);
      for (const entry of inspected) {
        if (entry.ok) {
          expect(record.expected.valid).toBe(true);
          expect(entry.finding.id).toBe(record.expected.id);
          const decision = routeFinding(rules, entry.finding, NOW);
          expect(decision.muted.map((muted) => muted.destination)).toEqual(record.expected.muted);
        } else {
          expect(entry.entry.code).toBe(record.expected.quarantineCode);
        }
      }
    }
  });

  it('expectedTotals matches the run summary of the real pipeline, and no two records collide in dedupe', () => {
    const summary = emptySummary();
    for (const result of resultsByBody.flat()) addToSummary(summary, result);
    const totals = expectedTotals(records);

    expect(summary.duplicates).toEqual({});
    expect(summary.records).toBe(totals.records);
    expect(summary.outcomes).toEqual(totals.outcomes);
    expect(summary.delivered).toEqual(totals.delivered);
    expect(summary.muted).toEqual(totals.muted);
    expect(summary.quarantined).toEqual(totals.quarantined);
    expect(summary.byKind).toEqual(totals.byKind);
    expect(totals.unrouted).toBe(0);
    expect(totals.bodies).toBe(COUNT);
  });
});

describe('generateRecords: identities, coverage and shares', () => {
  it('gives every valid record its own (kind, id, status), compared as dedupe does (lower-cased)', () => {
    const valid = records.filter((record) => record.expected.valid);
    const keys = new Set(valid.map(({ expected }) => JSON.stringify([expected.kind, expected.id?.toLowerCase(), expected.status?.toLowerCase()])));
    const ids = new Set(valid.map(({ expected }) => expected.id?.toLowerCase()));
    expect(keys.size).toBe(valid.length);
    expect(ids.size).toBe(valid.length);
  });

  it('holds every kind, every alert shape, Kubernetes alerts of both planes, and PascalCase findings', () => {
    const kinds = new Set(records.flatMap(({ expected }) => (expected.valid && expected.kind ? [expected.kind] : [])));
    expect([...kinds].sort()).toEqual([...KINDS].sort());
    const variants = new Set(records.map((record) => record.variant));
    for (const variant of ['alert/k8s-control-plane', 'alert/k8s-node', 'alert/vm', 'alert/other', 'alert/rest', 'alert/activity-log', 'recommendation/legacy-envelope', 'finding/acr-image-pascalcase', 'finding/runtime-image', 'finding/server-tvm', 'finding/sql-va']) {
      expect(variants).toContain(variant);
    }
    const alertTypes = records.flatMap(({ expected }) => (expected.alertType ? [expected.alertType] : []));
    expect(alertTypes.some((type) => type.startsWith('K8S_'))).toBe(true);
    expect(alertTypes.some((type) => type.startsWith('K8S.NODE_'))).toBe(true);
  });

  it('quarantines in every way the decoder and validator know, each with its code', () => {
    const codes = new Set(records.flatMap(({ expected }) => (expected.quarantineCode ? [expected.quarantineCode] : [])));
    expect([...codes].sort()).toEqual(['bad-records-wrapper', 'empty-body', 'hostile-key', 'not-an-object', 'not-json', 'schema', 'too-deep', 'too-large', 'unknown-kind']);
    const tooLarge = records.filter(({ expected }) => expected.quarantineCode === 'too-large');
    expect(tooLarge.length).toBeGreaterThan(0);
    expect(tooLarge.length).toBeLessThanOrEqual(2);
    for (const record of tooLarge) expect(Buffer.byteLength(record.body)).toBeGreaterThan(1024 * 1024);
  });

  it('routes about 5-10% to Teams, 2-5% to e-mail, mutes some, and makes 3% invalid', () => {
    const totals = expectedTotals(records);
    const share = (n: number | undefined): number => (n ?? 0) / COUNT;
    expect(share(totals.delivered[FAULT_DESTINATIONS.teams])).toBeGreaterThanOrEqual(0.05);
    expect(share(totals.delivered[FAULT_DESTINATIONS.teams])).toBeLessThanOrEqual(0.1);
    expect(share(totals.delivered[FAULT_DESTINATIONS.email])).toBeGreaterThanOrEqual(0.02);
    expect(share(totals.delivered[FAULT_DESTINATIONS.email])).toBeLessThanOrEqual(0.05);
    expect(totals.mutedRecords).toBeGreaterThanOrEqual(10);
    expect(records.filter(({ expected }) => expected.muted.length > 0).every(({ expected }) => expected.alertType === MUTED_ALERT_TYPE)).toBe(true);
    expect(records.filter(({ expected }) => !expected.valid)).toHaveLength(Math.round(COUNT * 0.03));
    expect(totals.delivered[FAULT_DESTINATIONS.splunk]).toBe(records.filter(({ expected }) => expected.valid).length);
  });

  it('makes realistic bodies: a few KB, one JSON object each', () => {
    const sizes = records.filter(({ expected }) => expected.valid).map(({ body }) => Buffer.byteLength(body));
    sizes.sort((a, b) => a - b);
    const median = sizes[Math.floor(sizes.length / 2)] ?? 0;
    expect(median).toBeGreaterThan(1_500);
    expect(median).toBeLessThan(8_000);
    expect(sizes[sizes.length - 1]).toBeLessThan(64 * 1024);
  });
});

describe('generateRecords: options, determinism and speed', () => {
  it('is deterministic for a seed, and another seed changes bodies and ids', () => {
    expect(generateRecords({ count: COUNT, seed: SEED })).toEqual(records);
    const first = generateRecords({ count: 500, seed: 'fault-suite' });
    const second = generateRecords({ count: 500, seed: 'fault-suite' });
    expect(second).toEqual(first);
    const other = generateRecords({ count: 500, seed: 'another-run' });
    const ids = new Set(first.flatMap(({ expected }) => (expected.id ? [expected.id.toLowerCase()] : [])));
    expect(other.filter(({ expected }) => expected.id !== undefined && ids.has(expected.id.toLowerCase()))).toEqual([]);
  });

  it('honours invalidShare and maxTooLarge', () => {
    expect(generateRecords({ count: 1_000, seed: 1, invalidShare: 0 }).every(({ expected }) => expected.valid)).toBe(true);
    const many = generateRecords({ count: 1_000, seed: 1, invalidShare: 0.2, maxTooLarge: 0 });
    expect(many.filter(({ expected }) => !expected.valid)).toHaveLength(200);
    expect(many.some(({ expected }) => expected.quarantineCode === 'too-large')).toBe(false);
    expect(generateRecords({ count: 0, seed: 1 })).toEqual([]);
  });

  it('generates 50,000 records in well under a few seconds', () => {
    const started = performance.now();
    const generated = generateRecords({ count: 50_000, seed: 50_000 });
    const elapsedMs = performance.now() - started;
    expect(generated).toHaveLength(50_000);
    // About 0.5 s on an idle laptop; the bound leaves room for a busy CI machine.
    expect(elapsedMs).toBeLessThan(4_000);
  });
});

describe('test/faults/routes.yaml', () => {
  it('loads and lints clean (no errors, no warnings) once its environment is set', () => {
    const env = Object.fromEntries(FAULT_ROUTES_ENV_NAMES.map((name) => [name, name === 'SMTP_URL' ? 'smtp://127.0.0.1:2525' : 'http://127.0.0.1:8088']));
    expect(lintRules(rules, { env, now: NOW })).toEqual([]);
    expect([...rules.destinations.keys()]).toEqual([FAULT_DESTINATIONS.splunk, FAULT_DESTINATIONS.teams, FAULT_DESTINATIONS.email]);
    expect(rules.mutes.map((mute) => mute.match.alertType)).toEqual([[MUTED_ALERT_TYPE]]);
  });
});
