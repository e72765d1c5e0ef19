/**
 * A real SMTP server for tests (the `smtp-server` package) on 127.0.0.1 and an ephemeral port: it accepts
 * mail, with or without AUTH PLAIN / LOGIN, optionally behind STARTTLS or implicit TLS (smtp-server's
 * built-in self-signed certificate), parses every message with `mailparser`, and records it with its
 * envelope. It can be scripted to answer the next commands of a stage the way Exchange Online and other
 * relays do when things go wrong: 421 (the server closes the connection), 432, 451, 550, the daily quota's
 * `554 5.2.0 ... SubmissionQuotaExceededException`, 535 on AUTH, or no answer at all.
 */
import type { Socket } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

/** Where in the session a scripted answer replaces the normal one. */
export type SmtpStage = 'connect' | 'auth' | 'mail' | 'rcpt' | 'data';

/** A reply: code and text as sent (the text carries its enhanced status code, like Exchange's do). */
export interface SmtpAnswer {
  readonly code: number;
  readonly text: string;
}

/** Failure answers as real relays word them (Exchange Online unless noted). */
export const SMTP_ANSWERS = Object.freeze({
  /** Any stage: the server ends the session (smtp-server closes the connection after a 421). */
  closing421: { code: 421, text: '4.3.2 Service not available, closing transmission channel' },
  /** Too many concurrent connections for the mailbox. */
  tooManyConnections432: { code: 432, text: '4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded' },
  /** Transient local problem (at RCPT TO or after DATA). */
  busy451: { code: 451, text: '4.7.500 Server busy. Please try again later from [127.0.0.1]. (AS761)' },
  /** The recipient does not exist: permanent. */
  recipientNotFound550: { code: 550, text: '5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup' },
  /** Rejected content: permanent. */
  rejected550: { code: 550, text: '5.7.1 Message rejected as spam by Content Filtering.' },
  /** Over the daily submission quota: a quota, retried later, never dropped. */
  quotaExceeded554: {
    code: 554,
    text: '5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception with message Cannot submit message.',
  },
  /** Credentials refused on AUTH. */
  authFailed535: { code: 535, text: '5.7.139 Authentication unsuccessful, the user credentials were incorrect.' },
} satisfies Record<string, SmtpAnswer>);

/** One message as the server received it. */
export interface ReceivedMessage {
  readonly envelope: { readonly mailFrom: string; readonly rcptTo: readonly string[] };
  readonly parsed: ParsedMail;
  /** The message exactly as it came after DATA. */
  readonly raw: Buffer;
  /** The authenticated user, when the client logged in. */
  readonly user: string | undefined;
  /** True when the session was encrypted (implicit TLS or STARTTLS). */
  readonly secure: boolean;
}

export interface AuthAttempt {
  readonly method: string;
  readonly username: string;
  readonly accepted: boolean;
}

export interface SmtpServerOptions {
  /** Require AUTH (PLAIN or LOGIN, also on a plain connection) with these credentials; mail without it gets 530. Default: AUTH not offered. */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** Offer XOAUTH2 and accept this user with this bearer token. */
  readonly oauth2?: { readonly user: string; readonly accessToken: string };
  /** Offer STARTTLS with the built-in self-signed certificate. Default: not offered. */
  readonly starttls?: boolean;
  /** TLS from the first byte (an `smtps://` port), built-in self-signed certificate. */
  readonly implicitTls?: boolean;
}

/** A running server. */
export interface SmtpStandIn {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Every message accepted, in order. */
  readonly messages: readonly ReceivedMessage[];
  readonly authAttempts: readonly AuthAttempt[];
  /** TCP connections accepted so far. */
  readonly connectionCount: number;
  /** Answers the next `times` commands of `stage` with `answer` (queued behind earlier scripts). */
  failNext(stage: SmtpStage, answer: SmtpAnswer, times?: number): void;
  /** The next message's DATA gets no answer at all (until `stop`). */
  hangNextData(): void;
  /** Closes the listener and every connection. Safe to call twice. */
  stop(): Promise<void>;
}

type Scripted = { readonly stage: SmtpStage; readonly answer: SmtpAnswer | 'hang' };

class ScriptedError extends Error {
  readonly responseCode: number;
  constructor(answer: SmtpAnswer) {
    super(answer.text);
    this.responseCode = answer.code;
  }
}

/** Starts a server on 127.0.0.1, port 0. */
export async function startSmtpServer(options: SmtpServerOptions = {}): Promise<SmtpStandIn> {
  const messages: ReceivedMessage[] = [];
  const authAttempts: AuthAttempt[] = [];
  const script: Scripted[] = [];
  const sockets = new Set<Socket>();
  const hanging: (() => void)[] = [];
  let connectionCount = 0;

  /** The scripted answer for this stage, consumed; undefined when the stage behaves normally. */
  const take = (stage: SmtpStage): Scripted['answer'] | undefined => {
    const index = script.findIndex((entry) => entry.stage === stage);
    if (index < 0) return undefined;
    const [entry] = script.splice(index, 1);
    return entry?.answer;
  };
  const failure = (stage: SmtpStage): ScriptedError | undefined => {
    const answer = take(stage);
    return answer === undefined || answer === 'hang' ? undefined : new ScriptedError(answer);
  };

  const disabledCommands: string[] = [];
  const requiresAuth = options.credentials !== undefined || options.oauth2 !== undefined;
  if (!requiresAuth) disabledCommands.push('AUTH');
  if (!options.starttls) disabledCommands.push('STARTTLS');

  const serverOptions: SMTPServerOptions = {
    secure: options.implicitTls === true,
    name: 'smtp.test.invalid',
    logger: false,
    disableReverseLookup: true,
    disabledCommands,
    authOptional: !requiresAuth,
    allowInsecureAuth: true,
    authMethods: [...(options.credentials ? ['PLAIN', 'LOGIN'] : []), ...(options.oauth2 ? ['XOAUTH2'] : [])],
    closeTimeout: 1_000,
    onConnect(_session, callback) {
      connectionCount += 1;
      callback(failure('connect') ?? null);
    },
    onAuth(auth, _session, callback) {
      const username = auth.username ?? '';
      const scripted = failure('auth');
      const { credentials, oauth2 } = options;
      const accepted =
        scripted === undefined &&
        (auth.method === 'XOAUTH2'
          ? oauth2 !== undefined && username === oauth2.user && auth.accessToken === oauth2.accessToken
          : credentials !== undefined && username === credentials.username && auth.password === credentials.password);
      authAttempts.push({ method: auth.method, username, accepted });
      if (scripted) return callback(scripted);
      // XOAUTH2 refusals go as a JSON challenge first (RFC 7628), then 535: what Google and Microsoft send.
      if (!accepted && auth.method === 'XOAUTH2') return callback(null, { data: { status: '401', schemes: 'bearer' } });
      if (!accepted) return callback(new ScriptedError(SMTP_ANSWERS.authFailed535));
      return callback(null, { user: username });
    },
    onMailFrom(_address, _session, callback) {
      callback(failure('mail') ?? null);
    },
    onRcptTo(_address, _session, callback) {
      callback(failure('rcpt') ?? null);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const answer = take('data');
        if (answer === 'hang') {
          hanging.push(() => callback(new ScriptedError(SMTP_ANSWERS.closing421)));
          return;
        }
        if (answer !== undefined) return callback(new ScriptedError(answer));
        const raw = Buffer.concat(chunks);
        const mailFrom = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        const rcptTo = session.envelope.rcptTo.map((recipient) => recipient.address);
        const user = typeof session.user === 'string' ? session.user : undefined;
        simpleParser(raw).then(
          (parsed) => {
            messages.push({ envelope: { mailFrom, rcptTo }, parsed, raw, user, secure: session.secure });
            callback(null, 'OK queued as test');
          },
          (error: unknown) => callback(new ScriptedError({ code: 554, text: `5.6.0 unparseable message: ${String(error)}` })),
        );
      });
    },
  };
  const server = new SMTPServer(serverOptions);
  server.on('error', () => {
    // Client sockets that break (a test that drops a connection) are reported here; nothing to do.
  });
  server.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.server.address();
      if (address === null || typeof address === 'string') reject(new Error('smtp server: no port'));
      else resolve(address.port);
    });
  });

  let stopped: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    messages,
    authAttempts,
    get connectionCount() {
      return connectionCount;
    },
    failNext(stage, answer, times = 1) {
      for (let i = 0; i < times; i += 1) script.push({ stage, answer });
    },
    hangNextData() {
      script.push({ stage: 'data', answer: 'hang' });
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        for (const release of hanging.splice(0)) release();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return stopped;
    },
  };
}
