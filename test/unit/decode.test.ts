import { describe, expect, it } from 'vitest';
import { decodeBody, foldKey, type Decoded, type DecodedRecord, type Rejection } from '../../src/pipeline/decode.js';
import { classifyRecord } from '../../src/pipeline/classify.js';

const alert = { SystemAlertId: 'a1', AlertType: 'K8S_X', Severity: 'High' };

function only(decoded: Decoded[]): Decoded {
  expect(decoded).toHaveLength(1);
  return decoded[0] as Decoded;
}
function rejection(decoded: Decoded): Rejection {
  if (decoded.ok) throw new Error(`expected a rejection, got ${JSON.stringify(decoded.view)}`);
  return decoded;
}
function accepted(decoded: Decoded): DecodedRecord {
  if (!decoded.ok) throw new Error(`expected a record, got ${decoded.reason}`);
  return decoded;
}

describe('decode: every body shape the trigger can hand over', () => {
  it('a JSON string, an object, a Buffer and a BOM-prefixed string decode alike', () => {
    const text = JSON.stringify(alert);
    for (const body of [text, alert, Buffer.from(text), `\uFEFF${text}`, new Uint8Array(Buffer.from(text))]) {
      const record = accepted(only(decodeBody({ input: 'x', body })));
      expect(record.record).toEqual(alert);
      expect(record.view).toEqual({ systemAlertId: 'a1', alertType: 'K8S_X', severity: 'High' });
      expect(record.input).toBe('x');
    }
  });

  it('an array body and a {"records": [...]} body give one record each, labelled by index', () => {
    for (const body of [[alert, alert], { records: [alert, alert] }, JSON.stringify({ records: [alert, alert] })]) {
      const decoded = decodeBody({ input: 'f.json', body });
      expect(decoded.map((d) => d.input)).toEqual(['f.json#0', 'f.json#1']);
      expect(decoded.every((d) => d.ok && d.index !== undefined)).toBe(true);
    }
  });

  it('keeps event metadata on every record', () => {
    const metadata = { partitionId: '3', sequenceNumber: 42 };
    const decoded = decodeBody({ input: 'eh:3/42', body: [alert, 7], metadata });
    expect(decoded.map((d) => d.metadata)).toEqual([metadata, metadata]);
  });

  it('quarantines a body that is not JSON, with line and column', () => {
    const r = rejection(only(decodeBody({ input: 'bad', body: '{\n  "a": 1,\n  b: 2\n}' })));
    expect(r.code).toBe('not-json');
    expect(r.reason).toMatch(/^body is not JSON: .* at line 3 column 3$/);
    expect(r.raw).toBe('{\n  "a": 1,\n  b: 2\n}');
  });

  it('a parse error never quotes the body', () => {
    const r = rejection(only(decodeBody({ input: 'x', body: 'xSECRETTOKEN-and-more' })));
    expect(r.reason).toBe("body is not JSON: Unexpected token 'x'");
    const after = rejection(only(decodeBody({ input: 'x', body: '{"a":1}\n x' })));
    expect(after.reason).toBe('body is not JSON: Unexpected non-whitespace character at line 2 column 2');
  });

  it.each([
    [42, 'body is a JSON number, not an object'],
    ['"text"', 'body is a JSON string, not an object'],
    ['true', 'body is a JSON boolean, not an object'],
    [null, 'body is null, not an object'],
    ['null', 'body is null, not an object'],
    ['', 'body is empty'],
    ['   \n', 'body is empty'],
    ['[]', 'body holds no records (empty array)'],
    ['{"records": {"a": 1}}', '"records" is an object, expected an array'],
  ])('quarantines %j: %s', (body, reason) => {
    const r = rejection(only(decodeBody({ input: 'x', body })));
    expect(r.reason).toBe(reason);
  });

  it('a non-object inside an array costs only that record', () => {
    const decoded = decodeBody({ input: 'f', body: [alert, 'oops', [1], alert] });
    expect(decoded.map((d) => d.ok)).toEqual([true, false, false, true]);
    expect(rejection(decoded[1] as Decoded).reason).toBe('record 1 is a string, not an object');
    expect(rejection(decoded[2] as Decoded).reason).toBe('record 2 is an array, not an object');
  });

  it.each(['__proto__', 'constructor', 'prototype'])('quarantines a record with a "%s" key anywhere, and pollutes nothing', (key) => {
    const text = `{"SystemAlertId":"a","AlertType":"t","Entities":[{"x":{"${key}":{"polluted":true}}}]}`;
    const r = rejection(only(decodeBody({ input: 'evil', body: text })));
    expect(r.code).toBe('hostile-key');
    expect(r.reason).toBe(`forbidden key "${key}" at Entities[0].x.${key}`);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('quarantines absurd nesting without overflowing the stack', () => {
    const depth = 100_000;
    const text = `{"SystemAlertId":"a","AlertType":"t","x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const r = rejection(only(decodeBody({ input: 'deep', body: text })));
    expect(r.code).toBe('too-deep');
    expect(r.reason).toMatch(/^nesting deeper than 64 levels at x(\[0\])+$/);
  });

  it('quarantines a record over 1 MB, from text and from an already-parsed object', () => {
    const big = { ...alert, Description: 'x'.repeat(1024 * 1024) };
    const fromText = rejection(only(decodeBody({ input: 'big', body: JSON.stringify(big) })));
    expect(fromText.code).toBe('too-large');
    expect(fromText.reason).toMatch(/^record is 10486\d\d bytes, over the 1048576-byte limit$/);
    const fromObject = rejection(only(decodeBody({ input: 'big', body: [big] })));
    expect(fromObject.code).toBe('too-large');
    expect(fromObject.reason).toMatch(/^record is 10486\d\d bytes, over the 1048576-byte limit$/);
  });

  it('measures size in UTF-8 bytes, not characters', () => {
    // 400,000 three-byte characters: 1.2 MB of UTF-8 in 400,000 UTF-16 units.
    const wide = { ...alert, Description: '€'.repeat(400_000) };
    const r = rejection(only(decodeBody({ input: 'wide', body: [wide] })));
    expect(r.code).toBe('too-large');
    expect(r.reason).toMatch(/^record is 12000\d\d bytes/);
    expect(only(decodeBody({ input: 'ok', body: [{ ...alert, Description: '€'.repeat(300_000) }] })).ok).toBe(true);
  });

  it('refuses deep nesting in a large body before parsing it, and a body over the body limit unparsed', () => {
    const deep = `[${'['.repeat(3_000_000)}${']'.repeat(3_000_000)}]`;
    const r = rejection(only(decodeBody({ input: 'deep', body: deep })));
    expect(r.reason).toBe('nesting deeper than 64 levels at character 64');
    const limits = { maxDepth: 64, maxRecordBytes: 100, maxBodyBytes: 1000 };
    const big = rejection(only(decodeBody({ input: 'big', body: JSON.stringify([alert, { ...alert, Description: 'x'.repeat(2000) }]) }, limits)));
    expect(big.reason).toMatch(/^body is 2\d{3} bytes, over the 1000-byte limit for one body$/);
  });

  it('does not let {"$values": ...} hide other keys from the checks', () => {
    const text = '{"SystemAlertId":"a","AlertType":"t","Entities":{"$values":[],"__proto__":{"polluted":true}}}';
    const r = rejection(only(decodeBody({ input: 'values', body: text })));
    expect(r.code).toBe('hostile-key');
    expect(r.reason).toBe('forbidden key "__proto__" at Entities.__proto__');
    const sized = { ...alert, Entities: { $values: [], padding: 'x'.repeat(1_100_000) } };
    expect(rejection(only(decodeBody({ input: 'sized', body: [sized] }))).code).toBe('too-large');
    const plain = accepted(only(decodeBody({ input: 'plain', body: { ...alert, Entities: { $values: [1, 2], extra: 'kept' } } })));
    expect(plain.view['entities']).toEqual({ $values: [1, 2], extra: 'kept' });
  });

  it('honours custom limits', () => {
    const r = rejection(only(decodeBody({ input: 'x', body: { a: { b: { c: 1 } } } }, { maxDepth: 2, maxRecordBytes: 1000, maxBodyBytes: 10_000 })));
    expect(r.code).toBe('too-deep');
  });
});

describe('decode: the case-folded view', () => {
  it('folds the first letter, drops $type, unwraps $values, keeps the original untouched', () => {
    const record = {
      $type: 'X, Y',
      Id: 'i',
      Properties: { $type: 'P', Status: { Code: 'Unhealthy' }, Tags: { $type: 'List', $values: [{ $type: 'T', Name: 'n' }] } },
    };
    const copy = structuredClone(record);
    const view = accepted(only(decodeBody({ input: 'x', body: record }))).view;
    expect(view).toEqual({ id: 'i', properties: { status: { code: 'Unhealthy' }, tags: [{ name: 'n' }] } });
    expect(record).toEqual(copy);
  });

  it('foldKey lower-cases only a leading capital', () => {
    expect(foldKey('SystemAlertId')).toBe('systemAlertId');
    expect(foldKey('systemAlertId')).toBe('systemAlertId');
    expect(foldKey('$id')).toBe('$id');
    expect(foldKey('Resource type')).toBe('resource type');
    expect(foldKey('')).toBe('');
  });

  it('when both spellings occur the first with a value wins', () => {
    const view = accepted(only(decodeBody({ input: 'x', body: { Severity: null, severity: 'High' } }))).view;
    expect(view['severity']).toBe('High');
  });
});

describe('classify', () => {
  const kindOf = (record: object): string => {
    const c = classifyRecord(accepted(only(decodeBody({ input: 'x', body: record }))).view);
    return c.ok ? `${c.kind}/${c.shape}` : `unknown: ${c.reason}`;
  };
  it.each([
    [{ SystemAlertId: 'a', AlertType: 't' }, 'alert/eventHub'],
    [{ systemAlertId: 'a', alertType: 't' }, 'alert/eventHub'],
    [{ type: 'Microsoft.Security/Locations/alerts' }, 'alert/rest'],
    [{ type: 'microsoft.security/locations/alerts' }, 'alert/rest'],
    [{ type: 'Microsoft.Security/assessments' }, 'recommendation/arm'],
    [{ Type: 'MICROSOFT.SECURITY/ASSESSMENTS' }, 'recommendation/arm'],
    [{ type: 'microsoft.security/assessments/subassessments' }, 'finding/arm'],
    [{ type: 'Microsoft.Security/secureScores' }, 'secureScore/arm'],
    [{ type: 'Microsoft.Security/secureScores/secureScoreControls' }, 'secureScoreControl/arm'],
    [
      { type: 'Microsoft.Security/regulatoryComplianceStandards/regulatoryComplianceControls/regulatoryComplianceAssessments' },
      'regulatoryCompliance/arm',
    ],
    [{ eventDataId: 'e', operationName: { value: 'Microsoft.Security/locations/alerts/activate/action' } }, 'alert/activityLog'],
  ])('%j is %s', (record, expected) => {
    expect(kindOf(record)).toBe(expected);
  });

  it.each([
    [{ type: 'Microsoft.Compute/virtualMachines' }, 'unknown: unknown record type "Microsoft.Compute/virtualMachines"'],
    [{ type: 42 }, 'unknown: unknown record: "type" is a number, expected a string'],
    [{ SystemAlertId: 'a' }, 'unknown: unknown record: no "type" and no SystemAlertId/AlertType (keys: systemAlertId)'],
    [{ SystemAlertId: 'a', AlertType: 't', type: 'Microsoft.Security/foo' }, 'unknown: unknown record type "Microsoft.Security/foo"'],
    [{ eventDataId: 'e', operationName: { value: 'Microsoft.Compute/virtualMachines/write' } }, expect.stringMatching(/^unknown: unknown record: no "type"/)],
  ])('%j is quarantined: %s', (record, expected) => {
    expect(kindOf(record)).toEqual(expected);
  });
});
