/**
 * What one e-mail about one record says, and the RFC 5322 message that carries it. Pure: no I/O, no clock
 * (the caller passes the `Date`), nothing but the finding and the destination's settings.
 *
 * Record text is untrusted (titles and descriptions come from whoever can make Defender raise an alert):
 * every value is stripped of control and bidi characters, capped in length, and HTML-escaped in the HTML
 * part; the only link is the record's own portal link, and only when it is a valid https:// URL.
 */
import { createHash } from 'node:crypto';
import * as base64 from 'nodemailer/lib/base64';
import MailComposer from 'nodemailer/lib/mail-composer';
import type MimeNode from 'nodemailer/lib/mime-node';
import * as qp from 'nodemailer/lib/qp';
import type { Finding, Kind, Severity } from '../../model/finding.js';
import { parseUtc } from '../../model/time.js';
import type { EmailAddress, EmailConfig } from './config.js';

/** Longest subject, in characters (Unicode code points), prefix included. */
export const MAX_SUBJECT_CHARS = 200;
/** Longest description shown; Defender's own stay well below, a hostile record may not. */
export const MAX_DESCRIPTION_CHARS = 4_000;
/** Remediation steps shown; the rest are in the portal. */
export const MAX_REMEDIATION_STEPS = 5;
const MAX_STEP_CHARS = 1_000;
/** CVE ids listed; a base image can carry hundreds. */
export const MAX_LISTED_CVES = 20;
const MAX_FIELD_CHARS = 1_000;
const MAX_HEADER_TOKEN_CHARS = 500;

/** The settings an e-mail is built from. */
export type EmailMessageSettings = Pick<EmailConfig, 'name' | 'from' | 'to' | 'cc' | 'subjectPrefix'>;

/** One e-mail about one record, before MIME encoding. */
export interface EncodedEmail {
  readonly from: EmailAddress;
  readonly to: readonly EmailAddress[];
  readonly cc: readonly EmailAddress[];
  /** `<prefix> <Severity> <kind>: <title>`, one line, at most {@link MAX_SUBJECT_CHARS}. */
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  /** `X-Defender-Kind`, `X-Defender-Severity`, `X-Defender-Id`, `X-Defender-Status`, `Auto-Submitted`... */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * `<...@domain>`, the same for the same (destination, kind, id, status): a message sent twice (a retry after
   * an answer that never came) carries one Message-ID, which mail systems use to drop the second copy.
   */
  readonly messageId: string;
  /** The same for every notification about one record, whatever its status: `In-Reply-To` / `References`, for threading. */
  readonly threadId: string;
}

/** The message as it goes on the wire. */
export interface ComposedEmail {
  /** SMTP envelope: `MAIL FROM` and every `RCPT TO` (to and cc). */
  readonly envelope: { readonly from: string; readonly to: readonly string[] };
  /** The whole RFC 5322 message, CRLF line breaks, 7-bit clean. */
  readonly raw: string;
}

const KIND_LABELS: Readonly<Record<Kind, string>> = {
  alert: 'Security alert',
  recommendation: 'Recommendation',
  finding: 'Vulnerability finding',
  secureScore: 'Secure score',
  secureScoreControl: 'Secure score control',
  regulatoryCompliance: 'Regulatory compliance',
};

/** Severity colours of the HTML part (Fluent palette; Low is dark amber so it reads on white). */
const SEVERITY_COLOURS: Readonly<Record<Severity, string>> = {
  Critical: '#750b1c',
  High: '#d13438',
  Medium: '#ca5010',
  Low: '#986f0b',
  Informational: '#0078d4',
  Unknown: '#605e5c',
};

interface Row {
  readonly label: string;
  readonly value: string;
}

/** Everything the two parts show, cleaned once so that both show the same. */
interface View {
  readonly heading: string;
  readonly severity: Severity;
  readonly kindLabel: string;
  readonly title: string;
  readonly rows: readonly Row[];
  readonly description: string;
  readonly remediation: readonly string[];
  readonly remediationMore: number;
  readonly link: string | undefined;
  readonly id: string;
}

/** Builds the e-mail for one record. */
export function encodeEmail(finding: Finding, settings: EmailMessageSettings): EncodedEmail {
  const view = viewOf(finding);
  const prefix = oneLine(settings.subjectPrefix, MAX_SUBJECT_CHARS);
  const subject = oneLine(`${prefix} ${finding.severity} ${finding.kind}: ${view.title}`, MAX_SUBJECT_CHARS);
  const domain = messageIdDomain(settings.from.address);
  const headers: Record<string, string> = {
    'X-Defender-Kind': finding.kind,
    'X-Defender-Severity': finding.severity,
    'X-Defender-Id': headerToken(finding.id),
  };
  const status = headerToken(finding.status);
  if (status !== '') headers['X-Defender-Status'] = status;
  const alertType = headerToken(finding.alertType ?? '');
  if (alertType !== '') headers['X-Defender-Alert-Type'] = alertType;
  // RFC 3834: machine-made, so auto-replies (out of office) are not sent back; Exchange reads its own header.
  headers['Auto-Submitted'] = 'auto-generated';
  headers['X-Auto-Response-Suppress'] = 'All';
  return {
    from: settings.from,
    to: settings.to,
    cc: settings.cc,
    subject,
    text: textPart(view),
    html: htmlPart(view, subject),
    headers,
    messageId: `<${digest(settings.name, finding.kind, finding.id, finding.status).slice(0, 40)}@${domain}>`,
    threadId: `<thread.${digest(settings.name, finding.kind, finding.id).slice(0, 40)}@${domain}>`,
  };
}

/**
 * Encodes the e-mail as the RFC 5322 message that is sent, with nodemailer's MailComposer. The same bytes go
 * to `--preview`, to dead letters and to the relay, so what is previewed is what is sent.
 */
export function composeEmail(email: EncodedEmail, date: Date): ComposedEmail {
  const root = new MailComposer({
    from: email.from,
    to: [...email.to],
    cc: [...email.cc],
    subject: email.subject,
    text: email.text,
    html: email.html,
    headers: { ...email.headers },
    messageId: email.messageId,
    inReplyTo: email.threadId,
    references: [email.threadId],
    date,
    newline: 'windows',
    // base64 parts: a third cheaper to build than quoted-printable, and safe for any 8-bit record text.
    textEncoding: 'base64',
    disableFileAccess: true,
    disableUrlAccess: true,
  }).compile();
  let raw = serialise(root).replace(/\r?\n/g, '\r\n');
  if (!raw.endsWith('\r\n')) raw += '\r\n';
  const envelope = root.getEnvelope();
  return { envelope: { from: envelope.from === false ? '' : envelope.from, to: envelope.to }, raw };
}

/** A file name for the record's `.eml` preview: kind, the id's last segment, and a digest that keeps names apart. */
export function emailFileName(finding: Finding, settings: Pick<EmailConfig, 'name'>): string {
  const tail = finding.id.split('/').filter((part) => part !== '').pop() ?? 'record';
  const safe = tail.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_').slice(0, 64) || 'record';
  return `${finding.kind}-${safe}-${digest(settings.name, finding.kind, finding.id, finding.status).slice(0, 10)}.eml`;
}

/**
 * MimeNode.build() is asynchronous (it streams), but `render` must not be: this writes the same tree the way
 * MimeNode's own stream does (headers, blank line, the body in its transfer encoding, the parts between
 * boundaries), using nodemailer's own header builder and encoders. A test holds it byte-equal to build().
 */
function serialise(node: MimeNode): string {
  let out = `${node.buildHeaders()}\r\n\r\n`;
  const content = node.content;
  if (content) {
    if (typeof content !== 'string' && !Buffer.isBuffer(content)) throw new Error('email: a MIME part has streamed content');
    const encoding = node.getTransferEncoding();
    if (encoding === 'base64') out += base64.wrap(base64.encode(content), 76);
    else if (encoding === 'quoted-printable') out += qp.wrap(qp.encode(content), 76);
    else out += content.toString();
  }
  if (node.multipart) {
    node.childNodes.forEach((child, index) => {
      out += `${index > 0 ? '\r\n' : ''}--${String(node.boundary)}\r\n${serialise(child)}`;
    });
    out += `\r\n--${String(node.boundary)}--\r\n`;
  }
  return out;
}

function viewOf(finding: Finding): View {
  const title = oneLine(finding.title, MAX_FIELD_CHARS) || '(no title)';
  const rows: Row[] = [];
  const add = (label: string, value: string | undefined): void => {
    const clean = oneLine(value ?? '', MAX_FIELD_CHARS);
    if (clean !== '') rows.push({ label, value: clean });
  };
  add('Severity', finding.severity);
  add('Kind', KIND_LABELS[finding.kind]);
  add('Status', finding.status);
  add('Resource', finding.resourceId);
  add('Resource group', finding.resourceGroup);
  add('Subscription', finding.subscriptionId);
  add('Cluster', finding.cluster);
  add('Namespace', finding.namespace);
  add('Alert type', finding.alertType);
  add('MITRE tactics', finding.tactics.join(', '));
  add('Time (UTC)', formatUtc(finding.time));
  if (finding.cves.length > 0) {
    const listed = finding.cves.slice(0, MAX_LISTED_CVES).join(', ');
    const more = finding.cves.length - MAX_LISTED_CVES;
    add('CVEs', more > 0 ? `${listed} and ${more} more` : listed);
  }
  if (finding.cvss !== undefined && Number.isFinite(finding.cvss)) add('CVSS', finding.cvss.toFixed(1));
  add('Export action', finding.action);
  if (finding.snapshot) add('Snapshot', 'yes (weekly export of the current state)');
  const steps = finding.remediation.map((step) => multiLine(step, MAX_STEP_CHARS)).filter((step) => step !== '');
  return {
    heading: `${finding.severity} ${KIND_LABELS[finding.kind].toLowerCase()}`,
    severity: finding.severity,
    kindLabel: KIND_LABELS[finding.kind],
    title,
    rows,
    description: multiLine(finding.description, MAX_DESCRIPTION_CHARS),
    remediation: steps.slice(0, MAX_REMEDIATION_STEPS),
    remediationMore: Math.max(0, steps.length - MAX_REMEDIATION_STEPS),
    link: httpsLink(finding.link),
    id: oneLine(finding.id, MAX_FIELD_CHARS),
  };
}

function textPart(view: View): string {
  const width = Math.max(...view.rows.map((row) => row.label.length)) + 1;
  const lines = [`${view.heading}: ${view.title}`, ''];
  for (const row of view.rows) lines.push(`${`${row.label}:`.padEnd(width)} ${row.value}`);
  if (view.description !== '') lines.push('', 'Description', '', view.description);
  if (view.remediation.length > 0) {
    lines.push('', 'Remediation', '');
    view.remediation.forEach((step, index) => lines.push(`${index + 1}. ${step.replace(/\n/g, '\n   ')}`));
    if (view.remediationMore > 0) lines.push(`   ...and ${view.remediationMore} more in Defender for Cloud`);
  }
  if (view.link !== undefined) lines.push('', `Open in Defender: ${view.link}`);
  lines.push('', '-- ', `Record id: ${view.id}`, 'Sent by defender-forwarder.', '');
  return lines.join('\n');
}

function htmlPart(view: View, subject: string): string {
  const colour = SEVERITY_COLOURS[view.severity];
  const rows = view.rows
    .map(
      (row) =>
        `<tr><th scope="row" style="padding:3px 12px 3px 0;text-align:left;vertical-align:top;white-space:nowrap;color:#605e5c">${escapeHtml(row.label)}</th>` +
        `<td style="padding:3px 0;word-break:break-all">${escapeHtml(row.value)}</td></tr>`,
    )
    .join('\n');
  const parts = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(subject)}</title></head>`,
    '<body style="margin:0;padding:16px;background:#ffffff;color:#201f1e;font-family:\'Segoe UI\',Helvetica,Arial,sans-serif;font-size:14px;line-height:1.4">',
    '<table role="presentation" cellpadding="0" cellspacing="0" style="width:100%;max-width:760px;border-collapse:collapse">',
    `<tr><td style="border-left:6px solid ${colour};padding:8px 12px">`,
    `<div style="color:${colour};font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.04em">${escapeHtml(view.severity)} &middot; ${escapeHtml(view.kindLabel)}</div>`,
    `<h1 style="margin:4px 0 0 0;font-size:20px;font-weight:600">${escapeHtml(view.title)}</h1>`,
    '</td></tr>',
    `<tr><td style="padding:12px 0"><table role="presentation" cellpadding="0" cellspacing="0" style="border-collapse:collapse;width:100%">\n${rows}\n</table></td></tr>`,
  ];
  if (view.description !== '') {
    parts.push(`<tr><td><h2 style="margin:12px 0 4px 0;font-size:16px">Description</h2><p style="margin:0">${multiLineHtml(view.description)}</p></td></tr>`);
  }
  if (view.remediation.length > 0) {
    const items = view.remediation.map((step) => `<li style="margin:0 0 4px 0">${multiLineHtml(step)}</li>`).join('');
    const more = view.remediationMore > 0 ? `<p style="margin:0;color:#605e5c">...and ${view.remediationMore} more in Defender for Cloud</p>` : '';
    parts.push(`<tr><td><h2 style="margin:12px 0 4px 0;font-size:16px">Remediation</h2><ol style="margin:0;padding-left:20px">${items}</ol>${more}</td></tr>`);
  }
  if (view.link !== undefined) {
    parts.push(
      `<tr><td style="padding:16px 0"><a href="${escapeHtml(view.link)}" style="display:inline-block;padding:8px 16px;background:#0078d4;color:#ffffff;text-decoration:none;border-radius:2px;font-weight:600">Open in Defender</a></td></tr>`,
    );
  }
  parts.push(
    `<tr><td style="padding-top:16px;color:#605e5c;font-size:12px;word-break:break-all">Record id: ${escapeHtml(view.id)}<br>Sent by defender-forwarder.</td></tr>`,
    '</table>',
    '</body></html>',
    '',
  );
  return parts.join('\n');
}

/** The record's portal link, normalised, when it is an absolute https:// URL without credentials; else nothing. */
export function httpsLink(link: string | undefined): string | undefined {
  if (link === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(link.trim());
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' || url.hostname === '' || url.username !== '' || url.password !== '') return undefined;
  return url.href;
}

/** A time as `2025-08-21 10:00:00 UTC`; a zoneless time is UTC; an unreadable one is shown as given. */
function formatUtc(time: string): string {
  const date = parseUtc(time);
  if (date === undefined) return time;
  const iso = date.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

const HTML_ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text as HTML text or attribute value: nothing in it is markup. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => HTML_ENTITIES[char] ?? char);
}

function multiLineHtml(text: string): string {
  return escapeHtml(text).replace(/\n/g, '<br>\n');
}

/** Bidirectional overrides and isolates (they can make text read backwards) and the line/paragraph separators. */
const BIDI_CONTROLS = /[\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const CONTROLS_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;

/** One line: controls become spaces, runs of white space one space, capped at `max` characters. */
function oneLine(text: string, max: number): string {
  return truncate(text.replace(BIDI_CONTROLS, '').replace(CONTROLS, ' ').replace(/\s+/g, ' ').trim(), max);
}

/** Several lines: line breaks kept (at most one blank line in a row), other controls become spaces. */
function multiLine(text: string, max: number): string {
  const cleaned = text
    .replace(/\r\n?|[\u2028\u2029]/g, '\n')
    .replace(BIDI_CONTROLS, '')
    .replace(CONTROLS_BUT_NEWLINE, ' ')
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  return truncate(cleaned, max);
}

/** At most `max` code points (a surrogate pair is never split); `…` marks a cut. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('').trimEnd()}…`;
}

/** A header value of safe characters only: anything else becomes `_`. */
function headerToken(text: string): string {
  return text.replace(/[^A-Za-z0-9._:/@+=-]/g, '_').slice(0, MAX_HEADER_TOKEN_CHARS);
}

/** The right-hand side of Message-IDs: the sender's domain when it is a plain host name. */
function messageIdDomain(address: string): string {
  const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
  return /^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(domain) ? domain : 'defender-forwarder.invalid';
}

function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex');
}
