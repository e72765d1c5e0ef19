/**
 * The `email` destination: one e-mail per record through an SMTP relay (nodemailer, pooled connections),
 * one attempt per record, every failure classified (SMTP reply, connection, TLS, credentials) so that the
 * delivery loop retries what may succeed later and dead-letters the rest.
 *
 * Retrying lives in `src/delivery/` only: the pool is told never to re-queue a message itself
 * (`maxRequeues: 0`), so one `send` is one attempt.
 */
import nodemailer, { type SMTPPoolOptions, type Transporter } from 'nodemailer';
import type { SMTPTransportAuthOptions } from 'nodemailer/lib/smtp-transport';
import { redact, type Secret } from '../../config/secret.js';
import type { Destination } from '../../routing/types.js';
import type { SinkContext } from '../settings.js';
import { DeliveryError, type AttemptResult, type DeliveryItem, type PreviewFile, type Sink } from '../sink.js';
import { readEmailConfig, type EmailAuth, type EmailConfig } from './config.js';
import { composeEmail, emailFileName, encodeEmail } from './encode.js';

/**
 * Connections the pool may hold open. Exchange Online allows 3 per mailbox and answers `432 4.3.2` above
 * that (protocols.md); the delivery loop's own concurrency cap should not be above it either.
 */
export const EMAIL_MAX_CONNECTIONS = 3;
/** An idle pooled connection is closed after this long, before the relay drops it under us. */
const POOL_IDLE_TIMEOUT_MS = 60_000;
/**
 * How long to wait after a quota answer. Exchange Online's submission quota is per day and per minute; the
 * answer does not say which, so wait long enough for the per-minute one and let re-drive handle the rest.
 */
export const SMTP_QUOTA_RETRY_AFTER_MS = 15 * 60_000;

/**
 * SMTP reply codes with a treatment of their own (RFC 5321 section 4.2: 4yz transient, 5yz permanent).
 * Codes not listed follow their class. Quota answers (550 / 554 naming the submission quota) are recognised
 * by their text, see {@link isQuotaAnswer}.
 */
export const SMTP_REPLY_TABLE: Readonly<Record<number, { readonly retryable: boolean; readonly configuration: boolean }>> = Object.freeze({
  421: { retryable: true, configuration: false }, // service not available, closing the channel
  432: { retryable: true, configuration: false }, // Exchange: too many connections for the mailbox (4.3.2)
  450: { retryable: true, configuration: false }, // mailbox unavailable (greylisting)
  451: { retryable: true, configuration: false }, // local error, server busy (4.7.500)
  452: { retryable: true, configuration: false }, // insufficient storage, too many recipients for now
  454: { retryable: true, configuration: false }, // TLS or authentication temporarily unavailable
  // 503 bad sequence of commands: the session's state, not the message; a new connection may do (nodemailer's rule).
  503: { retryable: true, configuration: false },
  530: { retryable: false, configuration: true }, // authentication required: no credentials configured
  534: { retryable: false, configuration: true }, // authentication mechanism too weak
  535: { retryable: false, configuration: true }, // credentials refused (Exchange 5.7.139: SMTP AUTH disabled)
  538: { retryable: false, configuration: true }, // encryption required for the mechanism
  550: { retryable: false, configuration: false }, // refused (recipient unknown, sender not allowed, policy)
  552: { retryable: false, configuration: false }, // message too big
  554: { retryable: false, configuration: false }, // transaction failed
});

/** nodemailer and Node.js codes of a connection that failed or broke before an answer: always worth another try. */
export const RETRYABLE_SMTP_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNECTION',
  'ESOCKET',
  'EDNS',
  'EPROXY',
  'EMAXLIMIT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/** Codes that mean the destination is misconfigured; never retried. */
const CREDENTIAL_ERROR_CODES: ReadonlySet<string> = new Set(['EAUTH', 'ENOAUTH', 'EOAUTH2']);
const TLS_ERROR_CODES: ReadonlySet<string> = new Set(['ETLS', 'EREQUIRETLS']);
/** Socket errors that come from the TLS layer (certificate, protocol): a TLS setting is wrong, not the network. */
const TLS_SOCKET_ERROR = /^(ERR_SSL_|ERR_TLS_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(GET|VERIFY)_|HOSTNAME_MISMATCH)/;

/** A 550 / 554 about the sender's quota: `554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException`. */
export function isQuotaAnswer(responseCode: number, response: string): boolean {
  return (responseCode === 550 || responseCode === 554) && /\b5\.2\.0\b|SubmissionQuotaExceeded|quota|sending limit exceeded/i.test(response);
}

/** Creates the sink of an `email` destination. Throws `SinkConfigError` when it is misconfigured. */
export function createEmailSink(destination: Destination, context: SinkContext): Sink {
  return createEmailSinkFromConfig(readEmailConfig(destination, context));
}

/** Creates the sink from already read settings (see {@link readEmailConfig}). No connection is made before the first `send`. */
export function createEmailSinkFromConfig(config: EmailConfig): Sink {
  const what = `email "${config.name}"`;
  let transport: Transporter | undefined;
  const open = (): Transporter => (transport ??= nodemailer.createTransport(transportOptions(config)));

  async function sendOne(item: DeliveryItem, signal: AbortSignal): Promise<AttemptResult> {
    let envelope: { from: string; to: string[] };
    let raw: string;
    try {
      const composed = composeEmail(encodeEmail(item.finding, config), new Date());
      envelope = { from: composed.envelope.from, to: [...composed.envelope.to] };
      raw = composed.raw;
    } catch (error) {
      const message = redact(error instanceof Error ? error.message : String(error), config.secrets);
      return { ok: false, error: new DeliveryError(`${what}: the message could not be built: ${message}`, { reason: 'encode', retryable: false }) };
    }
    // One deadline for the whole attempt: nodemailer's own timeouts bound each wait, not a relay that
    // trickles its answers.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), config.timeoutMs);
    try {
      await open().sendMail({ envelope, raw, signal: AbortSignal.any([signal, deadline.signal]) });
      return { ok: true };
    } catch (error) {
      if (signal.aborted) throw abortReason(signal);
      if (deadline.signal.aborted) {
        return {
          ok: false,
          error: new DeliveryError(`${what}: no answer within ${config.timeoutMs} ms (the message may or may not have been accepted)`, {
            reason: 'timeout',
            retryable: true,
          }),
        };
      }
      return { ok: false, error: classifySmtpFailure(error, what, config.secrets) };
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    name: config.name,
    type: 'email',
    notify: true,
    maxBatchItems: 1,
    // Exchange Online allows 3 connections per mailbox (432 4.3.2 beyond).
    maxConcurrency: EMAIL_MAX_CONNECTIONS,
    async send(items: readonly DeliveryItem[], signal: AbortSignal): Promise<AttemptResult[]> {
      const results: AttemptResult[] = [];
      for (const item of items) {
        if (signal.aborted) throw abortReason(signal);
        results.push(await sendOne(item, signal));
      }
      return results;
    },
    render(items: readonly DeliveryItem[]): PreviewFile[] {
      const date = new Date();
      return items.map((item) => ({
        name: `${config.name}/${emailFileName(item.finding, config)}`,
        content: composeEmail(encodeEmail(item.finding, config), date).raw,
      }));
    },
    async close(): Promise<void> {
      const current = transport;
      transport = undefined;
      current?.close();
    },
  };
}

/** The pooled SMTP transport for the relay, TLS as the configuration demands. */
function transportOptions(config: EmailConfig): SMTPPoolOptions & { pool: true } {
  const auth = config.auth ? authOptions(config.auth) : undefined;
  return {
    pool: true,
    maxConnections: EMAIL_MAX_CONNECTIONS,
    maxMessages: 100,
    // A message whose connection closed under it fails (ECONNECTION) instead of being sent again by the
    // pool: retrying is the delivery loop's business.
    maxRequeues: 0,
    idleTimeout: POOL_IDLE_TIMEOUT_MS,
    host: config.host,
    port: config.port,
    secure: config.secure,
    requireTLS: config.requireTLS,
    // A loopback relay (local testing) may be plain, or offer STARTTLS with a certificate made for another
    // name: use TLS when offered, accept its certificate, go on without it if the upgrade fails. Traffic
    // on loopback never leaves the machine. Everywhere else the certificate is checked (Node's default).
    ...(config.loopback ? { opportunisticTLS: true, tls: { rejectUnauthorized: false }, allowInternalNetworkInterfaces: true } : { tls: { minVersion: 'TLSv1.2' as const } }),
    connectionTimeout: config.timeoutMs,
    greetingTimeout: config.timeoutMs,
    socketTimeout: config.timeoutMs,
    dnsTimeout: config.timeoutMs,
    logger: false,
    debug: false,
    disableFileAccess: true,
    disableUrlAccess: true,
    ...(auth ? { auth } : {}),
  };
}

function authOptions(auth: EmailAuth): SMTPTransportAuthOptions {
  if (auth.type === 'password') return { user: auth.user, pass: auth.password.reveal() };
  return {
    type: 'OAuth2',
    user: auth.user,
    ...(auth.accessToken ? { accessToken: auth.accessToken.reveal() } : {}),
    ...(auth.clientId !== undefined ? { clientId: auth.clientId } : {}),
    ...(auth.clientSecret ? { clientSecret: auth.clientSecret.reveal() } : {}),
    ...(auth.refreshToken ? { refreshToken: auth.refreshToken.reveal() } : {}),
    ...(auth.accessUrl !== undefined ? { accessUrl: auth.accessUrl } : {}),
  };
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/** The fields nodemailer puts on its errors (see `NodemailerError`). */
interface SmtpFailure {
  readonly message: string;
  readonly code: string | undefined;
  readonly originalCode: string | undefined;
  readonly responseCode: number | undefined;
  readonly response: string | undefined;
  readonly command: string | undefined;
}

function failureOf(error: unknown): SmtpFailure {
  const fields = (error !== null && typeof error === 'object' ? error : {}) as Record<string, unknown>;
  const text = (key: string): string | undefined => (typeof fields[key] === 'string' ? fields[key] : undefined);
  const responseCode = fields['responseCode'];
  return {
    message: error instanceof Error ? error.message : String(error),
    code: text('code'),
    originalCode: text('originalCode'),
    responseCode: typeof responseCode === 'number' && Number.isInteger(responseCode) ? responseCode : undefined,
    response: text('response'),
    command: text('command'),
  };
}

/**
 * Classifies a failed SMTP attempt. In order: quota answers (retry, after {@link SMTP_QUOTA_RETRY_AFTER_MS});
 * 4xx and the other retryable replies of {@link SMTP_REPLY_TABLE}; refused credentials (configuration);
 * TLS that could not be set up (configuration); other 5xx (permanent; a refused sender or recipient is a
 * configuration error); connection failures and timeouts (retry). `what` names the destination; every
 * secret is removed from the message.
 */
export function classifySmtpFailure(error: unknown, what: string, secrets: readonly Secret[]): DeliveryError {
  const failure = failureOf(error);
  const { code, responseCode } = failure;
  const say = (summary: string): string => redact(`${what}: ${summary}`, secrets);
  const detail = shorten(failure.message);

  if (responseCode !== undefined) {
    const reply = shorten(failure.response ?? failure.message);
    const at = failure.command ? ` at ${shorten(failure.command, 40)}` : '';
    if (isQuotaAnswer(responseCode, reply)) {
      return new DeliveryError(say(`sending quota exceeded${at}: ${reply}`), { reason: 'smtp-quota', retryable: true, retryAfterMs: SMTP_QUOTA_RETRY_AFTER_MS });
    }
    const listed = SMTP_REPLY_TABLE[responseCode];
    const credentials = (code !== undefined && CREDENTIAL_ERROR_CODES.has(code)) || listed?.configuration === true;
    const tls = code !== undefined && TLS_ERROR_CODES.has(code);
    const retryable = listed?.retryable ?? (responseCode >= 400 && responseCode < 500);
    if (retryable) return new DeliveryError(say(`SMTP ${responseCode}${at}: ${reply}`), { reason: `smtp-${responseCode}`, retryable: true });
    if (tls) return new DeliveryError(say(`TLS could not be set up${at}: ${reply}`), { reason: 'tls', retryable: false, configuration: true });
    // A refused sender or recipient is the destination's `from` / `to`, the same for every record.
    const envelope = code === 'EENVELOPE' || /^(MAIL FROM|RCPT TO)/i.test(failure.command ?? '');
    return new DeliveryError(say(`SMTP ${responseCode}${at}: ${reply}`), {
      reason: `smtp-${responseCode}`,
      retryable: false,
      configuration: credentials || envelope,
    });
  }

  if (code !== undefined && CREDENTIAL_ERROR_CODES.has(code)) {
    return new DeliveryError(say(`authentication failed (${code}): ${detail}`), { reason: 'auth', retryable: false, configuration: true });
  }
  const original = failure.originalCode ?? '';
  if ((code !== undefined && TLS_ERROR_CODES.has(code)) || TLS_SOCKET_ERROR.test(original)) {
    return new DeliveryError(say(`TLS could not be set up (${[code, original].filter(Boolean).join('/')}): ${detail}`), {
      reason: 'tls',
      retryable: false,
      configuration: true,
    });
  }
  if (code === 'ETIMEDOUT') return new DeliveryError(say(`no answer in time: ${detail}`), { reason: 'timeout', retryable: true });
  if (code === 'ECONNECTION' && /maximum number of retries after connection was closed/i.test(failure.message)) {
    // The pool's wording (it re-queues nothing, see maxRequeues) for a pooled connection the relay had
    // closed, or one that closed before its greeting: not a byte of the message was sent.
    return new DeliveryError(say('the relay closed the connection before the message was sent (ECONNECTION)'), { reason: 'connection', retryable: true });
  }
  if (code !== undefined && (RETRYABLE_SMTP_ERROR_CODES.has(code) || RETRYABLE_SMTP_ERROR_CODES.has(original))) {
    return new DeliveryError(say(`connection failed (${[code, original].filter(Boolean).join('/')}): ${detail}`), {
      reason: code === 'EDNS' ? 'dns' : 'connection',
      retryable: true,
    });
  }
  if (code === 'EPROTOCOL') {
    // The other end does not speak SMTP (a wrong port, an HTTPS endpoint): the same every time.
    return new DeliveryError(say(`the relay's answer is not SMTP: ${detail}`), { reason: 'smtp-protocol', retryable: false, configuration: true });
  }
  if (code === 'ECONFIG' || code === 'EENVELOPE' || code === 'EMAXRECIPIENTS') {
    return new DeliveryError(say(`${detail} (${code})`), { reason: `error-${code}`, retryable: false, configuration: true });
  }
  // Unknown: another attempt costs little, and the retry loop's caps end it; the record is never dropped.
  return new DeliveryError(say(code ? `${detail} (${code})` : detail), { reason: code ? `error-${code}` : 'error', retryable: true });
}

/** One line, at most `max` characters. */
function shorten(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
