/**
 * The `email` sink against a real SMTP server (test/support/smtpServer.ts): delivery, every failure class a
 * relay can answer with, credentials and TLS, and the settings it is configured from.
 */
import { createServer } from 'node:net';
import type { AxiosInstance } from 'axios';
import { simpleParser, type AddressObject } from 'mailparser';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.js';
import type { Finding } from '../../src/model/finding.js';
import type { Destination } from '../../src/routing/types.js';
import { closeHttpClient, createHttpClient } from '../../src/sinks/http.js';
import { SinkConfigError, type SinkContext } from '../../src/sinks/settings.js';
import type { DeliveryError, DeliveryItem, Sink } from '../../src/sinks/sink.js';
import { readEmailConfig } from '../../src/sinks/email/config.js';
import { encodeEmail } from '../../src/sinks/email/encode.js';
import {
  classifySmtpFailure,
  createEmailSink,
  createEmailSinkFromConfig,
  SMTP_QUOTA_RETRY_AFTER_MS,
  SMTP_REPLY_TABLE,
} from '../../src/sinks/email/sink.js';
import { makeAlert, makeVulnerability } from '../support/findings.js';
import { SMTP_ANSWERS, startSmtpServer, type SmtpServerOptions, type SmtpStandIn } from '../support/smtpServer.js';

const PASSWORD = 'S3cret-Pa55word!';
const USER = 'forwarder@contoso.example';
const TOKEN = 'ya29.secret-access-token-value';

let http: AxiosInstance;
beforeAll(() => {
  http = createHttpClient();
});
afterAll(() => closeHttpClient(http));

/** Servers and sinks of the running test, stopped after it. */
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function server(options: SmtpServerOptions = {}): Promise<SmtpStandIn> {
  const started = await startSmtpServer(options);
  cleanup.push(() => started.stop());
  return started;
}

function destination(settings: Record<string, unknown>, name = 'oncall-email'): Destination {
  return { name, type: 'email', notify: true, dedupe: true, settings, envRefs: [], line: 1 };
}

function context(env: Record<string, string>, previewOnly = false): SinkContext {
  return { env, http, ...(previewOnly ? { previewOnly: true } : {}) };
}

const ADDRESSES = {
  from: 'Defender for Cloud <defender@contoso.example>',
  to: ['soc@contoso.example', 'oncall@contoso.example'],
  cc: ['Platform lead <lead@contoso.example>'],
};

/** A sink to `smtpUrl` (given through the environment, as the rules file must). */
function sink(smtpUrl: string, settings: Record<string, unknown> = {}, env: Record<string, string> = {}): Sink {
  const created = createEmailSink(destination({ smtpUrl: '${SMTP_URL}', ...ADDRESSES, ...settings }), context({ SMTP_URL: smtpUrl, ...env }));
  cleanup.push(() => created.close());
  return created;
}

function item(finding: Finding = makeAlert()): DeliveryItem {
  return { input: 'test.json', finding };
}

/** One attempt for one record: the error, or undefined when delivered. */
async function attempt(target: Sink, finding: Finding = makeAlert()): Promise<DeliveryError | undefined> {
  const [result] = await target.send([item(finding)], new AbortController().signal);
  if (result === undefined) throw new Error('no result');
  return result.ok ? undefined : result.error;
}

async function failure(target: Sink, finding: Finding = makeAlert()): Promise<DeliveryError> {
  const error = await attempt(target, finding);
  if (error === undefined) throw new Error('expected the attempt to fail, it was delivered');
  return error;
}

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  const list = field === undefined ? [] : Array.isArray(field) ? field : [field];
  return list.flatMap((entry) => entry.value.map((mailbox) => mailbox.address ?? ''));
}

/** No secret in the message: neither the password (plain or as AUTH would encode it), nor the URL, nor a token. */
function expectNoSecrets(error: DeliveryError, smtpUrl: string): void {
  for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), Buffer.from(PASSWORD).toString('base64'), smtpUrl, TOKEN]) {
    expect(error.message).not.toContain(secret);
  }
}

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('delivery', () => {
  it('sends one e-mail per record, exactly as encoded: from, to, cc, subject, both parts, headers', async () => {
    const smtp = await server();
    const target = sink(`smtp://127.0.0.1:${smtp.port}`);
    const finding = makeAlert({ link: 'https://portal.azure.com/#blade/x', remediation: ['Check the binding.'] });
    expect(await attempt(target, finding)).toBeUndefined();

    expect(smtp.messages).toHaveLength(1);
    const [message] = smtp.messages;
    const expected = encodeEmail(finding, readEmailConfig(destination({ smtpUrl: '${SMTP_URL}', ...ADDRESSES }), context({ SMTP_URL: `smtp://127.0.0.1:${smtp.port}` })));
    expect(message?.envelope).toEqual({
      mailFrom: 'defender@contoso.example',
      rcptTo: ['soc@contoso.example', 'oncall@contoso.example', 'lead@contoso.example'],
    });
    const parsed = message?.parsed;
    expect(parsed?.subject).toBe('[Defender] Medium alert: Role binding to the cluster-admin role detected');
    expect(parsed?.from?.value).toEqual([{ name: 'Defender for Cloud', address: 'defender@contoso.example' }]);
    expect(addresses(parsed?.to)).toEqual(['soc@contoso.example', 'oncall@contoso.example']);
    expect(addresses(parsed?.cc)).toEqual(['lead@contoso.example']);
    expect(parsed?.text).toBe(expected.text);
    expect(parsed?.html).toBe(expected.html);
    expect(parsed?.messageId).toBe(expected.messageId);
    expect(parsed?.headers.get('x-defender-severity')).toBe('Medium');
    expect(parsed?.headers.get('x-defender-id')).toBe(finding.id);
    expect(parsed?.headers.has('bcc')).toBe(false);
    expect(message?.secure).toBe(false);
  });

  it('several items: one e-mail and one result each, in order', async () => {
    const smtp = await server();
    const target = sink(`smtp://127.0.0.1:${smtp.port}`);
    expect(target.maxBatchItems).toBe(1);
    smtp.failNext('data', SMTP_ANSWERS.rejected550, 1);
    const results = await target.send([item(makeAlert({ title: 'first' })), item(makeAlert({ title: 'second' })), item(makeVulnerability())], new AbortController().signal);
    expect(results.map((result) => result.ok)).toEqual([false, true, true]);
    expect(smtp.messages.map((message) => message.parsed.subject)).toEqual(['[Defender] Medium alert: second', '[Defender] High finding: CVE-2024-3094']);
  });

  it('render: the .eml that would be sent, named after the destination, without the credentials', async () => {
    const smtp = await server();
    const url = `smtp://${encodeURIComponent(USER)}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${smtp.port}`;
    const target = sink(url);
    const files = target.render([item(makeVulnerability()), item()]);
    expect(files.map((file) => file.name)).toEqual([expect.stringMatching(/^oncall-email\/finding-CVE-2024-3094-[0-9a-f]{10}\.eml$/), expect.stringMatching(/^oncall-email\/alert-/)]);
    const content = String(files[0]?.content);
    for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), USER, url, `127.0.0.1:${smtp.port}`]) expect(content).not.toContain(secret);
    const parsed = await simpleParser(content);
    expect(parsed.subject).toBe('[Defender] High finding: CVE-2024-3094');
    expect(addresses(parsed.cc)).toEqual(['lead@contoso.example']);
    expect(smtp.connectionCount).toBe(0); // rendering sends nothing
  });

  it('render works in preview mode with no environment at all', () => {
    const preview = createEmailSink(destination({ smtpUrl: '${SMTP_URL}', from: '${MAIL_FROM}', to: ['${MAIL_TO}'] }), context({}, true));
    const [file] = preview.render([item()]);
    expect(String(file?.content)).toContain('Subject: [Defender] Medium alert: Role binding');
  });

  it('reconnects after the relay dropped the connection (pooled transport)', async () => {
    const smtp = await server();
    const target = sink(`smtp://127.0.0.1:${smtp.port}`);
    expect(await attempt(target)).toBeUndefined();
    // The relay ends the (pooled, reused) session before the message: nothing was sent, the loop may retry.
    smtp.failNext('mail', SMTP_ANSWERS.closing421);
    const dropped = await failure(target);
    expect(dropped).toMatchObject({ reason: 'connection', retryable: true, configuration: false });
    expect(dropped.message).toContain('closed the connection before the message was sent');
    expect(await attempt(target)).toBeUndefined();
    expect(smtp.messages).toHaveLength(2);
  });

  it('rejects (does not report a failure) when the caller aborts', async () => {
    const smtp = await server();
    const target = sink(`smtp://127.0.0.1:${smtp.port}`);
    const controller = new AbortController();
    controller.abort(new Error('shutting down'));
    await expect(target.send([item()], controller.signal)).rejects.toThrow('shutting down');
    expect(smtp.messages).toHaveLength(0);
  });
});

describe('failure classes', () => {
  const cases = [
    { name: '421 at connect (greeting)', stage: 'connect', answer: SMTP_ANSWERS.closing421, reason: 'smtp-421', retryable: true, configuration: false },
    { name: '421 after DATA', stage: 'data', answer: SMTP_ANSWERS.closing421, reason: 'smtp-421', retryable: true, configuration: false },
    { name: '432 4.3.2 too many connections', stage: 'mail', answer: SMTP_ANSWERS.tooManyConnections432, reason: 'smtp-432', retryable: true, configuration: false },
    { name: '451 at RCPT TO', stage: 'rcpt', answer: SMTP_ANSWERS.busy451, reason: 'smtp-451', retryable: true, configuration: false },
    { name: '451 after DATA', stage: 'data', answer: SMTP_ANSWERS.busy451, reason: 'smtp-451', retryable: true, configuration: false },
    { name: '550 recipient unknown (RCPT TO)', stage: 'rcpt', answer: SMTP_ANSWERS.recipientNotFound550, reason: 'smtp-550', retryable: false, configuration: true },
    { name: '550 content rejected (DATA)', stage: 'data', answer: SMTP_ANSWERS.rejected550, reason: 'smtp-550', retryable: false, configuration: false },
    { name: '554 5.2.0 submission quota', stage: 'data', answer: SMTP_ANSWERS.quotaExceeded554, reason: 'smtp-quota', retryable: true, configuration: false },
  ] as const;

  for (const { name, stage, answer, reason, retryable, configuration } of cases) {
    it(`${name}: ${retryable ? 'retryable' : 'permanent'}${configuration ? ', configuration' : ''}`, async () => {
      const smtp = await server();
      // Credentials in the URL (this relay offers no AUTH, so they are not used): they must not leak into messages.
      const url = `smtp://${encodeURIComponent(USER)}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${smtp.port}`;
      const target = sink(url);
      // Every recipient gets the scripted answer at RCPT TO, else nothing would be refused.
      smtp.failNext(stage, answer, stage === 'rcpt' ? 3 : 1);
      const error = await failure(target);
      expect(error.reason).toBe(reason);
      expect(error.retryable).toBe(retryable);
      expect(error.configuration).toBe(configuration);
      expect(error.message).toContain(`email "oncall-email"`);
      expect(error.message).toContain(String(answer.code));
      expectNoSecrets(error, url);
      expect(smtp.messages).toHaveLength(0);
      if (reason === 'smtp-quota') expect(error.retryAfterMs).toBe(SMTP_QUOTA_RETRY_AFTER_MS);
      else expect(error.retryAfterMs).toBeUndefined();
      // ...and the next attempt (the retry) is delivered.
      expect(await attempt(target)).toBeUndefined();
      expect(smtp.messages).toHaveLength(1);
    });
  }

  it('one recipient refused, the others accepted: delivered to those (not resent to all)', async () => {
    const smtp = await server();
    const target = sink(`smtp://127.0.0.1:${smtp.port}`);
    smtp.failNext('rcpt', SMTP_ANSWERS.recipientNotFound550, 1);
    expect(await attempt(target)).toBeUndefined();
    expect(smtp.messages[0]?.envelope.rcptTo).toEqual(['oncall@contoso.example', 'lead@contoso.example']);
  });

  it('connection refused: retryable, no secret in the message', async () => {
    const port = await closedPort();
    const url = `smtp://${encodeURIComponent(USER)}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}`;
    const error = await failure(sink(url));
    expect(error).toMatchObject({ reason: 'connection', retryable: true, configuration: false });
    expect(error.message).toContain('ECONNREFUSED');
    expectNoSecrets(error, url);
  });

  it('no answer within timeoutMs: retryable timeout', async () => {
    const smtp = await server();
    const target = sink(`smtp://127.0.0.1:${smtp.port}`, { timeoutMs: 1_000 });
    smtp.hangNextData();
    const error = await failure(target);
    expect(error).toMatchObject({ reason: 'timeout', retryable: true });
  });
});

describe('credentials', () => {
  it('AUTH with user:password from smtpUrl', async () => {
    const smtp = await server({ credentials: { username: USER, password: PASSWORD } });
    const target = sink(`smtp://${encodeURIComponent(USER)}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${smtp.port}`);
    expect(await attempt(target)).toBeUndefined();
    expect(smtp.authAttempts).toEqual([{ method: 'PLAIN', username: USER, accepted: true }]);
    expect(smtp.messages[0]?.user).toBe(USER);
  });

  it('AUTH with the username / password settings', async () => {
    const smtp = await server({ credentials: { username: USER, password: PASSWORD } });
    const target = sink(`smtp://127.0.0.1:${smtp.port}`, { username: USER, password: '${SMTP_PASSWORD}' }, { SMTP_PASSWORD: PASSWORD });
    expect(await attempt(target)).toBeUndefined();
    expect(smtp.messages[0]?.user).toBe(USER);
  });

  it('535 on AUTH: permanent configuration error, neither the password nor the URL in the message', async () => {
    const smtp = await server({ credentials: { username: USER, password: 'the-right-one' } });
    const url = `smtp://${encodeURIComponent(USER)}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${smtp.port}`;
    const error = await failure(sink(url));
    expect(error).toMatchObject({ reason: 'smtp-535', retryable: false, configuration: true });
    expect(error.message).toContain('5.7.139');
    expectNoSecrets(error, url);
    expect(smtp.authAttempts).toEqual([{ method: 'PLAIN', username: USER, accepted: false }]);
  });

  it('scripted 535 with the settings password: same class, no secret', async () => {
    const smtp = await server({ credentials: { username: USER, password: PASSWORD } });
    smtp.failNext('auth', SMTP_ANSWERS.authFailed535);
    const url = `smtp://127.0.0.1:${smtp.port}`;
    const error = await failure(sink(url, { username: USER, password: '${SMTP_PASSWORD}' }, { SMTP_PASSWORD: PASSWORD }));
    expect(error).toMatchObject({ reason: 'smtp-535', configuration: true, retryable: false });
    expectNoSecrets(error, url);
  });

  it('no credentials where the relay requires them: 530, configuration', async () => {
    const smtp = await server({ credentials: { username: USER, password: PASSWORD } });
    const error = await failure(sink(`smtp://127.0.0.1:${smtp.port}`));
    expect(error).toMatchObject({ reason: 'smtp-530', retryable: false, configuration: true });
  });

  it('XOAUTH2 with an access token', async () => {
    const smtp = await server({ oauth2: { user: USER, accessToken: TOKEN } });
    const target = sink(`smtp://127.0.0.1:${smtp.port}`, { oauth2: { user: USER, accessToken: '${SMTP_TOKEN}' } }, { SMTP_TOKEN: TOKEN });
    expect(await attempt(target)).toBeUndefined();
    expect(smtp.authAttempts).toEqual([{ method: 'XOAUTH2', username: USER, accepted: true }]);
  });

  it('XOAUTH2 with a refused token: configuration, the token not in the message', async () => {
    const smtp = await server({ oauth2: { user: USER, accessToken: 'another-token' } });
    const url = `smtp://127.0.0.1:${smtp.port}`;
    const error = await failure(sink(url, { oauth2: { user: USER, accessToken: '${SMTP_TOKEN}' } }, { SMTP_TOKEN: TOKEN }));
    expect(error).toMatchObject({ retryable: false, configuration: true });
    expectNoSecrets(error, url);
  });
});

describe('TLS', () => {
  it('STARTTLS on a loopback relay with a self-signed certificate: used, delivered', async () => {
    const smtp = await server({ starttls: true, credentials: { username: USER, password: PASSWORD } });
    const target = sink(`smtp://127.0.0.1:${smtp.port}`, { username: USER, password: '${SMTP_PASSWORD}' }, { SMTP_PASSWORD: PASSWORD });
    expect(await attempt(target)).toBeUndefined();
    expect(smtp.messages[0]?.secure).toBe(true);
  });

  it('smtps:// (implicit TLS) to a loopback relay: delivered over TLS', async () => {
    const smtp = await server({ implicitTls: true });
    expect(await attempt(sink(`smtps://127.0.0.1:${smtp.port}`))).toBeUndefined();
    expect(smtp.messages[0]?.secure).toBe(true);
  });

  it('TLS required (smtp:// to a non-loopback host) but STARTTLS not offered: permanent configuration error', async () => {
    const smtp = await server();
    const config = readEmailConfig(destination({ smtpUrl: '${SMTP_URL}', ...ADDRESSES }), context({ SMTP_URL: `smtp://127.0.0.1:${smtp.port}` }));
    // The rule a non-loopback host gets, pointed at the local relay (which offers no STARTTLS).
    const target = createEmailSinkFromConfig({ ...config, requireTLS: true, loopback: false });
    cleanup.push(() => target.close());
    const error = await failure(target);
    expect(error).toMatchObject({ reason: 'tls', retryable: false, configuration: true });
    expect(smtp.messages).toHaveLength(0);
  });

  it('smtps:// to a relay that speaks plain SMTP: permanent configuration error', async () => {
    const smtp = await server();
    const error = await failure(sink(`smtps://127.0.0.1:${smtp.port}`, { timeoutMs: 5_000 }));
    expect(error).toMatchObject({ reason: 'tls', retryable: false, configuration: true });
  });
});

describe('configuration', () => {
  const read = (smtpUrl: string, settings: Record<string, unknown> = {}, env: Record<string, string> = {}) =>
    readEmailConfig(destination({ smtpUrl: '${SMTP_URL}', ...ADDRESSES, ...settings }), context({ SMTP_URL: smtpUrl, ...env }));
  const refusal = (smtpUrl: string, settings: Record<string, unknown> = {}, env: Record<string, string> = {}): SinkConfigError => {
    try {
      read(smtpUrl, settings, env);
    } catch (error) {
      if (error instanceof SinkConfigError) return error;
      throw error;
    }
    throw new Error('expected a SinkConfigError');
  };

  it('smtp:// to a remote relay requires STARTTLS; smtps:// is implicit TLS; defaults 587 / 465', () => {
    expect(read('smtp://smtp.office365.com')).toMatchObject({ host: 'smtp.office365.com', port: 587, secure: false, requireTLS: true, loopback: false });
    expect(read('smtps://smtp.example.com')).toMatchObject({ port: 465, secure: true, requireTLS: false });
    expect(read('smtp://smtp.azurecomm.net:2525')).toMatchObject({ port: 2525, requireTLS: true });
  });

  it('smtp:// to a loopback relay does not require TLS', () => {
    for (const host of ['127.0.0.1', '127.3.2.1', 'localhost', '[::1]']) {
      expect(read(`smtp://${host}:2525`), host).toMatchObject({ requireTLS: false, loopback: true, secure: false });
    }
  });

  it('refuses other schemes, naming the key and never the URL', () => {
    for (const url of [`http://${USER}:${PASSWORD}@relay.example:25`, 'https://relay.example/', 'ftp://relay.example', 'relay.example:587', 'smtp://relay.example/path?pool=true']) {
      const error = refusal(url);
      expect(error.message, url).toContain('destinations.oncall-email.smtpUrl (${SMTP_URL})');
      expect(error.message, url).not.toContain('relay.example');
      expect(error.message, url).not.toContain(PASSWORD);
    }
    expect(refusal('http://relay.example').message).toContain('must use smtps:// (TLS) or smtp:// (STARTTLS)');
  });

  it('credentials: from the URL (percent-decoded), from username/password, or oauth2 — exactly one', () => {
    const fromUrl = read(`smtp://${encodeURIComponent(USER)}:${encodeURIComponent(PASSWORD)}@relay.example`);
    expect(fromUrl.auth?.type).toBe('password');
    expect(fromUrl.auth?.type === 'password' ? fromUrl.auth.password.reveal() : '').toBe(PASSWORD);
    expect(JSON.stringify(fromUrl)).not.toContain(PASSWORD);
    const settings = read('smtp://relay.example', { username: 'apikey', password: '${PW}' }, { PW: PASSWORD });
    expect(settings.auth).toMatchObject({ type: 'password', user: 'apikey' });
    expect(refusal(`smtp://u:${PASSWORD}@relay.example`, { username: 'apikey', password: '${PW}' }, { PW: PASSWORD }).message).toContain('more than once');
    expect(refusal('smtp://relay.example', { username: 'apikey' }).message).toContain('destinations.oncall-email.password: required with username');
    expect(refusal('smtp://relay.example', { password: '${PW}' }, { PW: PASSWORD }).message).toContain('destinations.oncall-email.username: required');
    expect(refusal('smtp://relay.example', { password: '${PW}' }).message).toContain('environment variable PW is not set');
  });

  it('oauth2: an access token, or client credentials with a refresh token and an explicit token endpoint', () => {
    const token = read('smtp://smtp.office365.com', { oauth2: { user: USER, accessToken: '${TOKEN}' } }, { TOKEN });
    expect(token.auth).toMatchObject({ type: 'oauth2', user: USER });
    const refreshing = {
      user: USER,
      clientId: 'app-id',
      clientSecret: '${CLIENT_SECRET}',
      refreshToken: '${REFRESH}',
      accessUrl: 'https://login.microsoftonline.com/tenant/oauth2/v2.0/token',
    };
    const env = { CLIENT_SECRET: 'client-secret-value', REFRESH: 'refresh-token-value' };
    expect(read('smtp://smtp.office365.com', { oauth2: refreshing }, env).auth).toMatchObject({ type: 'oauth2', clientId: 'app-id' });
    expect(refusal('smtp://smtp.office365.com', { oauth2: { ...refreshing, accessUrl: undefined } }, env).message).toContain('destinations.oncall-email.oauth2.accessUrl: required');
    expect(refusal('smtp://smtp.office365.com', { oauth2: { user: USER } }).message).toContain('destinations.oncall-email.oauth2: needs accessToken');
    expect(refusal('smtp://smtp.office365.com', { oauth2: { user: USER, accessToken: '${TOKEN}' } }).message).toContain(
      'destinations.oncall-email.oauth2.accessToken: environment variable TOKEN is not set',
    );
  });

  it('addresses: ${ENV} values may list several, and are checked', () => {
    const config = read('smtp://relay.example', { to: ['${ONCALL}'], cc: ['x@contoso.example'] }, { ONCALL: 'a@contoso.example, "Doe, J" <j@contoso.example>' });
    expect(config.to).toEqual([
      { name: '', address: 'a@contoso.example' },
      { name: 'Doe, J', address: 'j@contoso.example' },
    ]);
    expect(config.from).toEqual({ name: 'Defender for Cloud', address: 'defender@contoso.example' });
    expect(refusal('smtp://relay.example', { to: ['${ONCALL}'] }, { ONCALL: 'not an address' }).message).toContain('destinations.oncall-email.to[0]: is not an e-mail address');
    expect(refusal('smtp://relay.example', { to: ['${ONCALL}'] }, { ONCALL: 'a@x.example\r\nBcc: b@x.example' }).message).toContain('control characters');
    expect(refusal('smtp://relay.example', { to: ['${ONCALL}'] }).message).toContain('destinations.oncall-email.to[0]: environment variable ONCALL is not set');
  });

  it('subjectPrefix and timeoutMs: defaults and overrides', () => {
    expect(read('smtp://relay.example')).toMatchObject({ subjectPrefix: '[Defender]', timeoutMs: 30_000 });
    expect(read('smtp://relay.example', { subjectPrefix: '', timeoutMs: 5_000 })).toMatchObject({ subjectPrefix: '', timeoutMs: 5_000 });
  });
});

describe('classifySmtpFailure (the table)', () => {
  /** Errors shaped as nodemailer makes them. */
  const smtpError = (fields: Record<string, unknown>): Error => Object.assign(new Error(String(fields['message'] ?? 'failed')), fields);
  const rows: [string, Record<string, unknown>, { reason: string; retryable: boolean; configuration: boolean }][] = [
    ['421', { code: 'EPROTOCOL', responseCode: 421, response: '421 4.3.2 Service not available', command: 'CONN' }, { reason: 'smtp-421', retryable: true, configuration: false }],
    ['432 4.3.2', { code: 'EMESSAGE', responseCode: 432, response: '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded' }, { reason: 'smtp-432', retryable: true, configuration: false }],
    ['451', { code: 'EMESSAGE', responseCode: 451, response: '451 4.7.500 Server busy', command: 'DATA' }, { reason: 'smtp-451', retryable: true, configuration: false }],
    ['454 on AUTH is temporary', { code: 'EAUTH', responseCode: 454, response: '454 4.7.0 Temporary authentication failure' }, { reason: 'smtp-454', retryable: true, configuration: false }],
    ['503', { code: 'EPROTOCOL', responseCode: 503, response: '503 5.5.1 Bad sequence of commands' }, { reason: 'smtp-503', retryable: true, configuration: false }],
    ['535', { code: 'EAUTH', responseCode: 535, response: '535 5.7.139 Authentication unsuccessful', command: 'AUTH PLAIN' }, { reason: 'smtp-535', retryable: false, configuration: true }],
    ['550 at RCPT TO', { code: 'EENVELOPE', responseCode: 550, response: '550 5.1.10 RecipientNotFound', command: 'RCPT TO' }, { reason: 'smtp-550', retryable: false, configuration: true }],
    ['550 at MAIL FROM (send as denied)', { code: 'EENVELOPE', responseCode: 550, response: '550 5.7.60 SMTP; Client does not have permissions to send as this sender', command: 'MAIL FROM' }, { reason: 'smtp-550', retryable: false, configuration: true }],
    ['550 after DATA', { code: 'EMESSAGE', responseCode: 550, response: '550 5.7.1 Message rejected', command: 'DATA' }, { reason: 'smtp-550', retryable: false, configuration: false }],
    ['552 too big', { code: 'EMESSAGE', responseCode: 552, response: '552 5.3.4 Message size exceeds fixed maximum message size' }, { reason: 'smtp-552', retryable: false, configuration: false }],
    ['554 5.2.0 quota', { code: 'EMESSAGE', responseCode: 554, response: '554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message' }, { reason: 'smtp-quota', retryable: true, configuration: false }],
    ['550 daily quota', { code: 'EMESSAGE', responseCode: 550, response: '550 5.4.5 Daily user sending quota exceeded' }, { reason: 'smtp-quota', retryable: true, configuration: false }],
    ['554 other', { code: 'EMESSAGE', responseCode: 554, response: '554 5.6.0 Invalid message content' }, { reason: 'smtp-554', retryable: false, configuration: false }],
    ['STARTTLS not offered', { code: 'ETLS', responseCode: 502, response: '502 5.5.2 Error: command not recognized', command: 'STARTTLS' }, { reason: 'tls', retryable: false, configuration: true }],
    ['certificate refused', { code: 'ESOCKET', originalCode: 'ERR_TLS_CERT_ALTNAME_INVALID' }, { reason: 'tls', retryable: false, configuration: true }],
    ['EAUTH without a reply', { code: 'EAUTH', message: 'Missing credentials for "PLAIN"' }, { reason: 'auth', retryable: false, configuration: true }],
    ['connection refused', { code: 'ESOCKET', originalCode: 'ECONNREFUSED' }, { reason: 'connection', retryable: true, configuration: false }],
    ['connection closed', { code: 'ECONNECTION' }, { reason: 'connection', retryable: true, configuration: false }],
    ['connection reset', { code: 'ECONNRESET' }, { reason: 'connection', retryable: true, configuration: false }],
    ['DNS', { code: 'EDNS', originalCode: 'ENOTFOUND' }, { reason: 'dns', retryable: true, configuration: false }],
    ['timeout', { code: 'ETIMEDOUT' }, { reason: 'timeout', retryable: true, configuration: false }],
    ['not SMTP at all', { code: 'EPROTOCOL', message: 'Invalid greeting' }, { reason: 'smtp-protocol', retryable: false, configuration: true }],
    ['unknown', { message: 'something odd' }, { reason: 'error', retryable: true, configuration: false }],
  ];
  for (const [name, fields, expected] of rows) {
    it(name, () => {
      const error = classifySmtpFailure(smtpError(fields), 'email "x"', []);
      expect({ reason: error.reason, retryable: error.retryable, configuration: error.configuration }).toEqual(expected);
      expect(error.retryAfterMs).toBe(expected.reason === 'smtp-quota' ? SMTP_QUOTA_RETRY_AFTER_MS : undefined);
    });
  }

  it('every 4xx is retryable and every listed permanent code is not', () => {
    for (let code = 400; code < 500; code += 1) expect(classifySmtpFailure(smtpError({ responseCode: code, response: `${code} x` }), 'x', []).retryable, String(code)).toBe(true);
    for (const [code, row] of Object.entries(SMTP_REPLY_TABLE)) {
      expect(classifySmtpFailure(smtpError({ responseCode: Number(code), response: `${code} x` }), 'x', []).retryable, code).toBe(row.retryable);
    }
  });

  it('removes secrets the relay or the library quoted', () => {
    const error = classifySmtpFailure(smtpError({ code: 'EAUTH', responseCode: 535, response: `535 bad password ${PASSWORD} for smtp://u:${PASSWORD}@h` }), 'x', [new Secret(PASSWORD, '${PW}')]);
    expect(error.message).not.toContain(PASSWORD);
    expect(error.message).toContain('<redacted>');
  });
});
