/**
 * The routing rules' settings: `ROUTES_BLOB_URL` (a blob instead of the deployed file; a SAS in it is never
 * repeated) and `ROUTES_REFRESH_SECONDS`, validated by `readFunctionSettings` with precise messages.
 */
import { inspect } from 'node:util';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFunctionSettings, routesBlobUrlProblem, SettingsError } from '../../src/config/appSettings.js';
import { maskBlobUrl, parseBlobUrl } from '../../src/storage/rulesBlob.js';

const root = path.resolve(import.meta.dirname, '../..');
const SIG = 'c2lnbmF0dXJlU0VDUkVUc2lnbmF0dXJl';
const SAS = `sv=2025-05-05&se=2099-01-01T00%3A00%3A00Z&sr=b&sp=r&sig=${SIG}`;
const BLOB = 'https://stdefender.blob.core.windows.net/rules/routes.yaml';

/** Settings that pass, with the example rules as the deployed file. */
const ENV = {
  EVENTHUB_NAME: 'defender-export',
  EVENTHUB_CONSUMER_GROUP: 'forwarder',
  EVENTHUB_CONNECTION: 'Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=placeholder',
  ROUTES_FILE: path.join(root, 'config/routes.example.yaml'),
  AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=stdefender;AccountKey=a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5;EndpointSuffix=core.windows.net',
};

/** The problems `readFunctionSettings` names for `env` (none: an empty list). */
function problemsOf(env: Record<string, string | undefined>): readonly string[] {
  try {
    readFunctionSettings(env);
    return [];
  } catch (error) {
    if (error instanceof SettingsError) return error.problems;
    throw error;
  }
}

describe('ROUTES_BLOB_URL', () => {
  it('is not needed: without it the rules are the deployed file, checked to exist', () => {
    const settings = readFunctionSettings(ENV);
    expect(settings.routes).toEqual({ kind: 'file', path: ENV.ROUTES_FILE });
    expect(problemsOf({ ...ENV, ROUTES_FILE: '/nonexistent/routes.yaml' })).toEqual(['ROUTES_FILE points to /nonexistent/routes.yaml, which does not exist']);
  });

  it('replaces the deployed file when set: the file is then not required', () => {
    const settings = readFunctionSettings({ ...ENV, ROUTES_FILE: '/nonexistent/routes.yaml', ROUTES_BLOB_URL: ` ${BLOB} ` });
    expect(settings.routes).toMatchObject({ kind: 'blob', origin: BLOB, hasSas: false });
    expect(settings.routes.kind === 'blob' && settings.routes.url.reveal()).toBe(BLOB);
    // Azurite's path-style URLs over http, on the loopback address only.
    expect(problemsOf({ ...ENV, ROUTES_BLOB_URL: 'http://127.0.0.1:10000/devstoreaccount1/rules/routes.yaml' })).toEqual([]);
    expect(problemsOf({ ...ENV, ROUTES_BLOB_URL: 'http://localhost:10000/devstoreaccount1/rules/team/routes.yaml' })).toEqual([]);
  });

  it('accepts a read SAS, and keeps it out of every printed form of the settings', () => {
    const settings = readFunctionSettings({ ...ENV, ROUTES_BLOB_URL: `${BLOB}?${SAS}` });
    expect(settings.routes).toMatchObject({ kind: 'blob', origin: `${BLOB}?<redacted>`, hasSas: true });
    expect(settings.routes.kind === 'blob' && settings.routes.url.reveal()).toBe(`${BLOB}?${SAS}`);
    expect(JSON.stringify(settings)).not.toContain(SIG);
    expect(inspect(settings, { depth: 10 })).not.toContain(SIG);
    expect(`${settings.routes.kind === 'blob' ? settings.routes.url : ''}`).toBe('<redacted>');
  });

  it.each([
    ['not a URL', `stdefender/rules/routes.yaml?sig=${SIG}`, `ROUTES_BLOB_URL is not a URL: give the rules blob's URL, such as https://<account>.blob.core.windows.net/<container>/routes.yaml`],
    ['http to a remote host', 'http://stdefender.blob.core.windows.net/rules/routes.yaml', 'ROUTES_BLOB_URL (http://stdefender.blob.core.windows.net/rules/routes.yaml) must use https:// (http:// only for 127.0.0.1 or localhost, such as Azurite)'],
    ['another scheme', `ftp://stdefender.blob.core.windows.net/rules/routes.yaml?${SAS}`, 'ROUTES_BLOB_URL (ftp://stdefender.blob.core.windows.net/rules/routes.yaml?<redacted>) must use https:// (http:// only for 127.0.0.1 or localhost, such as Azurite)'],
    ['a container only', 'https://stdefender.blob.core.windows.net/rules', 'ROUTES_BLOB_URL (https://stdefender.blob.core.windows.net/rules) does not name a container and a blob: use https://<account>.blob.core.windows.net/<container>/routes.yaml'],
    ['a folder', `https://stdefender.blob.core.windows.net/rules/team/?${SAS}`, 'ROUTES_BLOB_URL (https://stdefender.blob.core.windows.net/rules/team/?<redacted>) does not name a container and a blob: use https://<account>.blob.core.windows.net/<container>/routes.yaml'],
    ['Azurite without the account', 'http://127.0.0.1:10000/rules/routes.yaml', 'ROUTES_BLOB_URL (http://127.0.0.1:10000/rules/routes.yaml) does not name a container and a blob: use https://<account>.blob.core.windows.net/<container>/routes.yaml (Azurite: http://127.0.0.1:<port>/<account>/<container>/<blob>)'],
    ['a query that is not a SAS', `${BLOB}?versionid=1`, `ROUTES_BLOB_URL (${BLOB}?<redacted>) has a query string that is not a SAS (no sig=): give the URL alone, for the forwarder's storage identity or connection, or with a read SAS`],
    ['a SAS without read', `${BLOB}?sv=2025-05-05&sp=w&sig=${SIG}`, `ROUTES_BLOB_URL (${BLOB}?<redacted>): the SAS does not allow reading (sp=w): it needs r`],
    ['an expired SAS', `${BLOB}?sv=2025-05-05&se=2020-01-01T00%3A00%3A00Z&sp=r&sig=${SIG}`, `ROUTES_BLOB_URL (${BLOB}?<redacted>): the SAS expired at 2020-01-01T00:00:00.000Z: issue a new one`],
    ['credentials', `https://user:${SIG}@stdefender.blob.core.windows.net/rules/routes.yaml`, `ROUTES_BLOB_URL must not hold a user name or password: authenticate with a SAS in the query string, or the forwarder's storage identity`],
    ['a fragment', `${BLOB}#top`, `ROUTES_BLOB_URL (${BLOB}) must not have a #fragment`],
  ])('refuses %s, naming the setting and never the SAS', (_case, url, message) => {
    const problems = problemsOf({ ...ENV, ROUTES_BLOB_URL: url });
    expect(problems).toEqual([message]);
    expect(problems.join('\n')).not.toContain(SIG);
  });

  it('checks the SAS expiry against the time given', () => {
    const url = `${BLOB}?sv=2025-05-05&se=2026-06-01T00%3A00%3A00Z&sp=r&sig=${SIG}`;
    expect(routesBlobUrlProblem(url, new Date('2026-05-31T23:59:59Z'))).toBeUndefined();
    expect(routesBlobUrlProblem(url, new Date('2026-06-01T00:00:00Z'))).toMatch(/the SAS expired at 2026-06-01T00:00:00.000Z/);
  });

  it('is reported together with every other problem', () => {
    expect(problemsOf({ ...ENV, EVENTHUB_NAME: '', ROUTES_BLOB_URL: 'http://example.com/a/b', ROUTES_REFRESH_SECONDS: '0' })).toEqual([
      'EVENTHUB_NAME is not set: the name of the Event Hub Defender exports to',
      'ROUTES_BLOB_URL (http://example.com/a/b) must use https:// (http:// only for 127.0.0.1 or localhost, such as Azurite)',
      'ROUTES_REFRESH_SECONDS must be a number of seconds from 5 to 3600 (an hour); it is "0"',
    ]);
  });
});

describe('ROUTES_REFRESH_SECONDS', () => {
  it('defaults to 60 seconds, and takes 5 to 3600', () => {
    expect(readFunctionSettings(ENV).routesRefreshMs).toBe(60_000);
    expect(readFunctionSettings({ ...ENV, ROUTES_REFRESH_SECONDS: '5' }).routesRefreshMs).toBe(5_000);
    expect(readFunctionSettings({ ...ENV, ROUTES_REFRESH_SECONDS: ' 3600 ' }).routesRefreshMs).toBe(3_600_000);
    expect(readFunctionSettings({ ...ENV, ROUTES_REFRESH_SECONDS: '' }).routesRefreshMs).toBe(60_000);
  });

  it.each(['4', '3601', 'soon', '-60', 'Infinity'])('refuses %j, saying the bounds', (value) => {
    expect(problemsOf({ ...ENV, ROUTES_REFRESH_SECONDS: value })).toEqual([`ROUTES_REFRESH_SECONDS must be a number of seconds from 5 to 3600 (an hour); it is "${value}"`]);
  });
});

describe('blob URLs', () => {
  it('are split into container and blob, path-style for Azurite and IP addresses', () => {
    expect(parseBlobUrl(new URL('https://acct.blob.core.windows.net/rules/team/routes%20v2.yaml'))).toEqual({ container: 'rules', blob: 'team/routes v2.yaml' });
    expect(parseBlobUrl(new URL('http://127.0.0.1:10000/devstoreaccount1/rules/routes.yaml'))).toEqual({ account: 'devstoreaccount1', container: 'rules', blob: 'routes.yaml' });
    expect(parseBlobUrl(new URL('http://localhost:10000/devstoreaccount1/rules'))).toBeUndefined();
    expect(parseBlobUrl(new URL('https://acct.blob.core.windows.net/'))).toBeUndefined();
  });

  it('are shown with their query string masked and their fragment dropped', () => {
    expect(maskBlobUrl(`${BLOB}?${SAS}`)).toBe(`${BLOB}?<redacted>`);
    expect(maskBlobUrl(`${BLOB}#x?sig=${SIG}`)).toBe(BLOB);
    expect(maskBlobUrl(`${BLOB}?`)).toBe(BLOB);
    expect(maskBlobUrl(BLOB)).toBe(BLOB);
  });
});
