/**
 * Generated hostile bodies, from a fixed seed: whatever arrives, every record ends accepted or quarantined
 * with a reason, nothing throws, and no prototype is touched.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { envelopesFromBatch } from '../../src/host/eventHubBatch.js';
import { inspectEnvelope } from '../../src/pipeline/run.js';

const fixtures = path.resolve(import.meta.dirname, '../fixtures/defender');
const seeds = ['eh_alert_K8S_AdmissionController_informational__sumologic.json', 'arg_subassessment_AzureContainerRegistryVulnerability_mdvm__msdocs.json', 'eh_assessment_insert_NotApplicable__sumologic.json'].map(
  (name) => readFileSync(path.join(fixtures, name), 'utf8'),
);

/** A small deterministic generator (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NASTY = ['__proto__', 'constructor', 'prototype', '$type', '$values', '$ref', '', '\u0000', '\u001b[2J', 'Severity', 'type', 'records'];
const VALUES: unknown[] = [null, true, 0, -1, 1e308, 'x'.repeat(1000), '', [], {}, [[[]]], { $values: 'no' }, 'Critical', 'Microsoft.Security/assessments'];

/** Mutates a parsed record at random places: replace values, add nasty keys, delete keys. */
function mutate(value: unknown, next: () => number, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || depth > 6) {
    return next() < 0.15 ? VALUES[Math.floor(next() * VALUES.length)] : value;
  }
  if (Array.isArray(value)) return value.map((item) => mutate(item, next, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (next() < 0.05) continue;
    Object.defineProperty(out, key, { value: mutate(item, next, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  if (next() < 0.1) {
    const key = NASTY[Math.floor(next() * NASTY.length)] ?? 'x';
    Object.defineProperty(out, key, { value: VALUES[Math.floor(next() * VALUES.length)], enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Damages text: truncation, a flipped byte, an inserted brace. */
function damage(text: string, next: () => number): string {
  const at = Math.floor(next() * text.length);
  switch (Math.floor(next() * 4)) {
    case 0:
      return text.slice(0, at);
    case 1:
      return `${text.slice(0, at)}${String.fromCharCode(Math.floor(next() * 256))}${text.slice(at + 1)}`;
    case 2:
      return `${text.slice(0, at)}{${text.slice(at)}`;
    default:
      return `${text.slice(0, at)}"\\ud800"${text.slice(at)}`;
  }
}

describe('hostile input', () => {
  it('2,000 generated bodies: every record is accepted or quarantined with a reason, nothing throws', () => {
    const next = random(20261128);
    const outcomes = { accepted: 0, quarantined: 0 };
    const codes = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const seed = seeds[i % seeds.length] ?? '';
      let body: unknown;
      const form = i % 4;
      if (form === 0) body = damage(seed, next);
      else if (form === 1) body = JSON.stringify(mutate(JSON.parse(seed), next));
      else if (form === 2) body = mutate(JSON.parse(seed), next);
      else body = [mutate(JSON.parse(seed), next), VALUES[i % VALUES.length]];
      for (const record of inspectEnvelope({ input: `gen#${i}`, body })) {
        if (record.ok) {
          outcomes.accepted += 1;
          expect(typeof record.finding.id).toBe('string');
          expect(record.finding.id.trim()).not.toBe('');
        } else {
          outcomes.quarantined += 1;
          expect(record.entry.reason.length).toBeGreaterThan(5);
          expect(record.entry.code).not.toBe('internal-error');
          codes.add(record.entry.code);
        }
      }
    }
    // The generator reaches both outcomes and many reasons: the test would notice a pipeline that accepts
    // or rejects everything.
    expect(outcomes.accepted).toBeGreaterThan(200);
    expect(outcomes.quarantined).toBeGreaterThan(200);
    expect([...codes].sort()).toEqual(expect.arrayContaining(['hostile-key', 'not-an-object', 'not-json', 'schema']));
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(({} as Record<string, unknown>)['constructor']).toBe(Object);
  });
});

describe('a quarantined body is kept as it arrived', () => {
  // An alert whose id has the wrong type: it decodes, then fails its schema.
  const bad = { ...(JSON.parse(seeds[0] as string) as Record<string, unknown>), SystemAlertId: 42 };
  const line = JSON.stringify(bad);
  const bodies: [string, string][] = [
    ['one line', line],
    ['a line ending in a newline', `${line}\n`],
    ['a line ending in CRLF', `${line}\r\n`],
    ['pretty-printed', JSON.stringify(bad, null, 2)],
    ['with a byte order mark', `\uFEFF${line}`],
    ['with numbers JSON.parse would change', line.replace('{', '{"Big":12345678901234567890,"Float":1.0,')],
  ];

  it.each(bodies)('%s, as text and as a Function event\'s bytes: the entry holds the text exactly', (_how, text) => {
    const [event] = envelopesFromBatch([Buffer.from(text)], { partitionContext: { partitionId: '0' }, sequenceNumberArray: [7] });
    for (const envelope of [{ input: 'eh:0/7', body: text }, event]) {
      if (envelope === undefined) throw new Error('no envelope');
      const [record] = inspectEnvelope(envelope);
      if (record?.ok !== false) throw new Error('expected a quarantined record');
      expect(record.entry.code).toBe('schema');
      expect(record.entry.raw).toBe(text);
    }
  });

  it('as a parsed body: the entry holds the value', () => {
    const [record] = inspectEnvelope({ input: 'eh:0/7', body: bad });
    if (record?.ok !== false) throw new Error('expected a quarantined record');
    expect(record.entry.raw).toEqual(bad);
  });
});
