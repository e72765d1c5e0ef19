/**
 * The pure parts of re-drive: the spacing table, when a letter is due, the re-drive state as blob metadata
 * and as a sidecar, reading a letter back, the `--max-age` durations, and the run.summary line.
 */
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/cli/redrive.js';
import {
  accountRedrive,
  DEFAULT_REDRIVE_MAX_INTERVAL_MS,
  DEFAULT_REDRIVE_MIN_INTERVAL_MS,
  emptyRedriveCounts,
  isRedriveDue,
  redriveIntervalMs,
} from '../../src/delivery/redrive.js';
import {
  encodeRedriveState,
  isExpiredLetterName,
  isLiveLetterName,
  parseDeadLetter,
  parseRedriveState,
  readRedriveMetadata,
  withRedriveMetadata,
} from '../../src/storage/deadLetterEntry.js';

describe('re-drive spacing', () => {
  it('doubles from the minimum interval per attempt, up to the maximum (defaults: 60 s, 6 h)', () => {
    const table = [1, 2, 3, 4, 5, 8, 9, 10, 30].map((attempts) => [attempts, redriveIntervalMs(attempts, DEFAULT_REDRIVE_MIN_INTERVAL_MS, DEFAULT_REDRIVE_MAX_INTERVAL_MS) / 1000]);
    expect(table).toEqual([
      [1, 60],
      [2, 120],
      [3, 240],
      [4, 480],
      [5, 960],
      [8, 7_680],
      [9, 15_360],
      [10, 21_600],
      [30, 21_600],
    ]);
    expect(redriveIntervalMs(0, 1_000, 10_000)).toBe(1_000);
  });

  it('a letter is due when never tried or once its next attempt time has passed; force makes every letter due', () => {
    const now = new Date('2026-11-28T12:00:00.000Z');
    expect(isRedriveDue({ redrive: { attempts: 0 } }, now)).toBe(true);
    expect(isRedriveDue({ redrive: { attempts: 2, nextAttemptAt: '2026-11-28T12:00:00.000Z' } }, now)).toBe(true);
    expect(isRedriveDue({ redrive: { attempts: 2, nextAttemptAt: '2026-11-28T12:00:00.001Z' } }, now)).toBe(false);
    expect(isRedriveDue({ redrive: { attempts: 2, nextAttemptAt: '2026-11-28T12:00:00.001Z' } }, now, true)).toBe(true);
  });
});

describe('re-drive state', () => {
  it('round-trips through blob metadata over the letter\'s own, replacing an earlier state', () => {
    const base = { destination: 'teams', reason: 'http-503', attempts: '5', kind: 'alert', redriveattempts: '1', lastreason: 'old', expiredat: '2026-01-01T00:00:00.000Z' };
    const state = { attempts: 2, nextAttemptAt: '2026-11-28T12:02:00.000Z', lastAttemptAt: '2026-11-28T12:00:00.000Z', lastReason: 'http-429' };
    const metadata = withRedriveMetadata(base, state);
    expect(metadata).toEqual({
      destination: 'teams',
      reason: 'http-503',
      attempts: '5',
      kind: 'alert',
      redriveattempts: '2',
      nextattemptat: '2026-11-28T12:02:00.000Z',
      lastattemptat: '2026-11-28T12:00:00.000Z',
      lastreason: 'http-429',
    });
    expect(readRedriveMetadata(metadata)).toEqual(state);
    // Header-safe: a reason never carries a line break into an HTTP header.
    expect(withRedriveMetadata({}, { attempts: 1, lastReason: 'smtp 4.2.1\r\nbusy' })['lastreason']).toBe('smtp 4.2.1??busy');
  });

  it('reads missing or malformed fields as absent, and a sidecar that does not parse as a fresh state', () => {
    expect(readRedriveMetadata(undefined)).toEqual({ attempts: 0 });
    expect(readRedriveMetadata({ redriveattempts: '-3', nextattemptat: 'tomorrow', lastreason: '' })).toEqual({ attempts: 0 });
    expect(parseRedriveState(encodeRedriveState({ attempts: 4, expiredAt: '2026-11-28T00:00:00.000Z' }))).toEqual({ attempts: 4, expiredAt: '2026-11-28T00:00:00.000Z' });
    expect(parseRedriveState('{"attempts": 2, "nextAttemptAt": "2026-11-28T00:00:00Z"')).toEqual({ attempts: 0 });
  });

  it('tells live letter names from expired ones, a destination named "expired" included', () => {
    expect(isLiveLetterName('teams/2026/11/28/0-1-abc.json')).toBe(true);
    expect(isLiveLetterName('expired/2026/11/28/0-1-abc.json')).toBe(true);
    expect(isLiveLetterName('expired/teams/2026/11/28/0-1-abc.json')).toBe(false);
    expect(isExpiredLetterName('expired/teams/2026/11/28/0-1-abc.json')).toBe(true);
    expect(isExpiredLetterName('expired/2026/11/28/0-1-abc.json')).toBe(false);
    expect(isLiveLetterName('teams/2026/11/28/0-1-abc.json.redrive')).toBe(false);
    expect(isLiveLetterName('teams/2026/11/28/0-1-abc.json.1234.ab12cd34.tmp')).toBe(false);
  });
});

describe('reading a letter back', () => {
  it('checks the format and what re-drive relies on', () => {
    const letter = {
      format: 'defender-forwarder.deadletter/v1',
      destination: 'teams',
      destinationType: 'teams',
      input: 'eh:0/1',
      finding: { kind: 'alert', id: 'a', severity: 'High', status: 'New', title: 't' },
      deadLetteredAt: '2026-11-28T00:00:00.000Z',
      record: { SystemAlertId: 'a' },
    };
    expect(parseDeadLetter(JSON.stringify(letter))).toEqual({ ok: true, letter });
    expect(parseDeadLetter('[1]')).toEqual({ ok: false, problem: 'not a JSON object' });
    expect(parseDeadLetter(JSON.stringify({ ...letter, format: undefined }))).toEqual({ ok: false, problem: 'format is null, expected "defender-forwarder.deadletter/v1"' });
    const { record: _record, ...withoutRecord } = letter;
    expect(parseDeadLetter(JSON.stringify({ ...withoutRecord, input: 3, finding: { kind: 'alert' }, dedupeKey: 7 }))).toEqual({
      ok: false,
      problem: 'missing or malformed: input, finding.id, finding.status, dedupeKey, record',
    });
  });
});

describe('--max-age durations', () => {
  it('reads days, hours, minutes, seconds and weeks, alone or together', () => {
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration('12h')).toBe(12 * 3_600_000);
    expect(parseDuration('90m')).toBe(90 * 60_000);
    expect(parseDuration('1d12h')).toBe(36 * 3_600_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('2w')).toBe(14 * 86_400_000);
  });

  it('refuses anything else', () => {
    for (const text of ['7', '7x', 'd', '', '0d', '7d junk', '-1d']) expect(() => parseDuration(text), text).toThrow(/expected a duration such as 7d, 12h, 90m or 1d12h/);
  });
});

describe('the run.summary line of a re-drive', () => {
  it('puts re-driven and duplicate letters in the common fields and the other outcomes per destination in extra fields', () => {
    const splunk = { ...emptyRedriveCounts(), redriven: 3, notDue: 1 };
    const teams = { ...emptyRedriveCounts(), duplicates: 1, failed: 2, expired: 1 };
    const account = accountRedrive(
      { totals: emptyRedriveCounts(), byDestination: { splunk, teams }, letters: 8, aborted: false, dryRun: false },
      { source: 'container "deadletter"', startedAt: new Date('2026-11-28T00:00:00Z'), finishedAt: new Date('2026-11-28T00:00:01.5Z'), extra: { invocationId: 'x' } },
    );
    expect(account).toEqual({
      event: 'run.summary',
      host: 'redrive',
      source: 'container "deadletter"',
      startedAt: '2026-11-28T00:00:00.000Z',
      durationMs: 1500,
      received: 0,
      routed: 0,
      unrouted: 0,
      muted: 0,
      quarantined: 0,
      delivered: {},
      duplicates: { teams: 1 },
      mutedBy: {},
      deadLettered: {},
      redriven: { splunk: 3 },
      quarantinedBy: {},
      invocationId: 'x',
      letters: 8,
      aborted: false,
      dryRun: false,
      held: {},
      failed: { teams: 2 },
      notDue: { splunk: 1 },
      expired: { teams: 1 },
      unreadable: {},
      destinationGone: {},
    });
  });
});
