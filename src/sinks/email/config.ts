/**
 * The `email` destination's settings, read once and checked: the SMTP relay from `smtpUrl` (a secret, it may
 * carry `user:password`), the credentials, the addresses, the subject prefix and the time allowed. Errors
 * name the destination and the key, never a value: the URL and the password never appear in them.
 *
 * TLS is required. `smtps://` is TLS from the first byte (port 465); `smtp://` must upgrade with STARTTLS
 * (port 587) and the connection fails if the relay does not offer it. Only a loopback relay (127.0.0.0/8,
 * ::1, localhost) may talk plain SMTP, for local testing: the traffic never leaves the machine.
 */
import addressparser from 'nodemailer/lib/addressparser';
import { Secret } from '../../config/secret.js';
import type { Destination } from '../../routing/types.js';
import { isLoopbackHost } from '../http.js';
import {
  listSetting,
  numberSetting,
  optionalSecretSetting,
  secretSetting,
  SinkConfigError,
  textSetting,
  type SinkContext,
} from '../settings.js';

/** Default `subjectPrefix`. */
export const DEFAULT_SUBJECT_PREFIX = '[Defender]';
/** Default `timeoutMs`: time allowed for one message, connecting included (30 s). */
export const DEFAULT_EMAIL_TIMEOUT_MS = 30_000;
/** Submission port with STARTTLS (RFC 6409); port 25 is blocked for outbound traffic on Azure. */
const DEFAULT_STARTTLS_PORT = 587;
/** Submission port with implicit TLS (RFC 8314). */
const DEFAULT_IMPLICIT_TLS_PORT = 465;

/** One mailbox: `name` may be empty. */
export interface EmailAddress {
  readonly name: string;
  readonly address: string;
}

/** A password login (AUTH PLAIN / LOGIN, whichever the relay offers). */
export interface EmailPasswordAuth {
  readonly type: 'password';
  readonly user: string;
  readonly password: Secret;
}

/**
 * XOAUTH2 (Exchange Online, Gmail): either a ready access token, or client credentials with a refresh token
 * that nodemailer exchanges at `accessUrl` whenever a token is needed.
 */
export interface EmailOAuth2Auth {
  readonly type: 'oauth2';
  readonly user: string;
  readonly accessToken?: Secret;
  readonly clientId?: string;
  readonly clientSecret?: Secret;
  readonly refreshToken?: Secret;
  /** The token endpoint (https), e.g. `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`. */
  readonly accessUrl?: string;
}

export type EmailAuth = EmailPasswordAuth | EmailOAuth2Auth;

/** The validated settings of one `email` destination. */
export interface EmailConfig {
  /** The destination's name in the rules file. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** True for `smtps://`: TLS from the first byte. */
  readonly secure: boolean;
  /** True for `smtp://` to anything but a loopback host: STARTTLS or no delivery. */
  readonly requireTLS: boolean;
  /** True for a loopback relay: plain SMTP allowed, STARTTLS used when offered, certificate not checked. */
  readonly loopback: boolean;
  readonly auth?: EmailAuth;
  readonly from: EmailAddress;
  readonly to: readonly EmailAddress[];
  readonly cc: readonly EmailAddress[];
  /** Put before every subject; may be empty. */
  readonly subjectPrefix: string;
  /** Time allowed for one message, connecting included, in milliseconds. */
  readonly timeoutMs: number;
  /** Every secret of the destination (URL, passwords, tokens) in the forms an error could quote them. */
  readonly secrets: readonly Secret[];
}

/** Reads and checks an `email` destination. Throws {@link SinkConfigError} naming the key. */
export function readEmailConfig(destination: Destination, context: SinkContext): EmailConfig {
  const key = (name: string): string => `destinations.${destination.name}.${name}`;
  const smtpUrl = secretSetting(destination, 'smtpUrl', context);
  const secrets: Secret[] = [smtpUrl];
  const relay = parseSmtpUrl(smtpUrl, key('smtpUrl'), context.previewOnly === true);
  secrets.push(...relay.secrets);

  const username = textSetting(destination, 'username', context);
  const password = optionalSecretSetting(destination, 'password', context);
  if (password) secrets.push(password);
  const oauth2 = readOAuth2(destination, context);
  if (oauth2) secrets.push(...[oauth2.accessToken, oauth2.clientSecret, oauth2.refreshToken].filter((secret) => secret !== undefined));

  const sources = [relay.auth ? 'smtpUrl' : undefined, username !== undefined || password ? 'username/password' : undefined, oauth2 ? 'oauth2' : undefined].filter(
    (source) => source !== undefined,
  );
  if (sources.length > 1) {
    throw new SinkConfigError(`${key('smtpUrl')}: credentials are given more than once (${sources.join(', ')}): keep one of them`);
  }
  let auth: EmailAuth | undefined = relay.auth ?? oauth2;
  if (username !== undefined || password) {
    if (username === undefined || username.trim() === '') throw new SinkConfigError(`${key('username')}: required with password`);
    if (!password) throw new SinkConfigError(`${key('password')}: required with username`);
    auth = { type: 'password', user: username, password };
    secrets.push(...derivedSecrets(username, password));
  }

  const rawFrom = destination.settings['from'];
  const from = readAddresses(destination, 'from', context, [typeof rawFrom === 'string' ? rawFrom : undefined]);
  if (from.length > 1) throw new SinkConfigError(`${key('from')}: must be one address`);
  if (from.length === 0 && !context.previewOnly) throw new SinkConfigError(`${key('from')}: required`);
  const to = readAddresses(destination, 'to', context, listSetting(destination, 'to'));
  if (to.length === 0 && !context.previewOnly) throw new SinkConfigError(`${key('to')}: at least one address is required`);
  const cc = readAddresses(destination, 'cc', context, listSetting(destination, 'cc'));
  const subjectPrefix = textSetting(destination, 'subjectPrefix', context) ?? DEFAULT_SUBJECT_PREFIX;
  const timeoutMs = numberSetting(destination, 'timeoutMs', DEFAULT_EMAIL_TIMEOUT_MS);

  return Object.freeze({
    name: destination.name,
    host: relay.host,
    port: relay.port,
    secure: relay.secure,
    requireTLS: !relay.secure && !relay.loopback,
    loopback: relay.loopback,
    ...(auth ? { auth } : {}),
    from: from[0] ?? { name: '', address: '' },
    to: Object.freeze(to),
    cc: Object.freeze(cc),
    subjectPrefix,
    timeoutMs: timeoutMs > 0 ? timeoutMs : DEFAULT_EMAIL_TIMEOUT_MS,
    secrets: Object.freeze(secrets),
  });
}

interface SmtpRelay {
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  readonly loopback: boolean;
  readonly auth?: EmailPasswordAuth;
  /** The URL's password, raw and decoded, and the forms an AUTH command would carry. */
  readonly secrets: readonly Secret[];
}

/**
 * `smtp://[user:password@]host[:port]` (STARTTLS) or `smtps://...` (implicit TLS). The URL is never quoted in
 * an error: it may carry a password.
 */
function parseSmtpUrl(smtpUrl: Secret, key: string, previewOnly: boolean): SmtpRelay {
  const text = smtpUrl.reveal().trim();
  if (previewOnly && text === '') return { host: '', port: DEFAULT_STARTTLS_PORT, secure: false, loopback: false, secrets: [] };
  const where = `${key} (${smtpUrl.source})`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SinkConfigError(`${where}: is not a valid smtp:// or smtps:// URL`);
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
    throw new SinkConfigError(`${where}: must use smtps:// (TLS) or smtp:// (STARTTLS)`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === '') throw new SinkConfigError(`${where}: names no host`);
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw new SinkConfigError(`${where}: must be only smtp(s)://[user:password@]host[:port], without a path or options`);
  }
  const secure = url.protocol === 'smtps:';
  const port = url.port === '' ? (secure ? DEFAULT_IMPLICIT_TLS_PORT : DEFAULT_STARTTLS_PORT) : Number(url.port);
  const loopback = isLoopbackHost(host);
  const secrets: Secret[] = [];
  let auth: EmailPasswordAuth | undefined;
  if (url.username !== '' || url.password !== '') {
    const user = decode(url.username, where);
    const password = decode(url.password, where);
    if (user === '' || password === '') throw new SinkConfigError(`${where}: credentials in the URL need both a user and a password`);
    const secret = new Secret(password, smtpUrl.source);
    secrets.push(secret, new Secret(url.password, smtpUrl.source), ...derivedSecrets(user, secret));
    auth = { type: 'password', user, password: secret };
  }
  return { host, port, secure, loopback, ...(auth ? { auth } : {}), secrets };
}

function decode(component: string, where: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    throw new SinkConfigError(`${where}: the user or password is not valid percent-encoding`);
  }
}

/** What an SMTP transcript would show of a password: the AUTH PLAIN and AUTH LOGIN encodings. */
function derivedSecrets(user: string, password: Secret): Secret[] {
  const value = password.reveal();
  if (value === '') return [];
  return [
    new Secret(Buffer.from(`\u0000${user}\u0000${value}`).toString('base64'), password.source),
    new Secret(Buffer.from(value).toString('base64'), password.source),
  ];
}

/** The `oauth2` block; its secrets are `${ENV}` references like every other secret. */
function readOAuth2(destination: Destination, context: SinkContext): EmailOAuth2Auth | undefined {
  const raw = destination.settings['oauth2'];
  if (raw === undefined || raw === null) return undefined;
  const key = `destinations.${destination.name}.oauth2`;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new SinkConfigError(`${key}: expected an object`);
  // The block read like a destination of its own, so that errors name `destinations.<name>.oauth2.<key>`.
  const block: Destination = { ...destination, name: `${destination.name}.oauth2`, settings: raw as Record<string, unknown> };
  const user = textSetting(block, 'user', context);
  if (user === undefined || user.trim() === '') throw new SinkConfigError(`${key}.user: required`);
  const accessToken = optionalSecretSetting(block, 'accessToken', context);
  const clientId = textSetting(block, 'clientId', context);
  const clientSecret = optionalSecretSetting(block, 'clientSecret', context);
  const refreshToken = optionalSecretSetting(block, 'refreshToken', context);
  const accessUrl = textSetting(block, 'accessUrl', context);
  const refreshing = clientId !== undefined || clientSecret !== undefined || refreshToken !== undefined;
  if (!accessToken && !refreshing) {
    throw new SinkConfigError(`${key}: needs accessToken, or clientId, clientSecret and refreshToken`);
  }
  if (refreshing) {
    for (const [name, value] of [['clientId', clientId], ['clientSecret', clientSecret], ['refreshToken', refreshToken]] as const) {
      if (value === undefined) throw new SinkConfigError(`${key}.${name}: required with clientId, clientSecret and refreshToken`);
    }
    // nodemailer's default token endpoint is Google's: without an explicit one, an Exchange Online client
    // secret would be sent to a third party.
    if (accessUrl === undefined) {
      throw new SinkConfigError(`${key}.accessUrl: required with a refresh token (e.g. https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token)`);
    }
  }
  if (accessUrl !== undefined && !/^https:\/\/\S+$/.test(accessUrl)) throw new SinkConfigError(`${key}.accessUrl: must be an https:// URL`);
  return {
    type: 'oauth2',
    user,
    ...(accessToken ? { accessToken } : {}),
    ...(clientId !== undefined ? { clientId } : {}),
    ...(clientSecret ? { clientSecret } : {}),
    ...(refreshToken ? { refreshToken } : {}),
    ...(accessUrl !== undefined ? { accessUrl } : {}),
  };
}

const MAILBOX = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Addresses of `from`, `to` or `cc`: each entry is an address, `Name <address>`, or an `${ENV}` reference
 * whose value may list several (comma-separated). Values from the environment are checked like the rules
 * file's, since the schema never saw them.
 */
function readAddresses(destination: Destination, key: string, context: SinkContext, entries: readonly (string | undefined)[]): EmailAddress[] {
  const out: EmailAddress[] = [];
  entries.forEach((entry, index) => {
    if (entry === undefined) return;
    const label = entries.length > 1 || key !== 'from' ? `${key}[${index}]` : key;
    // Resolved through the shared reader, so `${ENV}` rules and messages match every other setting.
    const value = textSetting({ ...destination, settings: { [label]: entry } }, label, context) ?? '';
    if (value.trim() === '' && context.previewOnly) return;
    const where = `destinations.${destination.name}.${label}`;
    if (CONTROL.test(value)) throw new SinkConfigError(`${where}: must not contain control characters`);
    const parsed = addressparser(value, { flatten: true });
    if (parsed.length === 0) throw new SinkConfigError(`${where}: is not an e-mail address`);
    for (const mailbox of parsed) {
      const address = mailbox.address ?? '';
      if (!MAILBOX.test(address)) throw new SinkConfigError(`${where}: is not an e-mail address (name@example.com or "Name <name@example.com>")`);
      out.push({ name: mailbox.name.trim(), address });
    }
  });
  return out;
}
