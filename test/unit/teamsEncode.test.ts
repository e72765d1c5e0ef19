import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Finding, Severity } from '../../src/model/finding.js';
import { inspectEnvelope } from '../../src/pipeline/run.js';
import { previewFileName, previewFileNames } from '../../src/sinks/files.js';
import {
  ADAPTIVE_CARD_CONTENT_TYPE,
  encodeMessageCard,
  encodeTeamsMessage,
  escapeMarkdown,
  TEAMS_MAX_MESSAGE_BYTES,
  TRUNCATION_NOTICE,
  validateTeamsCard,
  type AdaptiveCard,
  type CardElement,
  type Fact,
  type MessageCard,
  type TeamsMessage,
} from '../../src/sinks/teams/encode.js';
import { makeAlert, makeRecommendation, makeSecureScore, makeVulnerability, without } from '../support/findings.js';

// ---------------------------------------------------------------------------------------------------------
// Reading cards the way a person (or a CommonMark renderer) would.

function cardOf(message: TeamsMessage): AdaptiveCard {
  const attachment = message.attachments[0];
  return attachment.content;
}

function elements(items: readonly CardElement[]): CardElement[] {
  return items.flatMap((item) => (item.type === 'Container' ? [item, ...elements(item.items)] : [item]));
}

function textBlocks(message: TeamsMessage): string[] {
  return elements(cardOf(message).body).flatMap((element) => (element.type === 'TextBlock' ? [element.text] : []));
}

function facts(message: TeamsMessage): Fact[] {
  return elements(cardOf(message).body).flatMap((element) => (element.type === 'FactSet' ? [...element.facts] : []));
}

function fact(message: TeamsMessage, title: string): string | undefined {
  return facts(message).find((item) => item.title === title)?.value;
}

/** What a CommonMark renderer displays for escaped text: a backslash before ASCII punctuation disappears. */
function displayed(markdown: string): string {
  return markdown.replace(/\\([!-/:-@[-`{-~])/g, '$1');
}

/**
 * Characters a renderer would read as markup, outside backslash escapes: inline ones anywhere, list and
 * heading markers at a line start.
 */
function unescapedMarkup(markdown: string): string[] {
  const found: string[] = [];
  const lines = markdown.split('\n');
  for (const line of lines) {
    if (/^[ \t]*([-+=]|\d+[.)])/.test(line)) found.push(`line start: ${line.slice(0, 10)}`);
    for (let i = 0; i < line.length; i += 1) {
      const char = line[i] ?? '';
      if (char === '\\') {
        i += 1;
        continue;
      }
      if ('`*_[]()#<>&~{}'.includes(char)) found.push(char);
    }
  }
  return found;
}

function bytesOf(message: unknown): number {
  return Buffer.byteLength(JSON.stringify(message), 'utf8');
}

/** Every `url`/`uri` value anywhere in a message. */
function urlsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(urlsIn);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, inner]) => ((key === 'url' || key === 'uri') && typeof inner === 'string' ? [inner] : urlsIn(inner)));
}

const LINK = 'https://portal.azure.com/#blade/Microsoft_Azure_Security_AzureDefenderForData/AlertBlade/alertId/2517538088322968242_b6c1a2f0';

// ---------------------------------------------------------------------------------------------------------

describe('encodeTeamsMessage: the Workflows envelope', () => {
  it('is one Adaptive Card 1.4 attachment in a message', () => {
    const message = encodeTeamsMessage(makeAlert());
    expect(message.type).toBe('message');
    expect(message.attachments).toHaveLength(1);
    expect(message.attachments[0]).toMatchObject({ contentType: ADAPTIVE_CARD_CONTENT_TYPE, contentUrl: null });
    expect(cardOf(message)).toMatchObject({ type: 'AdaptiveCard', $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', version: '1.4' });
    expect(validateTeamsCard(message)).toEqual([]);
  });

  it('is pure: the same finding gives the same JSON, and a frozen finding is not touched', () => {
    const finding = Object.freeze(makeAlert({ tactics: Object.freeze(['Persistence']), remediation: Object.freeze(['Remove the binding.']), link: LINK }));
    expect(JSON.stringify(encodeTeamsMessage(finding))).toBe(JSON.stringify(encodeTeamsMessage(finding)));
    expect(JSON.stringify(encodeMessageCard(finding))).toBe(JSON.stringify(encodeMessageCard(finding)));
  });
});

describe('encodeTeamsMessage: what the card shows, per kind', () => {
  it('alert: severity label with kind, large bold title, resource, cluster, namespace, alert type, tactics, status, UTC time, Open in Defender', () => {
    const finding = makeAlert({ severity: 'High', namespace: 'kube-system', link: LINK, time: '2025-08-21T10:00:00.123Z' });
    const message = encodeTeamsMessage(finding);
    const header = cardOf(message).body[0];
    expect(header).toMatchObject({ type: 'Container', style: 'attention' });
    const [label, title] = header?.type === 'Container' ? header.items : [];
    expect(label).toMatchObject({ type: 'TextBlock', text: 'HIGH · Security alert', color: 'attention', weight: 'bolder' });
    expect(title).toMatchObject({ type: 'TextBlock', text: 'Role binding to the cluster-admin role detected', size: 'large', weight: 'bolder', wrap: true });
    expect(displayed((title as { text: string }).text)).toBe(finding.title);
    expect(fact(message, 'Resource')).toBe('aks-prod-weu in rg-prod-aks');
    expect(fact(message, 'Subscription')).toBe(finding.subscriptionId);
    expect(fact(message, 'Cluster')).toBe('aks-prod-weu');
    expect(fact(message, 'Namespace')).toBe('kube-system');
    expect(displayed(fact(message, 'Alert type') ?? '')).toBe('K8S_ClusterAdminBinding');
    expect(fact(message, 'MITRE tactics')).toBe('Persistence, PrivilegeEscalation');
    expect(fact(message, 'Status')).toBe('New');
    expect(fact(message, 'Time (UTC)')).toBe('2025-08-21 10:00:00 UTC');
    expect(fact(message, 'CVEs')).toBeUndefined();
    expect(textBlocks(message)).toContain(escapeMarkdown(finding.description));
    expect(textBlocks(message).some((text) => text.startsWith('ID: ') && displayed(text) === `ID: ${finding.id}`)).toBe(true);
    expect(cardOf(message).actions).toEqual([{ type: 'Action.OpenUrl', title: 'Open in Defender', url: LINK }]);
    expect(textBlocks(message)).not.toContain(TRUNCATION_NOTICE);
  });

  it('alert without cluster, namespace or tactics: those facts are left out, not shown empty', () => {
    const message = encodeTeamsMessage(without(makeAlert({ tactics: [] }), 'cluster', 'namespace'));
    const titles = facts(message).map((item) => item.title);
    expect(titles).not.toContain('Cluster');
    expect(titles).not.toContain('Namespace');
    expect(titles).not.toContain('MITRE tactics');
    expect(facts(message).every((item) => item.value !== '')).toBe(true);
  });

  it('finding: CVEs and CVSS, a zoneless time read as UTC', () => {
    const message = encodeTeamsMessage(makeVulnerability({ cves: ['CVE-2024-3094', 'CVE-2024-0001'], cvss: 10 }));
    expect(textBlocks(message)[0]).toBe('HIGH · Vulnerability finding');
    expect(displayed(fact(message, 'CVEs') ?? '')).toBe('CVE-2024-3094, CVE-2024-0001');
    expect(fact(message, 'CVSS')).toBe('10.0');
    expect(fact(message, 'Resource')).toBe('acrprod in rg-prod-acr');
    expect(fact(message, 'Time (UTC)')).toBe('2025-08-21 00:00:00 UTC');
    expect(fact(message, 'Alert type')).toBeUndefined();
  });

  it('recommendation: the first three remediation steps, and how many more there are', () => {
    const steps = ['Open the storage account.', 'Select Networking.', 'Choose Selected networks.', 'Save.', 'Check the apps.'];
    const message = encodeTeamsMessage(makeRecommendation({ remediation: steps, snapshot: true }));
    expect(textBlocks(message)[0]).toBe('LOW · Recommendation · weekly snapshot');
    expect(facts(message).filter((item) => item.title.startsWith('Step ')).map((item) => [item.title, displayed(item.value)])).toEqual([
      ['Step 1', 'Open the storage account.'],
      ['Step 2', 'Select Networking.'],
      ['Step 3', 'Choose Selected networks.'],
    ]);
    expect(textBlocks(message)).toContain('2 more remediation steps in Defender');
    expect(textBlocks(message)).toContain('Remediation');
    expect(textBlocks(message)).not.toContain(TRUNCATION_NOTICE);
  });

  it('regulatory compliance: no severity colour, standard and control from the id, status', () => {
    const id =
      '/subscriptions/00000000-1111-2222-3333-444444444444/providers/Microsoft.Security/regulatoryComplianceStandards/Microsoft-cloud-security-benchmark/regulatoryComplianceControls/LT.2/regulatoryComplianceAssessments/abc';
    const message = encodeTeamsMessage(
      makeSecureScore({ kind: 'regulatoryCompliance', id, resourceId: id, status: 'Failed', title: 'AKS clusters should have Defender profile enabled', action: 'Write', snapshot: false }),
    );
    expect(cardOf(message).body[0]).toMatchObject({ type: 'Container', style: 'default' });
    expect(elements(cardOf(message).body)[1]).toMatchObject({ text: 'Regulatory compliance', color: 'default' });
    expect(displayed(fact(message, 'Standard') ?? '')).toBe('Microsoft-cloud-security-benchmark');
    expect(fact(message, 'Control')).toBe('LT.2');
    expect(fact(message, 'Status')).toBe('Failed');
    expect(fact(message, 'Export')).toBeUndefined();
  });

  it('a Delete export says the resource is gone', () => {
    const message = encodeTeamsMessage(makeRecommendation({ action: 'Delete' }));
    expect(fact(message, 'Export')).toMatch(/^Delete/);
  });

  it.each<[Severity, string]>([
    ['Critical', 'attention'],
    ['High', 'attention'],
    ['Medium', 'warning'],
    ['Low', 'accent'],
    ['Informational', 'good'],
    ['Unknown', 'default'],
  ])('severity %s is coloured %s', (severity, color) => {
    const message = encodeTeamsMessage(makeAlert({ severity }));
    const label = elements(cardOf(message).body)[1];
    expect(label).toMatchObject({ type: 'TextBlock', color });
    expect(cardOf(message).body[0]).toMatchObject({ style: color });
    const text = label?.type === 'TextBlock' ? label.text : '';
    expect(text).toBe(severity === 'Unknown' ? 'Security alert' : `${severity.toUpperCase()} · Security alert`);
  });

  it('every bundled Defender sample gives a valid card in both formats', () => {
    const fixtures = path.resolve(import.meta.dirname, '../fixtures/defender');
    const files = readdirSync(fixtures).filter((file) => file.endsWith('.json'));
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      for (const record of inspectEnvelope({ input: file, body: readFileSync(path.join(fixtures, file), 'utf8') })) {
        if (!record.ok) continue;
        expect(validateTeamsCard(encodeTeamsMessage(record.finding)), file).toEqual([]);
        expect(validateTeamsCard(encodeMessageCard(record.finding)), file).toEqual([]);
      }
    }
  });
});

describe('record text is shown as text, never as markup', () => {
  const hostile = makeAlert({
    title: '[click](https://evil.example/steal) **x** <b>bold</b> &amp; `code` ~~gone~~ {{DATE(2017-02-14T06:08:39Z, SHORT)}}',
    description: '# Heading\n- item\n+ item\n1. first\n> quoted\n==\n\\[escaped already\\]\n![img](https://evil.example/p.png)',
    cluster: '_italic_',
    namespace: 'ns)(',
    alertType: 'K8S_*wild*',
    tactics: ['[Persistence](https://evil.example)', 'Impact'],
    status: '<script>alert(1)</script>',
    remediation: ['Run `kubectl delete` [here](https://evil.example)', '- dash step'],
    link: LINK,
  });

  it('escapes every Markdown-significant character in every record-derived string, and displays it as written', () => {
    const message = encodeTeamsMessage(hostile);
    for (const text of [...textBlocks(message), ...facts(message).map((item) => item.value)]) {
      expect(unescapedMarkup(text), text).toEqual([]);
    }
    expect(textBlocks(message).map(displayed)).toContain(hostile.title);
    expect(textBlocks(message).map(displayed)).toContain(hostile.description);
    expect(displayed(fact(message, 'Cluster') ?? '')).toBe('_italic_');
    expect(displayed(fact(message, 'Status') ?? '')).toBe('<script>alert(1)</script>');
    expect(displayed(fact(message, 'MITRE tactics') ?? '')).toBe('[Persistence](https://evil.example), Impact');
    expect(displayed(fact(message, 'Step 1') ?? '')).toBe(hostile.remediation[0]);
    expect(displayed(fact(message, 'Step 2') ?? '')).toBe(hostile.remediation[1]);
  });

  it('puts no record text into a URL: the only URL is the validated portal link', () => {
    expect(urlsIn(encodeTeamsMessage(hostile))).toEqual([LINK]);
    expect(urlsIn(encodeMessageCard(hostile))).toEqual([LINK]);
  });

  it('escapeMarkdown: a round trip through a CommonMark-style reading gives the text back', () => {
    const samples = ['a*b', '\\', '1. one\n2) two', '  - indented', '+ plus', 'a - b', 'x = y', '#tag', 'a&b', '<>', 'C:\\path\\file'];
    for (const sample of samples) {
      expect(displayed(escapeMarkdown(sample))).toBe(sample);
      expect(unescapedMarkup(escapeMarkdown(sample))).toEqual([]);
    }
    expect(escapeMarkdown('plain text, CVE-2024-3094 at 10:00')).toBe('plain text, CVE-2024-3094 at 10:00');
  });

  it('removes control characters and bidirectional overrides', () => {
    const message = encodeTeamsMessage(makeAlert({ title: 'ok\u0007 \u202Etxt.exe\u202C done' }));
    expect(displayed(textBlocks(message)[1] ?? '')).toBe('ok txt.exe done');
  });
});

describe('the Open in Defender action', () => {
  it.each([
    ['http://portal.azure.com/#blade/x'],
    ['javascript:alert(1)'],
    ['portal.azure.com/#blade/x'],
    ['https://user:secret@portal.azure.com/'],
    ['https://portal.azure.com/a b'],
    [`https://portal.azure.com/${'x'.repeat(3000)}`],
  ])('is left out for %s', (link) => {
    const finding = makeAlert({ link });
    expect(cardOf(encodeTeamsMessage(finding)).actions ?? []).toEqual([]);
    expect(encodeMessageCard(finding).potentialAction ?? []).toEqual([]);
    expect(urlsIn(encodeTeamsMessage(finding))).toEqual([]);
  });

  it('is left out when there is no link', () => {
    expect(cardOf(encodeTeamsMessage(without(makeAlert({ link: LINK }), 'link'))).actions).toBeUndefined();
  });
});

describe('size: the message stays under 28 KB however large the record', () => {
  const huge = (n: number, unit: string): string => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
  // The worst case: a backslash costs 4 bytes of JSON per character (escaped for Markdown, then for JSON).
  const worst = (n: number): string => huge(n, '\\');
  const giant: Finding = makeVulnerability({
    title: worst(200_000),
    description: worst(2_000_000),
    resourceId: `/subscriptions/s/resourceGroups/rg/providers/P/t/${worst(100_000)}`,
    subscriptionId: worst(50_000),
    resourceGroup: worst(50_000),
    cluster: worst(50_000),
    namespace: huge(50_000, '😀漢'),
    alertType: worst(50_000),
    status: worst(50_000),
    time: worst(50_000),
    tactics: Array.from({ length: 5_000 }, (_, i) => `${worst(300)}${i}`),
    cves: Array.from({ length: 20_000 }, (_, i) => `CVE-2024-${String(i).padStart(5, '0')}`),
    remediation: Array.from({ length: 1_000 }, () => worst(5_000)),
    id: worst(100_000),
    link: LINK,
    raw: { blob: huge(2_000_000, 'r') },
  });

  it('an ordinary but long 2 MB record (text, links, emoji) fits at the first level, cut and marked', () => {
    const message = encodeTeamsMessage(makeAlert({ description: huge(2_000_000, 'Lorem ipsum [x](y) 😀 '), link: LINK }));
    expect(bytesOf(message)).toBeLessThanOrEqual(TEAMS_MAX_MESSAGE_BYTES);
    expect(textBlocks(message)).toContain(TRUNCATION_NOTICE);
    expect(textBlocks(message).find((text) => text.startsWith('Lorem'))?.length).toBeGreaterThan(2_000);
  });

  it('adaptive: a 2 MB record gives a valid message under 28 KB that says it was truncated', () => {
    const message = encodeTeamsMessage(giant);
    expect(bytesOf(message)).toBeLessThanOrEqual(TEAMS_MAX_MESSAGE_BYTES);
    expect(bytesOf(message)).toBeLessThan(28 * 1024);
    expect(validateTeamsCard(message)).toEqual([]);
    expect(textBlocks(message)).toContain(TRUNCATION_NOTICE);
    expect(elements(cardOf(message).body)[2]).toMatchObject({ type: 'TextBlock', size: 'large' });
    expect(textBlocks(message)[1]).toMatch(/…$/);
    expect(fact(message, 'CVEs')).toMatch(/\(\+\d+ more\)$/);
    expect(cardOf(message).actions).toEqual([{ type: 'Action.OpenUrl', title: 'Open in Defender', url: LINK }]);
  });

  it('messagecard: the same record stays under 28 KB too, and says so', () => {
    const card = encodeMessageCard(giant);
    expect(bytesOf(card)).toBeLessThanOrEqual(TEAMS_MAX_MESSAGE_BYTES);
    expect(validateTeamsCard(card)).toEqual([]);
    expect(card.sections.some((section) => section.text?.includes(TRUNCATION_NOTICE))).toBe(true);
  });

  it('cuts progressively: a long description is shortened, not dropped, when the rest is small', () => {
    const description = huge(5_000, 'word ');
    const message = encodeTeamsMessage(makeAlert({ description }));
    const shown = textBlocks(message).find((text) => text.startsWith('word'));
    expect(shown).toBeDefined();
    expect(shown?.length).toBeLessThan(description.length);
    expect(shown?.length).toBeGreaterThan(1_000);
    expect(shown).toMatch(/…$/);
    expect(textBlocks(message)).toContain(TRUNCATION_NOTICE);
  });

  it('cuts further for a smaller budget', () => {
    const roomy = encodeTeamsMessage(giant);
    const tight = encodeTeamsMessage(giant, { maxBytes: 12_000 });
    expect(bytesOf(tight)).toBeLessThanOrEqual(12_000);
    expect(bytesOf(tight)).toBeLessThan(bytesOf(roomy));
    expect(validateTeamsCard(tight, 12_000)).toEqual([]);
  });

  it('does not split a surrogate pair when cutting', () => {
    const message = encodeTeamsMessage(makeAlert({ title: '😀'.repeat(1_000) }));
    const title = textBlocks(message)[1] ?? '';
    expect(title).toMatch(/^(😀)+…$/u);
  });
});

describe('encodeMessageCard: the legacy connector format', () => {
  it('has the MessageCard fields, a theme colour by severity, facts and an OpenUri action', () => {
    const finding = makeAlert({ severity: 'High', link: LINK, remediation: ['Remove the binding.'] });
    const card: MessageCard = encodeMessageCard(finding);
    expect(card).toMatchObject({ '@type': 'MessageCard', '@context': 'https://schema.org/extensions', themeColor: 'D13438' });
    expect(card.summary).toBe('HIGH · Security alert: Role binding to the cluster-admin role detected');
    expect(displayed(card.title)).toBe(finding.title);
    expect(card.sections[0]?.activityTitle).toBe('HIGH · Security alert');
    expect(card.sections[0]?.facts).toContainEqual({ name: 'Cluster', value: 'aks-prod-weu' });
    expect(card.sections.some((section) => section.facts?.some((item) => item.name === 'Step 1' && item.value === 'Remove the binding.'))).toBe(true);
    expect(card.potentialAction).toEqual([{ '@type': 'OpenUri', name: 'Open in Defender', targets: [{ os: 'default', uri: LINK }] }]);
    expect(validateTeamsCard(card)).toEqual([]);
  });

  it.each<[Severity, string]>([
    ['Critical', 'A80000'],
    ['High', 'D13438'],
    ['Medium', 'FF8C00'],
    ['Low', '0078D4'],
    ['Informational', '107C10'],
    ['Unknown', '8A8886'],
  ])('theme colour for %s is %s', (severity, color) => {
    expect(encodeMessageCard(makeAlert({ severity })).themeColor).toBe(color);
  });

  it('escapes record text in the title, facts and text', () => {
    const card = encodeMessageCard(makeAlert({ title: '[click](https://evil.example)', description: '**x**', cluster: '_c_' }));
    expect(card.title).toBe('\\[click\\]\\(https://evil.example\\)');
    expect(card.sections.some((section) => section.text === '\\*\\*x\\*\\*')).toBe(true);
    expect(card.sections[0]?.facts).toContainEqual({ name: 'Cluster', value: '\\_c\\_' });
  });
});

describe('validateTeamsCard refuses what must not be sent', () => {
  const good = (): Record<string, unknown> => JSON.parse(JSON.stringify(encodeTeamsMessage(makeAlert({ link: LINK })))) as Record<string, unknown>;
  const content = (message: Record<string, unknown>): Record<string, unknown> =>
    (message['attachments'] as Record<string, unknown>[])[0]?.['content'] as Record<string, unknown>;

  it('accepts the encoder output for every kind and format', () => {
    for (const finding of [makeAlert({ link: LINK }), makeVulnerability(), makeRecommendation({ remediation: ['a', 'b'] }), makeSecureScore()]) {
      expect(validateTeamsCard(encodeTeamsMessage(finding))).toEqual([]);
      expect(validateTeamsCard(encodeMessageCard(finding))).toEqual([]);
    }
  });

  it.each<[string, (message: Record<string, unknown>) => unknown, RegExp]>([
    ['a version above 1.4', (m) => void (content(m)['version'] = '1.5'), /version/],
    ['a missing version', (m) => void delete content(m)['version'], /version/],
    ['an element type it does not produce', (m) => void (content(m)['body'] as unknown[]).push({ type: 'Media', sources: [] }), /body\[\d+\]\.type/],
    ['an empty body', (m) => void (content(m)['body'] = []), /body/],
    ['a TextBlock without text', (m) => void (content(m)['body'] as unknown[]).push({ type: 'TextBlock', text: '' }), /text/],
    ['a fact without a value', (m) => void (content(m)['body'] as unknown[]).push({ type: 'FactSet', facts: [{ title: 't' }] }), /facts\[0\]/],
    ['an unknown colour', (m) => void (content(m)['body'] as unknown[]).push({ type: 'TextBlock', text: 'x', color: 'red' }), /color/],
    ['an http action URL', (m) => void (content(m)['actions'] = [{ type: 'Action.OpenUrl', title: 'Open', url: 'http://portal.azure.com/' }]), /actions\[0\]\.url/],
    ['a javascript: action URL', (m) => void (content(m)['actions'] = [{ type: 'Action.OpenUrl', title: 'Open', url: 'javascript:alert(1)' }]), /url/],
    ['another action type', (m) => void (content(m)['actions'] = [{ type: 'Action.Submit', title: 'Go' }]), /actions\[0\]\.type/],
    ['two attachments', (m) => void (m['attachments'] as unknown[]).push((m['attachments'] as unknown[])[0]), /attachments/],
    ['another content type', (m) => void ((m['attachments'] as Record<string, unknown>[])[0]!['contentType'] = 'application/json'), /contentType/],
    ['an envelope that is not a message', (m) => void (m['type'] = 'card'), /^type/],
    ['a card that is not an AdaptiveCard', (m) => void (content(m)['type'] = 'HeroCard'), /content\.type/],
    ['more than 28 KB', (m) => void (content(m)['body'] as unknown[]).push({ type: 'TextBlock', text: 'x'.repeat(30_000) }), /bytes, over/],
  ])('refuses %s', (_name, spoil, problem) => {
    const message = good();
    spoil(message);
    const problems = validateTeamsCard(message);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join('\n')).toMatch(problem);
  });

  it('refuses what is not a message at all', () => {
    expect(validateTeamsCard(null)).not.toEqual([]);
    expect(validateTeamsCard('text')).not.toEqual([]);
    expect(validateTeamsCard([])).not.toEqual([]);
  });

  it('refuses a MessageCard without summary or text, with a bad colour, or a non-https OpenUri', () => {
    const card = (): Record<string, unknown> => JSON.parse(JSON.stringify(encodeMessageCard(makeAlert({ link: LINK })))) as Record<string, unknown>;
    const noSummary = card();
    delete noSummary['summary'];
    expect(validateTeamsCard(noSummary).join()).toMatch(/summary/);
    const badColour = card();
    badColour['themeColor'] = 'red';
    expect(validateTeamsCard(badColour).join()).toMatch(/themeColor/);
    const badUri = card();
    badUri['potentialAction'] = [{ '@type': 'OpenUri', name: 'Open', targets: [{ os: 'default', uri: 'javascript:alert(1)' }] }];
    expect(validateTeamsCard(badUri).join()).toMatch(/targets/);
  });

  it('quotes no record text in its problems', () => {
    const message = good();
    (content(message)['body'] as unknown[]).push({ type: 'SecretType-abc123', text: 'record text 42' });
    const problems = validateTeamsCard(message).join('\n');
    expect(problems).toMatch(/type/);
    expect(problems).not.toContain('SecretType-abc123');
    expect(problems).not.toContain('record text 42');
  });
});

describe('preview file names', () => {
  it('are safe file names that keep the readable tail of the id and differ for different ids', () => {
    const a = previewFileName('/subscriptions/s/resourceGroups/rg/providers/Microsoft.Security/assessments/abc/subAssessments/CVE-2024-3094');
    const b = previewFileName('/subscriptions/s/resourceGroups/rg2/providers/Microsoft.Security/assessments/abc/subAssessments/CVE-2024-3094');
    expect(a).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]*$/);
    expect(a).toMatch(/subAssessments_CVE-2024-3094-[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
    expect(previewFileName('../../etc/passwd')).not.toMatch(/[/\\]|^\./);
    expect(previewFileName('')).toMatch(/^record-[0-9a-f]{12}$/);
  });

  it('never repeat within one render', () => {
    const names = previewFileNames('oncall', [{ finding: { id: 'x' } }, { finding: { id: 'x' } }, { finding: { id: 'y' } }], 'json');
    expect(new Set(names).size).toBe(3);
    expect(names.every((name) => name.startsWith('oncall/') && name.endsWith('.json'))).toBe(true);
  });
});
