/**
 * Builds the Teams message for one finding: an Adaptive Card 1.4 in the `message` envelope that Workflows
 * webhooks take (protocols.md), or a legacy connector MessageCard. Pure: no I/O, no clock, no randomness.
 *
 * Two rules hold for every message, whatever the record holds:
 * - Record text is shown as text. TextBlocks and fact values interpret a Markdown subset, so every
 *   record-derived string is escaped (`escapeMarkdown`); the only URL in a card is the finding's own portal
 *   link, and only when it is https.
 * - The message JSON stays within `TEAMS_MAX_MESSAGE_BYTES`: texts and lists are cut, more at each level,
 *   until it fits, and the card says it was cut.
 */
import type { Finding, Kind, Severity } from '../../model/finding.js';
import { parseUtc } from '../../model/time.js';
import type { TeamsFormat } from './config.js';

/**
 * Largest message we send, in bytes of UTF-8 JSON. Teams documents "about 28 KB" per message; 28,000 (not
 * 28,672) keeps us under either reading of it.
 */
export const TEAMS_MAX_MESSAGE_BYTES = 28_000;
export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';
export const ADAPTIVE_CARD_SCHEMA = 'http://adaptivecards.io/schemas/adaptive-card.json';
/** Teams renders up to 1.5, but Workflows refused cards above 1.4 in practice (protocols.md). */
export const ADAPTIVE_CARD_VERSION = '1.4';
/** Shown in a card whose texts or lists were cut to fit. */
export const TRUNCATION_NOTICE = '… truncated; see Splunk / Defender for the full record';
/** How many remediation steps a card shows. */
export const REMEDIATION_STEPS_SHOWN = 3;
/** Longest portal link we put in a button; longer ones are dropped rather than cut (a cut URL is wrong). */
const MAX_LINK_LENGTH = 2048;

export type CardColor = 'default' | 'dark' | 'light' | 'accent' | 'good' | 'warning' | 'attention';
export type ContainerStyle = 'default' | 'emphasis' | 'good' | 'attention' | 'warning' | 'accent';

export interface TextBlock {
  readonly type: 'TextBlock';
  readonly text: string;
  readonly wrap?: boolean;
  readonly size?: 'small' | 'default' | 'medium' | 'large' | 'extraLarge';
  readonly weight?: 'lighter' | 'default' | 'bolder';
  readonly color?: CardColor;
  readonly isSubtle?: boolean;
  readonly spacing?: 'none' | 'small' | 'default' | 'medium' | 'large';
  readonly separator?: boolean;
}

export interface Fact {
  readonly title: string;
  readonly value: string;
}

export interface FactSet {
  readonly type: 'FactSet';
  readonly facts: readonly Fact[];
  readonly spacing?: TextBlock['spacing'];
}

export interface Container {
  readonly type: 'Container';
  readonly items: readonly CardElement[];
  readonly style?: ContainerStyle;
  readonly bleed?: boolean;
}

export type CardElement = TextBlock | FactSet | Container;

export interface OpenUrlAction {
  readonly type: 'Action.OpenUrl';
  readonly title: string;
  readonly url: string;
}

export interface AdaptiveCard {
  readonly type: 'AdaptiveCard';
  readonly $schema: typeof ADAPTIVE_CARD_SCHEMA;
  readonly version: typeof ADAPTIVE_CARD_VERSION;
  readonly body: readonly CardElement[];
  readonly actions?: readonly OpenUrlAction[];
  /** Teams-only: use the channel's full width, so facts and long titles wrap less. */
  readonly msteams?: { readonly width: 'Full' };
}

/** What a Workflows webhook takes. */
export interface TeamsMessage {
  readonly type: 'message';
  readonly attachments: readonly [
    { readonly contentType: typeof ADAPTIVE_CARD_CONTENT_TYPE; readonly contentUrl: null; readonly content: AdaptiveCard },
  ];
}

/** A legacy Office 365 connector card. */
export interface MessageCard {
  readonly '@type': 'MessageCard';
  readonly '@context': 'https://schema.org/extensions';
  readonly themeColor: string;
  /** Plain text (notifications, activity feed): not Markdown. */
  readonly summary: string;
  readonly title: string;
  readonly sections: readonly MessageCardSection[];
  readonly potentialAction?: readonly MessageCardOpenUri[];
}

export interface MessageCardSection {
  readonly activityTitle?: string;
  readonly text?: string;
  readonly facts?: readonly { readonly name: string; readonly value: string }[];
  readonly markdown: true;
}

export interface MessageCardOpenUri {
  readonly '@type': 'OpenUri';
  readonly name: string;
  readonly targets: readonly { readonly os: 'default'; readonly uri: string }[];
}

export interface TeamsEncodeOptions {
  /**
   * Byte budget for the whole message JSON (default `TEAMS_MAX_MESSAGE_BYTES`). Budgets under about 8 KB may
   * not be reachable: the smallest card is then returned as is, and `validateTeamsCard` refuses it.
   */
  readonly maxBytes?: number;
}

/** Colour of the severity label: attention for what needs someone now, default when unknown. */
export const SEVERITY_COLOR: Readonly<Record<Severity, CardColor>> = Object.freeze({
  Critical: 'attention',
  High: 'attention',
  Medium: 'warning',
  Low: 'accent',
  Informational: 'good',
  Unknown: 'default',
});

/** MessageCard `themeColor` (the stripe on the card's edge) per severity. */
export const SEVERITY_THEME_COLOR: Readonly<Record<Severity, string>> = Object.freeze({
  Critical: 'A80000',
  High: 'D13438',
  Medium: 'FF8C00',
  Low: '0078D4',
  Informational: '107C10',
  Unknown: '8A8886',
});

const KIND_LABEL: Readonly<Record<Kind, string>> = Object.freeze({
  alert: 'Security alert',
  recommendation: 'Recommendation',
  finding: 'Vulnerability finding',
  secureScore: 'Secure score',
  secureScoreControl: 'Secure score control',
  regulatoryCompliance: 'Regulatory compliance',
});

/**
 * Escapes what Adaptive Cards' (and connector cards') Markdown subset would interpret, so that
 * `[click](https://evil)` or `**x**` is displayed as typed. CommonMark renders a backslash before any ASCII
 * punctuation as that character. Escaped everywhere: `\` `` ` `` `*` `_` `[` `]` `(` `)` `#` `<` `>` `&` `~`
 * `{` `}` (`{{DATE(...)}}` is a card function; `&` would start an entity). At a line start: `-`, `+`, `=`
 * (lists, setext headings) and the `.` of `1.` (ordered lists).
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\\`*_[\]()#<>&~{}]/g, '\\$&')
    .replace(/^([ \t]*)([-+=])/gm, '$1\\$2')
    .replace(/^([ \t]*\d+)\./gm, '$1\\.');
}

/**
 * Control characters (but newline and tab) and bidirectional overrides, which can make a title read as
 * something else ("Trojan Source"), are removed from record text.
 */
const UNSAFE_CHARACTERS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u202a-\u202e\u2066-\u2069]/g;

/** The portal link when it is a well-formed https URL without credentials; otherwise undefined. */
export function safeHttpsLink(link: string | undefined): string | undefined {
  if (typeof link !== 'string' || link.length === 0 || link.length > MAX_LINK_LENGTH) return undefined;
  if (/[\s\u0000-\u001f\u007f]/.test(link)) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(link);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'https:' || parsed.username !== '' || parsed.password !== '' || parsed.hostname === '') return undefined;
  return parsed.href.length <= MAX_LINK_LENGTH ? parsed.href : undefined;
}

/** The message for a destination's format. */
export function encodeTeamsPayload(finding: Finding, format: TeamsFormat, options: TeamsEncodeOptions = {}): TeamsMessage | MessageCard {
  return format === 'messagecard' ? encodeMessageCard(finding, options) : encodeTeamsMessage(finding, options);
}

/** The Adaptive Card 1.4 message for one finding, within the byte budget. */
export function encodeTeamsMessage(finding: Finding, options: TeamsEncodeOptions = {}): TeamsMessage {
  return fitWithin(options.maxBytes ?? TEAMS_MAX_MESSAGE_BYTES, (limits) => buildAdaptiveMessage(describe(finding, limits)));
}

/** The legacy connector MessageCard for one finding, with the same content, escaping and budget. */
export function encodeMessageCard(finding: Finding, options: TeamsEncodeOptions = {}): MessageCard {
  return fitWithin(options.maxBytes ?? TEAMS_MAX_MESSAGE_BYTES, (limits) => buildMessageCard(describe(finding, limits)));
}

// ---------------------------------------------------------------------------------------------------------
// What a card says, independent of the card format.

/** Character limits for one attempt at fitting; each level cuts more. */
interface Limits {
  readonly title: number;
  readonly description: number;
  readonly fact: number;
  readonly listItems: number;
  readonly steps: number;
  readonly step: number;
  readonly id: number;
}

/**
 * Tried in order until the message fits. The first fits any ordinary record; the last fits 28 KB even
 * when every character costs its worst (4 bytes: an escaped backslash in JSON, or a 4-byte code point).
 */
const LEVELS: readonly Limits[] = [
  { title: 400, description: 3000, fact: 300, listItems: 25, steps: REMEDIATION_STEPS_SHOWN, step: 600, id: 500 },
  { title: 250, description: 1200, fact: 160, listItems: 10, steps: REMEDIATION_STEPS_SHOWN, step: 250, id: 300 },
  { title: 150, description: 400, fact: 100, listItems: 5, steps: 2, step: 120, id: 200 },
  { title: 100, description: 0, fact: 60, listItems: 3, steps: 0, step: 0, id: 120 },
];

/** The card's content, already escaped and cut. */
interface Description {
  readonly severity: Severity;
  /** Our own text: `HIGH · Security alert · weekly snapshot`. */
  readonly label: string;
  readonly title: string;
  readonly facts: readonly Fact[];
  readonly description: string;
  readonly steps: readonly string[];
  /** Remediation steps not shown (beyond the first ones). */
  readonly moreSteps: number;
  readonly id: string;
  readonly link: string | undefined;
  /** Plain, unescaped text for MessageCard `summary`. */
  readonly summary: string;
  readonly truncated: boolean;
}

function fitWithin<T>(maxBytes: number, build: (limits: Limits) => T): T {
  let message: T | undefined;
  for (const limits of LEVELS) {
    message = build(limits);
    if (Buffer.byteLength(JSON.stringify(message), 'utf8') <= maxBytes) return message;
  }
  // LEVELS is not empty, so `message` is set; an unreachable budget returns the smallest card.
  return message as T;
}

/** Cuts and escapes record text, remembering whether anything was cut. */
class TextCutter {
  truncated = false;

  /** Record text on one line, cut to `max` characters, escaped. */
  line(value: unknown, max: number): string {
    return escapeMarkdown(this.cut(value, max).replace(/\s+/g, ' ').trim());
  }

  /** Record text keeping its line breaks, cut to `max` characters, escaped. */
  paragraph(value: unknown, max: number): string {
    return escapeMarkdown(this.cut(value, max).replace(/\r\n?/g, '\n').trim());
  }

  /** Plain text (not Markdown) on one line, cut. */
  plain(value: unknown, max: number): string {
    return this.cut(value, max).replace(/\s+/g, ' ').trim();
  }

  /** A list on one line: the first `maxItems` items, each cut, then `(+N more)`. */
  list(values: readonly unknown[], maxItems: number, maxChars: number): string {
    const shown = values.slice(0, Math.max(1, maxItems));
    const perItem = Math.max(8, Math.floor(maxChars / shown.length));
    const text = shown.map((value) => this.line(value, perItem)).join(', ');
    const rest = values.length - shown.length;
    if (rest > 0) this.truncated = true;
    return rest > 0 ? `${text} (+${rest} more)` : text;
  }

  /** Cuts before any other work, so a 2 MB text costs no more than a short one. */
  private cut(value: unknown, max: number): string {
    const text = typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
    if (text.length <= max) return text.replace(UNSAFE_CHARACTERS, '');
    this.truncated = true;
    if (max <= 1) return '';
    let end = max - 1;
    // Do not split a surrogate pair.
    const last = text.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end -= 1;
    return `${text.slice(0, end).replace(UNSAFE_CHARACTERS, '').trimEnd()}…`;
  }
}

function describe(finding: Finding, limits: Limits): Description {
  const cutter = new TextCutter();
  const facts: Fact[] = [];
  const fact = (title: string, value: string): void => {
    if (value !== '') facts.push({ title, value });
  };

  fact('Resource', resourceLabel(finding, limits.fact, cutter));
  fact('Subscription', cutter.line(finding.subscriptionId, limits.fact));
  if (finding.kind === 'regulatoryCompliance') {
    fact('Standard', cutter.line(idSegmentAfter(finding.id, 'regulatorycompliancestandards'), limits.fact));
    fact('Control', cutter.line(idSegmentAfter(finding.id, 'regulatorycompliancecontrols'), limits.fact));
  }
  fact('Cluster', cutter.line(finding.cluster, limits.fact));
  fact('Namespace', cutter.line(finding.namespace, limits.fact));
  fact('Alert type', cutter.line(finding.alertType, limits.fact));
  if (finding.tactics.length > 0) fact('MITRE tactics', cutter.list(finding.tactics, limits.listItems, limits.fact * 2));
  fact('Status', cutter.line(finding.status, limits.fact));
  fact('Time (UTC)', timeLabel(finding.time, limits.fact, cutter));
  if (finding.cves.length > 0) fact('CVEs', cutter.list(finding.cves, limits.listItems, limits.fact * 2));
  if (typeof finding.cvss === 'number' && Number.isFinite(finding.cvss)) fact('CVSS', finding.cvss.toFixed(1));
  if (finding.action !== undefined && finding.action.toLowerCase() === 'delete') {
    fact('Export', 'Delete: the resource is gone or no longer applicable');
  }

  // Steps beyond the first three are left for Defender (and said so); fewer than that means a cut to fit.
  const stepsShown = finding.remediation.slice(0, Math.min(limits.steps, REMEDIATION_STEPS_SHOWN));
  if (stepsShown.length < Math.min(REMEDIATION_STEPS_SHOWN, finding.remediation.length)) cutter.truncated = true;
  const steps = stepsShown.map((step) => cutter.line(step, limits.step)).filter((step) => step !== '');
  const moreSteps = finding.remediation.length - stepsShown.length;
  const description = cutter.paragraph(finding.description, limits.description);
  const title = cutter.line(finding.title, limits.title) || escapeMarkdown(KIND_LABEL[finding.kind]);
  const id = cutter.line(finding.id, limits.id);

  const labelParts = [finding.severity === 'Unknown' ? '' : finding.severity.toUpperCase(), KIND_LABEL[finding.kind], finding.snapshot ? 'weekly snapshot' : ''];
  const label = labelParts.filter((part) => part !== '').join(' · ');
  const summary = `${label}: ${cutter.plain(finding.title, 200)}`;

  return {
    severity: finding.severity,
    label,
    title,
    facts,
    description,
    steps,
    moreSteps,
    id,
    link: safeHttpsLink(finding.link),
    summary,
    truncated: cutter.truncated,
  };
}

/** `aks-prod-weu in rg-prod-aks`: the last segment of the ARM id and the resource group. */
function resourceLabel(finding: Finding, max: number, cutter: TextCutter): string {
  const resourceId = typeof finding.resourceId === 'string' ? finding.resourceId : '';
  const trimmed = resourceId.replace(/\/+$/, '');
  const shortName = cutter.line(trimmed.slice(trimmed.lastIndexOf('/') + 1), max);
  const group = cutter.line(finding.resourceGroup, max);
  if (shortName === '') return group === '' ? '' : `resource group ${group}`;
  return group === '' ? shortName : `${shortName} in ${group}`;
}

/** The segment following `name` in an ARM id (compared case-insensitively), or ''. */
function idSegmentAfter(id: string, name: string): string {
  const segments = id.split('/');
  const index = segments.findIndex((segment) => segment.toLowerCase() === name);
  return index >= 0 ? (segments[index + 1] ?? '') : '';
}

/** `2025-08-21 10:00:00 UTC`; a time that does not parse is shown as given. */
function timeLabel(time: string, max: number, cutter: TextCutter): string {
  const parsed = parseUtc(typeof time === 'string' ? time.slice(0, 64) : undefined);
  if (parsed === undefined) return cutter.line(time, max);
  return `${parsed.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

// ---------------------------------------------------------------------------------------------------------
// The two card formats.

const CONTAINER_STYLE: Readonly<Record<Severity, ContainerStyle>> = Object.freeze({
  Critical: 'attention',
  High: 'attention',
  Medium: 'warning',
  Low: 'accent',
  Informational: 'good',
  Unknown: 'default',
});

function buildAdaptiveMessage(content: Description): TeamsMessage {
  const body: CardElement[] = [
    {
      type: 'Container',
      style: CONTAINER_STYLE[content.severity],
      bleed: true,
      items: [
        { type: 'TextBlock', text: content.label, weight: 'bolder', color: SEVERITY_COLOR[content.severity], wrap: true },
        { type: 'TextBlock', text: content.title, size: 'large', weight: 'bolder', wrap: true, spacing: 'small' },
      ],
    },
  ];
  if (content.facts.length > 0) body.push({ type: 'FactSet', facts: content.facts });
  if (content.description !== '') body.push({ type: 'TextBlock', text: content.description, wrap: true });
  if (content.steps.length > 0) {
    body.push({ type: 'TextBlock', text: 'Remediation', weight: 'bolder', separator: true });
    body.push({ type: 'FactSet', facts: content.steps.map((step, index) => ({ title: `Step ${index + 1}`, value: step })), spacing: 'small' });
  }
  if (content.moreSteps > 0) body.push({ type: 'TextBlock', text: moreStepsText(content.moreSteps), isSubtle: true, wrap: true, spacing: 'small' });
  if (content.truncated) body.push({ type: 'TextBlock', text: TRUNCATION_NOTICE, isSubtle: true, wrap: true, separator: true });
  if (content.id !== '') body.push({ type: 'TextBlock', text: `ID: ${content.id}`, isSubtle: true, size: 'small', wrap: true });

  const card: AdaptiveCard = {
    type: 'AdaptiveCard',
    $schema: ADAPTIVE_CARD_SCHEMA,
    version: ADAPTIVE_CARD_VERSION,
    body,
    ...(content.link !== undefined ? { actions: [{ type: 'Action.OpenUrl', title: 'Open in Defender', url: content.link }] } : {}),
    msteams: { width: 'Full' },
  };
  return { type: 'message', attachments: [{ contentType: ADAPTIVE_CARD_CONTENT_TYPE, contentUrl: null, content: card }] };
}

function buildMessageCard(content: Description): MessageCard {
  const sections: MessageCardSection[] = [
    { activityTitle: content.label, ...(content.facts.length > 0 ? { facts: content.facts.map(toNameValue) } : {}), markdown: true },
  ];
  if (content.description !== '') sections.push({ text: content.description, markdown: true });
  if (content.steps.length > 0) {
    sections.push({ activityTitle: 'Remediation', facts: content.steps.map((step, index) => ({ name: `Step ${index + 1}`, value: step })), markdown: true });
  }
  const notes = [content.moreSteps > 0 ? moreStepsText(content.moreSteps) : '', content.truncated ? TRUNCATION_NOTICE : '', content.id !== '' ? `ID: ${content.id}` : ''];
  const note = notes.filter((text) => text !== '').join('\n\n');
  if (note !== '') sections.push({ text: note, markdown: true });
  return {
    '@type': 'MessageCard',
    '@context': 'https://schema.org/extensions',
    themeColor: SEVERITY_THEME_COLOR[content.severity],
    summary: content.summary,
    title: content.title,
    sections,
    ...(content.link !== undefined
      ? { potentialAction: [{ '@type': 'OpenUri', name: 'Open in Defender', targets: [{ os: 'default', uri: content.link }] }] }
      : {}),
  };
}

function toNameValue(fact: Fact): { name: string; value: string } {
  return { name: fact.title, value: fact.value };
}

function moreStepsText(count: number): string {
  return `${count} more remediation step${count === 1 ? '' : 's'} in Defender`;
}

// ---------------------------------------------------------------------------------------------------------
// Validation: the structure we produce, checked before sending (Workflows answer 202 even for a card they
// cannot display, so an unchecked mistake would vanish silently).

const ELEMENT_TYPES = new Set(['TextBlock', 'FactSet', 'Container']);
const COLORS = new Set<string>(['default', 'dark', 'light', 'accent', 'good', 'warning', 'attention']);
const CONTAINER_STYLES = new Set<string>(['default', 'emphasis', 'good', 'attention', 'warning', 'accent']);
const SIZES = new Set<string>(['small', 'default', 'medium', 'large', 'extraLarge']);
const WEIGHTS = new Set<string>(['lighter', 'default', 'bolder']);
const SPACINGS = new Set<string>(['none', 'small', 'default', 'medium', 'large']);
const MAX_DEPTH = 4;

/**
 * Problems with a Teams message (an Adaptive Card message or a MessageCard), as `path: problem` texts that
 * quote no record text; empty when it may be sent. Checks the envelope, version 1.4 (or lower), the element
 * and action types this module produces, https action URLs and the size.
 */
export function validateTeamsCard(message: unknown, maxBytes: number = TEAMS_MAX_MESSAGE_BYTES): string[] {
  const problems: string[] = [];
  if (!isObject(message)) return ['message: not a JSON object'];
  if (message['@type'] === 'MessageCard') validateMessageCard(message, problems);
  else validateAdaptiveMessage(message, problems);
  let bytes: number;
  try {
    bytes = Buffer.byteLength(JSON.stringify(message), 'utf8');
  } catch {
    problems.push('message: cannot be serialised as JSON');
    return problems;
  }
  if (bytes > maxBytes) problems.push(`message: ${bytes} bytes, over the ${maxBytes}-byte limit`);
  return problems;
}

function validateAdaptiveMessage(message: Record<string, unknown>, problems: string[]): void {
  if (message['type'] !== 'message') problems.push('type: must be "message"');
  const attachments = message['attachments'];
  if (!Array.isArray(attachments) || attachments.length !== 1) {
    problems.push('attachments: must hold exactly one card');
    return;
  }
  const attachment: unknown = attachments[0];
  if (!isObject(attachment)) {
    problems.push('attachments[0]: not an object');
    return;
  }
  if (attachment['contentType'] !== ADAPTIVE_CARD_CONTENT_TYPE) problems.push(`attachments[0].contentType: must be ${ADAPTIVE_CARD_CONTENT_TYPE}`);
  if (attachment['contentUrl'] !== null && attachment['contentUrl'] !== undefined) problems.push('attachments[0].contentUrl: must be null');
  const card = attachment['content'];
  const at = 'attachments[0].content';
  if (!isObject(card)) {
    problems.push(`${at}: not an object`);
    return;
  }
  if (card['type'] !== 'AdaptiveCard') problems.push(`${at}.type: must be "AdaptiveCard"`);
  if (!isSupportedVersion(card['version'])) problems.push(`${at}.version: must be "${ADAPTIVE_CARD_VERSION}" or lower`);
  const body = card['body'];
  if (!Array.isArray(body) || body.length === 0) problems.push(`${at}.body: must be a non-empty list`);
  else body.forEach((element: unknown, index) => validateElement(element, `${at}.body[${index}]`, 1, problems));
  const actions = card['actions'];
  if (actions !== undefined) {
    if (!Array.isArray(actions)) problems.push(`${at}.actions: must be a list`);
    else actions.forEach((action: unknown, index) => validateOpenUrl(action, `${at}.actions[${index}]`, problems));
  }
}

function isSupportedVersion(version: unknown): boolean {
  if (typeof version !== 'string') return false;
  const match = /^1\.(\d)$/.exec(version);
  return match !== null && Number(match[1]) <= 4;
}

function validateElement(element: unknown, at: string, depth: number, problems: string[]): void {
  if (!isObject(element)) {
    problems.push(`${at}: not an object`);
    return;
  }
  const type = element['type'];
  if (typeof type !== 'string' || !ELEMENT_TYPES.has(type)) {
    problems.push(`${at}.type: not one of ${[...ELEMENT_TYPES].join(', ')}`);
    return;
  }
  checkEnum(element, 'spacing', SPACINGS, at, problems);
  if (type === 'TextBlock') {
    if (!isNonEmptyText(element['text'])) problems.push(`${at}.text: must be non-empty text`);
    checkEnum(element, 'color', COLORS, at, problems);
    checkEnum(element, 'size', SIZES, at, problems);
    checkEnum(element, 'weight', WEIGHTS, at, problems);
  } else if (type === 'FactSet') {
    const facts = element['facts'];
    if (!Array.isArray(facts) || facts.length === 0) problems.push(`${at}.facts: must be a non-empty list`);
    else {
      facts.forEach((fact: unknown, index) => {
        if (!isObject(fact) || !isNonEmptyText(fact['title']) || !isNonEmptyText(fact['value'])) {
          problems.push(`${at}.facts[${index}]: must have a non-empty title and value`);
        }
      });
    }
  } else {
    checkEnum(element, 'style', CONTAINER_STYLES, at, problems);
    const items = element['items'];
    if (depth >= MAX_DEPTH) problems.push(`${at}: nested too deeply`);
    else if (!Array.isArray(items) || items.length === 0) problems.push(`${at}.items: must be a non-empty list`);
    else items.forEach((item: unknown, index) => validateElement(item, `${at}.items[${index}]`, depth + 1, problems));
  }
}

function validateOpenUrl(action: unknown, at: string, problems: string[]): void {
  if (!isObject(action) || action['type'] !== 'Action.OpenUrl') {
    problems.push(`${at}.type: must be Action.OpenUrl`);
    return;
  }
  if (!isNonEmptyText(action['title'])) problems.push(`${at}.title: must be non-empty text`);
  if (typeof action['url'] !== 'string' || safeHttpsLink(action['url']) === undefined) problems.push(`${at}.url: must be an https URL`);
}

function validateMessageCard(card: Record<string, unknown>, problems: string[]): void {
  if (card['@context'] !== 'https://schema.org/extensions') problems.push('@context: must be https://schema.org/extensions');
  // Connectors refuse a card without either ("Summary or Text is required.").
  if (!isNonEmptyText(card['summary']) && !isNonEmptyText(card['text'])) problems.push('summary: required');
  if (card['themeColor'] !== undefined && (typeof card['themeColor'] !== 'string' || !/^[0-9A-Fa-f]{6}$/.test(card['themeColor']))) {
    problems.push('themeColor: must be six hex digits');
  }
  if (card['title'] !== undefined && typeof card['title'] !== 'string') problems.push('title: must be text');
  const sections = card['sections'];
  if (sections !== undefined) {
    if (!Array.isArray(sections)) problems.push('sections: must be a list');
    else {
      sections.forEach((section: unknown, index) => {
        const at = `sections[${index}]`;
        if (!isObject(section)) {
          problems.push(`${at}: not an object`);
          return;
        }
        for (const key of ['activityTitle', 'text'] as const) {
          if (section[key] !== undefined && typeof section[key] !== 'string') problems.push(`${at}.${key}: must be text`);
        }
        const facts = section['facts'];
        if (facts !== undefined && (!Array.isArray(facts) || !facts.every((fact: unknown) => isObject(fact) && isNonEmptyText(fact['name']) && isNonEmptyText(fact['value'])))) {
          problems.push(`${at}.facts: must be a list of {name, value} texts`);
        }
      });
    }
  }
  const actions = card['potentialAction'];
  if (actions !== undefined) {
    if (!Array.isArray(actions)) problems.push('potentialAction: must be a list');
    else {
      actions.forEach((action: unknown, index) => {
        const at = `potentialAction[${index}]`;
        const targets = isObject(action) ? action['targets'] : undefined;
        if (!isObject(action) || action['@type'] !== 'OpenUri' || !isNonEmptyText(action['name'])) problems.push(`${at}: must be an OpenUri action with a name`);
        else if (!Array.isArray(targets) || targets.length === 0 || !targets.every((target: unknown) => isObject(target) && typeof target['uri'] === 'string' && safeHttpsLink(target['uri']) !== undefined)) {
          problems.push(`${at}.targets: must be https URIs`);
        }
      });
    }
  }
}

function checkEnum(element: Record<string, unknown>, key: string, allowed: ReadonlySet<string>, at: string, problems: string[]): void {
  const value = element[key];
  if (value !== undefined && (typeof value !== 'string' || !allowed.has(value))) problems.push(`${at}.${key}: not an allowed value`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isNonEmptyText(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}
