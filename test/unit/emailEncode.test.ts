/**
 * The e-mail about one record: subject, the plain-text and HTML parts, escaping, the portal link, the
 * headers, and the RFC 5322 message they are encoded into.
 */
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import type { EmailMessageSettings } from '../../src/sinks/email/encode.js';
import { composeEmail, emailFileName, encodeEmail, escapeHtml, httpsLink, MAX_SUBJECT_CHARS } from '../../src/sinks/email/encode.js';
import { makeAlert, makeRecommendation, makeSecureScore, makeVulnerability, without } from '../support/findings.js';

const SETTINGS: EmailMessageSettings = {
  name: 'oncall-email',
  from: { name: 'Defender for Cloud', address: 'defender@contoso.example' },
  to: [{ name: '', address: 'soc@contoso.example' }],
  cc: [{ name: 'Platform lead', address: 'lead@contoso.example' }],
  subjectPrefix: '[Defender]',
};
const PORTAL = 'https://portal.azure.com/#blade/Microsoft_Azure_Security_AzureDefenderForData/AlertBlade/alertId/abc';

/** The text between the tags of the HTML part: what a reader sees. */
function visibleText(html: string): string {
  return html
    .replace(/<style[\s\S]*?<\/style>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&middot;/g, '·')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

/** Text with runs of white space made single spaces, for comparing what both parts say. */
function flat(text: string): string {
  return text.replace(/\s+/g, ' ');
}

describe('subject', () => {
  it('is "<prefix> <Severity> <kind>: <title>"', () => {
    expect(encodeEmail(makeAlert(), SETTINGS).subject).toBe('[Defender] Medium alert: Role binding to the cluster-admin role detected');
    expect(encodeEmail(makeVulnerability(), SETTINGS).subject).toBe('[Defender] High finding: CVE-2024-3094');
    expect(encodeEmail(makeSecureScore(), { ...SETTINGS, subjectPrefix: '' }).subject).toBe('Unknown secureScore: ASC score');
    expect(encodeEmail(makeRecommendation(), { ...SETTINGS, subjectPrefix: '[SOC prod]' }).subject).toBe(
      '[SOC prod] Low recommendation: Storage accounts should restrict network access',
    );
  });

  it('is one line: control characters (a header injection attempt) and bidi overrides are removed', () => {
    const subject = encodeEmail(makeAlert({ title: 'Evil\r\nBcc: attacker@evil.example\u0007\u202e txt.exe' }), SETTINGS).subject;
    expect(subject).toBe('[Defender] Medium alert: Evil Bcc: attacker@evil.example txt.exe');
    expect(subject).not.toMatch(/[\u0000-\u001f\u007f\u202e]/);
  });

  it(`is at most ${MAX_SUBJECT_CHARS} characters and never splits a character`, () => {
    const long = encodeEmail(makeAlert({ title: 'A'.repeat(500) }), SETTINGS).subject;
    expect(Array.from(long)).toHaveLength(MAX_SUBJECT_CHARS);
    expect(long.endsWith('…')).toBe(true);
    const emoji = encodeEmail(makeAlert({ title: '🔥'.repeat(300) }), SETTINGS).subject;
    expect(Array.from(emoji).length).toBeLessThanOrEqual(MAX_SUBJECT_CHARS);
    expect(emoji).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/); // no lone high surrogate
  });

  it('names an untitled record as such', () => {
    expect(encodeEmail(makeAlert({ title: ' \n ' }), SETTINGS).subject).toBe('[Defender] Medium alert: (no title)');
  });
});

describe('both parts show the record', () => {
  it('alert: severity, title, kind, status, resource, cluster / namespace, alert type, tactics, UTC time, description, remediation, link', () => {
    const alert = makeAlert({
      namespace: 'kube-system',
      link: PORTAL,
      remediation: ['Review the role binding.', 'Remove it if it is not expected.'],
      time: '2025-08-21T12:00:00+02:00',
    });
    const email = encodeEmail(alert, SETTINGS);
    const expected = [
      'Medium',
      'Role binding to the cluster-admin role detected',
      'Security alert',
      'New',
      alert.resourceId,
      'rg-prod-aks',
      alert.subscriptionId,
      'aks-prod-weu',
      'kube-system',
      'K8S_ClusterAdminBinding',
      'Persistence, PrivilegeEscalation',
      '2025-08-21 10:00:00 UTC',
      'Kubernetes audit log analysis detected a new binding to the cluster-admin role.',
      'Review the role binding.',
      'Remove it if it is not expected.',
      'Open in Defender',
      alert.id,
    ];
    for (const text of expected) {
      expect(flat(email.text)).toContain(text);
      expect(visibleText(email.html)).toContain(text);
    }
    expect(email.text).toMatch(/^Cluster: +aks-prod-weu$/m);
    expect(email.text).toMatch(/^Namespace: +kube-system$/m);
    expect(email.text).toMatch(/^MITRE tactics: +Persistence, PrivilegeEscalation$/m);
    expect(email.text).toMatch(/^Time \(UTC\): +2025-08-21 10:00:00 UTC$/m);
    expect(email.text).toMatch(/^1\. Review the role binding\.$/m);
    expect(email.text).toContain(`Open in Defender: ${PORTAL}`);
    expect(email.html).toContain(`<a href="${PORTAL}"`);
    expect(email.text).not.toMatch(/CVSS|CVEs/);
  });

  it('finding: CVEs and CVSS, a zoneless time read as UTC', () => {
    const email = encodeEmail(makeVulnerability({ cves: ['CVE-2024-3094', 'CVE-2024-0001'] }), SETTINGS);
    for (const part of [flat(email.text), visibleText(email.html)]) {
      expect(part).toContain('Vulnerability finding');
      expect(part).toContain('CVE-2024-3094, CVE-2024-0001');
      expect(part).toContain('10.0');
      expect(part).toContain('2025-08-21 00:00:00 UTC');
      expect(part).toContain('xz-utils backdoor');
    }
    expect(email.text).toMatch(/^CVSS: +10\.0$/m);
    expect(email.text).toMatch(/^CVEs: +CVE-2024-3094, CVE-2024-0001$/m);
    expect(email.text).not.toMatch(/^(Cluster|Namespace|MITRE tactics|Alert type):/m);
  });

  it('finding: a long CVE list is cut, saying how many more there are', () => {
    const cves = Array.from({ length: 45 }, (_, i) => `CVE-2024-${String(1000 + i)}`);
    const email = encodeEmail(makeVulnerability({ cves }), SETTINGS);
    expect(email.text).toContain('CVE-2024-1019 and 25 more');
    expect(email.text).not.toContain('CVE-2024-1020');
  });

  it('recommendation: resource group, snapshot, no empty rows', () => {
    const email = encodeEmail(makeRecommendation({ action: 'Insert' }), SETTINGS);
    expect(email.text).toMatch(/^Kind: +Recommendation$/m);
    expect(email.text).toMatch(/^Status: +Unhealthy$/m);
    expect(email.text).toMatch(/^Resource group: +rg-dev$/m);
    expect(email.text).toMatch(/^Export action: +Insert$/m);
    expect(email.text).toMatch(/^Snapshot: +yes/m);
    expect(email.text).not.toMatch(/^Description$/m); // the record has none
    expect(visibleText(email.html)).not.toContain('Description');
  });

  it('secure score: no status row, severity Unknown', () => {
    const email = encodeEmail(makeSecureScore(), SETTINGS);
    expect(email.text).not.toMatch(/^Status:/m);
    expect(email.text).toMatch(/^Severity: +Unknown$/m);
    expect(email.text).toMatch(/^Kind: +Secure score$/m);
    expect(email.text).not.toMatch(/^Resource group:/m);
  });

  it('shows the first remediation steps and says how many more there are', () => {
    const steps = Array.from({ length: 7 }, (_, i) => `Step number ${i + 1}.`);
    const email = encodeEmail(makeAlert({ remediation: steps }), SETTINGS);
    expect(email.text).toContain('5. Step number 5.');
    expect(email.text).not.toContain('Step number 6.');
    expect(email.text).toContain('...and 2 more in Defender for Cloud');
    expect(email.html.match(/<li /g)).toHaveLength(5);
  });

  it('caps a huge description', () => {
    const email = encodeEmail(makeAlert({ description: 'x'.repeat(100_000) }), SETTINGS);
    expect(email.text.length).toBeLessThan(10_000);
    expect(email.text).toContain('…');
  });
});

describe('record text is text, never markup', () => {
  const hostile = makeAlert({
    title: '<script>alert(1)</script> & "friends"',
    description: 'Look: <img src=x onerror=alert(1)>\n<a href="https://evil.example">click</a>',
    remediation: ['<iframe src="https://evil.example"></iframe>'],
    cluster: '<b>bold</b>',
    tactics: ['<svg onload=alert(1)>'],
    link: PORTAL,
  });
  const email = encodeEmail(hostile, SETTINGS);

  it('escapes every value in the HTML part', () => {
    expect(email.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;friends&quot;');
    expect(email.html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(email.html).toContain('&lt;iframe src=&quot;https://evil.example&quot;&gt;&lt;/iframe&gt;');
    expect(email.html).toContain('&lt;b&gt;bold&lt;/b&gt;');
    expect(email.html).toContain('&lt;svg onload=alert(1)&gt;');
    for (const tag of ['<script', '<img', '<iframe', '<svg', '<b>', 'href="https://evil']) expect(email.html).not.toContain(tag);
    // The only link is the record's own portal link.
    expect(email.html.match(/<a /g)).toHaveLength(1);
    expect(visibleText(email.html)).toContain('<script>alert(1)</script> & "friends"');
  });

  it('keeps it as typed in the plain-text part', () => {
    expect(email.text).toContain('<script>alert(1)</script> & "friends"');
    expect(email.text).toContain('Look: <img src=x onerror=alert(1)>');
  });

  it('escapeHtml escapes the five characters that matter', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });
});

describe('the portal link', () => {
  it('appears only when it is an https:// URL', () => {
    for (const link of ['http://portal.azure.com/#x', 'javascript:alert(1)', 'portal.azure.com/#x', 'https://user:pw@portal.azure.com/', 'data:text/html,<b>x</b>', '']) {
      const email = encodeEmail(makeAlert({ link }), SETTINGS);
      expect(email.text, link).not.toContain('Open in Defender');
      expect(email.html, link).not.toContain('Open in Defender');
      expect(email.html, link).not.toContain('<a ');
    }
    const none = encodeEmail(without(makeAlert({ link: PORTAL }), 'link'), SETTINGS);
    expect(none.html).not.toContain('<a ');
  });

  it('cannot break out of the href attribute', () => {
    const email = encodeEmail(makeAlert({ link: 'https://portal.azure.com/#x" onmouseover="alert(1)' }), SETTINGS);
    expect(email.html).not.toContain('" onmouseover');
    expect(email.html).toMatch(/<a href="https:\/\/portal\.azure\.com\/#x%22%20onmouseover=%22alert\(1\)"/);
  });

  it('httpsLink normalises good links and refuses the rest', () => {
    expect(httpsLink(` ${PORTAL} `)).toBe(PORTAL);
    expect(httpsLink('https://')).toBeUndefined();
    expect(httpsLink('ftp://portal.azure.com/')).toBeUndefined();
    expect(httpsLink(undefined)).toBeUndefined();
  });
});

describe('headers', () => {
  it('carry kind, severity, status, alert type and id for filtering rules, and ask for no auto-replies', () => {
    const email = encodeEmail(makeAlert(), SETTINGS);
    expect(email.headers).toEqual({
      'X-Defender-Kind': 'alert',
      'X-Defender-Severity': 'Medium',
      'X-Defender-Id': '2517538088322968242_b6c1a2f0-7d1e-4b52-9a0b-3f3c7c1d9e01',
      'X-Defender-Status': 'New',
      'X-Defender-Alert-Type': 'K8S_ClusterAdminBinding',
      'Auto-Submitted': 'auto-generated',
      'X-Auto-Response-Suppress': 'All',
    });
  });

  it('hold safe characters only', () => {
    const email = encodeEmail(makeAlert({ id: 'abc def\r\nX-Evil: 1<>"', status: 'In progress\n', alertType: 'K8S.NODE_Miner' }), SETTINGS);
    expect(email.headers['X-Defender-Id']).toBe('abc_def__X-Evil:_1___');
    expect(email.headers['X-Defender-Status']).toBe('In_progress_');
    expect(email.headers['X-Defender-Alert-Type']).toBe('K8S.NODE_Miner');
    for (const value of Object.values(email.headers)) expect(value).toMatch(/^[A-Za-z0-9._:/@+=-]+$/);
    const arm = encodeEmail(makeVulnerability(), SETTINGS).headers['X-Defender-Id'];
    expect(arm).toBe(makeVulnerability().id);
  });

  it('Message-ID is stable per destination, record and status; the thread id per record', () => {
    const first = encodeEmail(makeAlert(), SETTINGS);
    expect(first.messageId).toMatch(/^<[0-9a-f]{40}@contoso\.example>$/);
    expect(encodeEmail(makeAlert(), SETTINGS).messageId).toBe(first.messageId);
    const resolved = encodeEmail(makeAlert({ status: 'Resolved' }), SETTINGS);
    expect(resolved.messageId).not.toBe(first.messageId);
    expect(resolved.threadId).toBe(first.threadId);
    expect(encodeEmail(makeAlert(), { ...SETTINGS, name: 'other-email' }).messageId).not.toBe(first.messageId);
    const odd = encodeEmail(makeAlert(), { ...SETTINGS, from: { name: '', address: 'x@[127.0.0.1]' } });
    expect(odd.messageId).toMatch(/@defender-forwarder\.invalid>$/);
  });
});

describe('the RFC 5322 message', () => {
  const date = new Date('2025-08-21T10:05:00Z');

  it('reads back (mailparser) as exactly what was encoded: addresses, subject, both parts, headers', async () => {
    const email = encodeEmail(makeAlert({ title: 'Ünïcödé <title> 日本語 ' + 'long '.repeat(40), link: PORTAL, remediation: ['a\nb'] }), SETTINGS);
    const composed = composeEmail(email, date);
    const parsed = await simpleParser(composed.raw);
    expect(parsed.subject).toBe(email.subject);
    expect(parsed.text).toBe(email.text);
    expect(parsed.html).toBe(email.html);
    expect(parsed.from?.value).toEqual([{ name: 'Defender for Cloud', address: 'defender@contoso.example' }]);
    expect(parsed.messageId).toBe(email.messageId);
    expect(parsed.inReplyTo).toBe(email.threadId);
    expect(parsed.references).toBe(email.threadId);
    expect(parsed.date?.toISOString()).toBe(date.toISOString());
    expect(parsed.headers.get('x-defender-kind')).toBe('alert');
    expect(parsed.headers.get('auto-submitted')).toBe('auto-generated');
    expect(composed.envelope).toEqual({ from: 'defender@contoso.example', to: ['soc@contoso.example', 'lead@contoso.example'] });
  });

  it('is 7-bit, CRLF, with no line over 998 characters, whatever the record holds', () => {
    const composed = composeEmail(encodeEmail(makeAlert({ title: 'é'.repeat(900), description: `${'y'.repeat(5_000)}\r\n\u0000` }), SETTINGS), date);
    expect(composed.raw).toMatch(/^[\x00-\x7f]*$/);
    expect(composed.raw.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    for (const line of composed.raw.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
  });

  it('emailFileName is a safe, distinct .eml name', () => {
    const name = emailFileName(makeVulnerability(), SETTINGS);
    expect(name).toMatch(/^finding-CVE-2024-3094-[0-9a-f]{10}\.eml$/);
    expect(emailFileName(makeVulnerability({ status: 'Healthy' }), SETTINGS)).not.toBe(name);
    expect(emailFileName(makeAlert({ id: '../../etc/passwd' }), SETTINGS)).toMatch(/^alert-passwd-[0-9a-f]{10}\.eml$/);
    expect(emailFileName(makeAlert({ id: '..' }), SETTINGS)).toMatch(/^alert-_-[0-9a-f]{10}\.eml$/);
  });
});
