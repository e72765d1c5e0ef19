/**
 * The case fold done on a one-line body's text (src/pipeline/foldText.ts), and decode's use of it: a record
 * decoded from its folded text must be exactly what the walk over the parsed record gives, or the text must
 * be left to the walk.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeBody, type Decoded } from '../../src/pipeline/decode.js';
import { foldJsonText } from '../../src/pipeline/foldText.js';
import { generateRecords } from '../support/generateRecords.js';

const fixtures = path.resolve(import.meta.dirname, '../fixtures/defender');
const compactFixtures = readdirSync(fixtures)
  .filter((name) => name.endsWith('.json'))
  .map((name) => JSON.stringify(JSON.parse(readFileSync(path.join(fixtures, name), 'utf8'))));

describe('foldJsonText', () => {
  it('lower-cases the first letter of every key, at every depth, and nothing else', () => {
    const text = '{"SystemAlertId":"Abc","Entities":[{"$id":"1","Type":"K8s-cluster","Name":"Aks"},"Text"],"ExtendedProperties":{"Killed Process":"X","resourceType":"Y"},"N":{"M":[{"O":1}]}}';
    expect(foldJsonText(text, 64)).toBe(
      '{"systemAlertId":"Abc","entities":[{"$id":"1","type":"K8s-cluster","name":"Aks"},"Text"],"extendedProperties":{"killed Process":"X","resourceType":"Y"},"n":{"m":[{"o":1}]}}',
    );
  });

  it('answers the text itself when no key starts with a capital', () => {
    const text = '{"id":"/subscriptions/S","properties":{"status":{"code":"Unhealthy"}},"tags":["A",{"b":"C"}]}';
    expect(foldJsonText(text, 64)).toBe(text);
  });

  it('leaves strings that look like keys alone: escaped quotes, colons and braces inside values', () => {
    const text = '{"A":"{\\"B\\":1}","C":"x\\\\","D":"\\\\\\"E\\":","F":[":{\\"G"]}';
    const folded = foldJsonText(text, 64);
    expect(folded).toBe('{"a":"{\\"B\\":1}","c":"x\\\\","d":"\\\\\\"E\\":","f":[":{\\"G"]}');
    expect(JSON.parse(folded ?? '')).toEqual({ a: '{"B":1}', c: 'x\\', d: '\\"E":', f: [':{"G'] });
  });

  it.each([
    ['a key with an escape (it may fold once parsed)', '{"\\u0041lertType":"x"}'],
    ['an escape anywhere in a key', '{"Ab\\"c":1}'],
    ['a $type key', '{"A":{"$type":"System.String[]","$values":["x"]}}'],
    ['a $values key alone', '{"A":{"$values":["x"]}}'],
    ['__proto__', '{"A":{"__proto__":{"polluted":true}}}'],
    ['constructor', '{"constructor":1}'],
    ['prototype', '{"B":[{"prototype":1}]}'],
    ['two keys folding alike, capital first', '{"Severity":"High","severity":null}'],
    ['two keys folding alike, capital last', '{"x":{"severity":null,"Severity":"High"}}'],
    ['a string that does not end', '{"A":"abc'],
    ['more closing brackets than opening ones', '{"A":1}}'],
  ])('leaves the walk to decide on %s', (_what, text) => {
    expect(foldJsonText(text, 64)).toBeUndefined();
  });

  it('folds objects with both capital and small keys when none fold alike', () => {
    expect(foldJsonText('{"Severity":"High","severityRank":3,"S":1,"s2":2}', 64)).toBe('{"severity":"High","severityRank":3,"s":1,"s2":2}');
  });

  it('leaves nesting within two levels of the limit to the walk', () => {
    const nested = (levels: number): string => `${'{"A":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`;
    expect(foldJsonText(nested(8), 10)).toBeDefined();
    expect(foldJsonText(nested(9), 10)).toBeUndefined();
    expect(foldJsonText(`{"A":${'['.repeat(9)}${']'.repeat(9)}}`, 10)).toBeUndefined();
  });
});

describe('decode of a one-line body: the folded text against the walk', () => {
  /** The same body decoded from its text (the folded-text path) and as the parsed value (the walk). */
  function bothWays(text: string): [fromText: Decoded[], fromValue: Decoded[]] {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    return [decodeBody({ input: 'x', body: text }), value === undefined ? [] : decodeBody({ input: 'x', body: value })];
  }
  const comparable = (decoded: Decoded[]): unknown[] => decoded.map((d) => (d.ok ? { view: d.view, record: d.record } : { code: d.code, reason: d.reason }));

  const generated = generateRecords({ count: 3000, seed: 'fold-text', invalidShare: 0.05, maxTooLarge: 1 }).map((record) => record.body);
  const hostile = compactFixtures.flatMap((text) => [
    text.replace('{"', '{"$type":"x","'),
    text.replace('{"', '{"__proto__":{"a":1},"'),
    text.replace(/^\{"([A-Z])/, (_match, letter: string) => `{"${letter.toLowerCase()}Twin":1,"${letter}`),
    text.replace(/^\{"([A-Za-z])([^"]*)"/, (_match, letter: string, rest: string) => `{"${letter === letter.toUpperCase() ? letter.toLowerCase() : letter.toUpperCase()}${rest}":null,"${letter}${rest}"`),
    `${text.slice(0, -1)},"Records":[1]}`,
    `{"Records":[${text}]}`,
  ]);

  it('gives the same view, record, rejection code and reason for fixtures, generated and hostile records', () => {
    let compared = 0;
    for (const text of [...compactFixtures, ...generated, ...hostile]) {
      const [fromText, fromValue] = bothWays(text);
      if (fromValue.length === 0) continue; // not JSON: the text path alone can tell why
      expect(comparable(fromText), text.slice(0, 120)).toEqual(comparable(fromValue));
      compared += 1;
    }
    expect(compared).toBeGreaterThan(3000);
  });

  it('parses a PascalCase record once: the record as received is parsed from its text only when read', () => {
    const text = compactFixtures.find((fixture) => fixture.startsWith('{"V') || fixture.startsWith('{"S'));
    if (text === undefined) throw new Error('no PascalCase fixture');
    const [decoded] = decodeBody({ input: 'eh:0/1', body: text });
    if (!decoded?.ok) throw new Error('the fixture no longer decodes');
    expect(Object.keys(decoded.view).every((key) => !/^[A-Z]/.test(key))).toBe(true);
    expect(decoded.text).toBe(text);
    expect(decoded.record).toEqual(JSON.parse(text));
    expect(decoded.record).toBe(decoded.record);
  });

  it('keeps a camelCase record as its own view, as the walk does', () => {
    const text = compactFixtures.find((fixture) => fixture.startsWith('{"id"') || fixture.startsWith('{"type"'));
    if (text === undefined) throw new Error('no camelCase fixture');
    const [decoded] = decodeBody({ input: 'eh:0/1', body: text });
    if (!decoded?.ok) throw new Error('the fixture no longer decodes');
    expect(decoded.record).toBe(decoded.view);
  });
});
