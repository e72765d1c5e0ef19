/**
 * Re-drive: delivers dead letters again, with exponential spacing between attempts, until each is delivered
 * (then deleted), found to be a duplicate (deleted: nobody is notified twice), or too old (moved to
 * `expired/`, kept and reported). The timer Function and `defender-forwarder redrive` both run this.
 *
 * Per letter, in this order:
 * 1. Due? The letter's `nextAttemptAt` (absent for a letter never re-driven: due at once) must have passed;
 *    `force` ignores it.
 * 2. Claim it: a conditional write of its re-drive state (attempts + 1, next attempt pushed past the time
 *    this run may need) BEFORE anything is sent. Of two re-drivers that listed the same letter, exactly one
 *    wins; the other leaves it (`held`). A re-driver that dies after claiming leaves the letter due later.
 * 3. Read it and rebuild its Finding from `letter.record` with the pipeline's own `inspectEnvelope`; a
 *    letter that does not parse (or whose record no longer passes) is `unreadable`: reported, never deleted.
 * 4. The sink is the CURRENT rules' destination of the same name; none: `destinationGone` (left, reported,
 *    and expired like any other once too old).
 * 5. Destinations with dedupe go through the ledger: `sent` -> the letter is deleted as a duplicate; `held`
 *    (another run's claim within its lease) -> left for later; `claimed` -> delivered.
 * 6. Delivery goes through `deliverWithRetry` (the one retry loop) with a short policy: the spacing between
 *    re-drives is the real retry. Letters are batched per destination (HEC takes many per request).
 * 7. Delivered: the ledger claim is confirmed, then the letter deleted. Not delivered: the claim is
 *    released, and the attempt recorded (reason, next attempt = now + min(minInterval * 2^(attempts-1),
 *    maxInterval)); a letter older than `maxAgeMs` (from `deadLetteredAt`) is moved to `expired/` instead.
 *
 * A store that cannot be reached rejects the run with its `StoreError` (after releasing the ledger claims
 * this run made and did not settle): never a silent skip.
 */
import { accountRun, type RunAccount } from '../pipeline/accounting.js';
import { emptySummary, inspectEnvelope } from '../pipeline/run.js';
import { parseUtc } from '../model/time.js';
import { dedupeKey } from '../routing/dedupe.js';
import type { RoutingRules } from '../routing/types.js';
import type { DeliveryItem, Sink } from '../sinks/sink.js';
import type { DeadLetterListing, DeadLetterStore, RedriveState } from '../storage/deadLetterStore.js';
import type { DeadLetter, DeliveryLedger } from './contracts.js';
import { Limiter } from './limiter.js';
import { deliverWithRetry, type ItemOutcome, type RetryDependencies, type RetryPolicy } from './retry.js';

/**
 * The retry policy of one re-drive: two attempts, a short wait, one minute at most per destination and
 * batch. Letters that still fail wait for the next re-drive, which is spaced far wider.
 */
export const REDRIVE_RETRY_POLICY: RetryPolicy = Object.freeze({ maxAttempts: 2, baseDelayMs: 1_000, maxDelayMs: 5_000, maxTotalMs: 60_000 });

/** Spacing after the first failed re-drive; doubles per attempt. */
export const DEFAULT_REDRIVE_MIN_INTERVAL_MS = 60_000;
/** Widest spacing between two re-drives of a letter. */
export const DEFAULT_REDRIVE_MAX_INTERVAL_MS = 6 * 3_600_000;
/** A letter older than this (from `deadLetteredAt`) that fails again is expired. */
export const DEFAULT_REDRIVE_MAX_AGE_MS = 7 * 24 * 3_600_000;
/**
 * How far a claim pushes the next attempt out: longer than one run may spend on a letter (the retry
 * policy's budget, the ledger and the store), so no other re-driver takes it meanwhile, and short enough
 * that a letter whose re-driver died is tried again soon. The ledger's lease is the same length.
 */
export const DEFAULT_REDRIVE_CLAIM_MS = 10 * 60_000;

/** Letters claimed, read and delivered together: bounds memory, and makes the HEC batches. */
const WINDOW_LETTERS = 200;
/** Letters claimed and read at once (store and ledger round trips). */
const PREPARE_CONCURRENCY = 8;

/** What happened to one letter. */
export type RedriveOutcome =
  /** Delivered and deleted. */
  | 'redriven'
  /** The ledger says it was sent already: deleted, nobody notified twice. */
  | 'duplicate'
  /** Another run holds it (a ledger claim within its lease, or another re-driver took the letter): left. */
  | 'held'
  /** Not delivered: attempt recorded, next attempt scheduled. */
  | 'failed'
  /** Its next attempt is later. */
  | 'notDue'
  /** Too old and still failing: moved to `expired/`, kept. */
  | 'expired'
  /** Its document does not parse, or its record no longer passes: left, reported. */
  | 'unreadable'
  /** Its destination is no longer in the rules: left, reported. */
  | 'destinationGone'
  /** Dry run: would be re-driven now. */
  | 'due';

/** Letters per outcome. */
export interface RedriveCounts {
  redriven: number;
  duplicates: number;
  held: number;
  failed: number;
  notDue: number;
  expired: number;
  unreadable: number;
  destinationGone: number;
  /** Dry runs only. */
  due: number;
}

const COUNT_OF: Readonly<Record<RedriveOutcome, keyof RedriveCounts>> = {
  redriven: 'redriven',
  duplicate: 'duplicates',
  held: 'held',
  failed: 'failed',
  notDue: 'notDue',
  expired: 'expired',
  unreadable: 'unreadable',
  destinationGone: 'destinationGone',
  due: 'due',
};

/** One letter's outcome, for reports and logs. Never holds a secret (sink messages are redacted). */
export interface RedriveLetterEvent {
  /** The letter's store-relative name (an expired letter's new name starts with `expired/`). */
  readonly name: string;
  readonly destination: string;
  readonly outcome: RedriveOutcome;
  /** Re-drive attempts made, this one included. */
  readonly attempts: number;
  /** Why it was not delivered: the delivery error's reason, `claim-pending`, `unreadable`, `destination-gone`... */
  readonly reason?: string;
  /** The delivery error's message, or what makes the letter unreadable. */
  readonly message?: string;
  readonly nextAttemptAt?: string;
  readonly deadLetteredAt?: string;
  /** The record's input label, once the letter was read. */
  readonly input?: string;
}

export interface RedriveResult {
  readonly totals: RedriveCounts;
  /** Counts per destination name (letters that could not be read: the name in their metadata). */
  readonly byDestination: Readonly<Record<string, RedriveCounts>>;
  /** Letters listed. */
  readonly letters: number;
  /** The signal aborted the run: letters after that point were not looked at. */
  readonly aborted: boolean;
  readonly dryRun: boolean;
}

export interface RedriveOptions {
  readonly store: DeadLetterStore;
  /** The current rules: which destinations exist and which are deduplicated. */
  readonly rules: RoutingRules;
  /** One sink per destination of the rules (unused in a dry run). */
  readonly sinks: ReadonlyMap<string, Sink>;
  readonly ledger: DeliveryLedger;
  /** Default {@link REDRIVE_RETRY_POLICY}. */
  readonly policy?: RetryPolicy;
  /** Collapses the retry loop's waits in tests; see `RetryDependencies`. */
  readonly retry?: Omit<RetryDependencies, 'signal' | 'limiter'>;
  readonly now?: () => Date;
  /** Stops cleanly: no new letter is claimed; what is in flight is settled (and recorded as failed if cut). */
  readonly signal?: AbortSignal;
  /** Default {@link DEFAULT_REDRIVE_MIN_INTERVAL_MS}. */
  readonly minIntervalMs?: number;
  /** Default {@link DEFAULT_REDRIVE_MAX_INTERVAL_MS}. */
  readonly maxIntervalMs?: number;
  /** Default {@link DEFAULT_REDRIVE_MAX_AGE_MS}. */
  readonly maxAgeMs?: number;
  /** Default {@link DEFAULT_REDRIVE_CLAIM_MS}. */
  readonly claimMs?: number;
  /** Ignore the spacing: every letter is due. */
  readonly force?: boolean;
  /** List what would be re-driven; claim, send, delete and record nothing. */
  readonly dryRun?: boolean;
  /** Only these destinations' letters. */
  readonly destinations?: readonly string[];
  /** Told of every letter's outcome. */
  readonly onLetter?: (event: RedriveLetterEvent) => void;
}

/** The spacing after `attempts` re-drive attempts: min(minInterval * 2^(attempts-1), maxInterval). */
export function redriveIntervalMs(attempts: number, minIntervalMs: number, maxIntervalMs: number): number {
  return Math.min(maxIntervalMs, minIntervalMs * 2 ** Math.max(0, attempts - 1));
}

/** True when the letter may be re-driven at `now`: never tried, or its next attempt time has passed. */
export function isRedriveDue(entry: Pick<DeadLetterListing, 'redrive'>, now: Date, force = false): boolean {
  if (force) return true;
  const next = parseUtc(entry.redrive.nextAttemptAt);
  return next === undefined || next.getTime() <= now.getTime();
}

/** Zero counts. */
export function emptyRedriveCounts(): RedriveCounts {
  return { redriven: 0, duplicates: 0, held: 0, failed: 0, notDue: 0, expired: 0, unreadable: 0, destinationGone: 0, due: 0 };
}

/** A letter ready to send: claimed, read, rebuilt, and (dedupe) claimed in the ledger. */
interface Ready {
  readonly entry: DeadLetterListing;
  readonly letter: DeadLetter;
  readonly item: DeliveryItem;
  readonly sink: Sink;
  readonly ledgerKey: string | undefined;
}

/** Re-drives the store's due letters. See the module comment. */
export async function redriveDeadLetters(options: RedriveOptions): Promise<RedriveResult> {
  const clock = options.now ?? (() => new Date());
  const spacing = {
    minIntervalMs: positive('minIntervalMs', options.minIntervalMs ?? DEFAULT_REDRIVE_MIN_INTERVAL_MS),
    maxIntervalMs: positive('maxIntervalMs', options.maxIntervalMs ?? DEFAULT_REDRIVE_MAX_INTERVAL_MS),
    maxAgeMs: positive('maxAgeMs', options.maxAgeMs ?? DEFAULT_REDRIVE_MAX_AGE_MS),
    claimMs: positive('claimMs', options.claimMs ?? DEFAULT_REDRIVE_CLAIM_MS),
  };
  const totals = emptyRedriveCounts();
  const byDestination: Record<string, RedriveCounts> = {};
  const report = (event: RedriveLetterEvent): void => {
    const key = COUNT_OF[event.outcome];
    totals[key] += 1;
    (byDestination[event.destination] ??= emptyRedriveCounts())[key] += 1;
    options.onLetter?.(event);
  };
  const limiters = new Map<string, Limiter>();
  const redrive = new WindowRun(options, clock, spacing, report, limiters);

  let letters = 0;
  let aborted = false;
  let window: DeadLetterListing[] = [];
  const sources = options.destinations !== undefined ? [...new Set(options.destinations)].map((destination) => ({ destination })) : [{}];
  listing: for (const source of sources) {
    for await (const entry of options.store.list(source)) {
      if (options.signal?.aborted === true) {
        aborted = true;
        break listing;
      }
      letters += 1;
      const base = { name: entry.name, destination: entry.destination, attempts: entry.redrive.attempts, ...deadLetteredAtField(entry) };
      if (!isRedriveDue(entry, clock(), options.force)) {
        report({ ...base, outcome: 'notDue', ...(entry.redrive.nextAttemptAt !== undefined ? { nextAttemptAt: entry.redrive.nextAttemptAt } : {}) });
        continue;
      }
      if (options.dryRun === true) {
        const gone = !options.rules.destinations.has(entry.destination);
        report({ ...base, outcome: gone ? 'destinationGone' : 'due', ...(gone ? { reason: 'destination-gone' } : {}) });
        continue;
      }
      window.push(entry);
      if (window.length >= WINDOW_LETTERS) {
        await redrive.run(window);
        window = [];
      }
    }
  }
  // Letters listed after an abort are not claimed: they stay as they are, due at the next run.
  if (!aborted && window.length > 0) await redrive.run(window);
  return { totals, byDestination, letters, aborted: aborted || options.signal?.aborted === true, dryRun: options.dryRun === true };
}

interface Spacing {
  readonly minIntervalMs: number;
  readonly maxIntervalMs: number;
  readonly maxAgeMs: number;
  readonly claimMs: number;
}

/** One window of due letters: claim and read them, deliver per destination, settle each. */
class WindowRun {
  constructor(
    private readonly options: RedriveOptions,
    private readonly clock: () => Date,
    private readonly spacing: Spacing,
    private readonly report: (event: RedriveLetterEvent) => void,
    private readonly limiters: Map<string, Limiter>,
  ) {}

  async run(entries: readonly DeadLetterListing[]): Promise<void> {
    const preparing = new Limiter(PREPARE_CONCURRENCY);
    const prepared = await Promise.allSettled(entries.map((entry) => preparing.run(() => this.prepare(entry))));
    const ready = prepared.flatMap((result) => (result.status === 'fulfilled' && result.value !== undefined ? [result.value] : []));
    const failure = prepared.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failure !== undefined) {
      // The store or the ledger failed part-way: what this run claimed in the ledger is released, so that
      // the next run finds it free; the letters keep their claim and come due again later.
      await Promise.allSettled(ready.flatMap((one) => (one.ledgerKey !== undefined ? [this.options.ledger.release(one.ledgerKey)] : [])));
      throw failure.reason;
    }

    const byDestination = new Map<string, Ready[]>();
    for (const one of ready) {
      let list = byDestination.get(one.sink.name);
      if (list === undefined) byDestination.set(one.sink.name, (list = []));
      list.push(one);
    }
    const delivered = await Promise.all(
      [...byDestination].map(async ([name, batch]) => {
        const sink = batch[0]?.sink;
        if (sink === undefined) return [];
        let limiter = this.limiters.get(name);
        if (limiter === undefined) this.limiters.set(name, (limiter = new Limiter(Math.max(1, sink.maxConcurrency))));
        const outcomes = await deliverWithRetry(
          sink,
          batch.map((one) => one.item),
          this.options.policy ?? REDRIVE_RETRY_POLICY,
          { ...this.options.retry, limiter, ...(this.options.signal !== undefined ? { signal: this.options.signal } : {}) },
        );
        return batch.map((one, index) => ({ one, outcome: outcomes[index] }));
      }),
    );
    // Every letter is settled even when one store call fails; the first failure is rethrown afterwards.
    const settled = await Promise.allSettled(delivered.flat().map(({ one, outcome }) => this.settle(one, outcome)));
    const settleFailure = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (settleFailure !== undefined) throw settleFailure.reason;
  }

  /** Claims, reads and checks one letter; answers it ready to send, or undefined once it is settled here. */
  private async prepare(listed: DeadLetterListing): Promise<Ready | undefined> {
    const { store, rules, sinks, ledger } = this.options;
    const now = this.clock();
    const attempts = listed.redrive.attempts + 1;
    const claimState: RedriveState = {
      ...listed.redrive,
      attempts,
      nextAttemptAt: new Date(now.getTime() + Math.max(this.interval(attempts), this.spacing.claimMs)).toISOString(),
      lastAttemptAt: now.toISOString(),
    };
    const base = { name: listed.name, destination: listed.destination, attempts, ...deadLetteredAtField(listed) };
    const entry = await store.recordAttempt(listed, claimState);
    if (entry === undefined) {
      this.report({ ...base, outcome: 'held', reason: 'taken-by-another-redrive', attempts: listed.redrive.attempts });
      return undefined;
    }
    const read = await store.read(entry);
    if (read.status === 'gone') {
      // Deleted or written again since it was claimed: whoever did that owns it now.
      this.report({ ...base, outcome: 'held', reason: 'changed-while-claimed' });
      return undefined;
    }
    if (read.status === 'unreadable') {
      await this.leave(entry, 'unreadable', 'unreadable', base, read.problem);
      return undefined;
    }
    const { letter } = read;
    const named = { ...base, destination: letter.destination, input: letter.input, ...deadLetteredAtField(letter) };
    const destination = rules.destinations.get(letter.destination);
    const sink = sinks.get(letter.destination);
    if (destination === undefined || sink === undefined) {
      await this.failOrExpire(entry, letter, 'destinationGone', 'destination-gone', named, `destination "${letter.destination}" is not in the rules any more`);
      return undefined;
    }
    const inspected = inspectEnvelope({ input: letter.input, body: letter.record, ...(letter.metadata !== undefined ? { metadata: letter.metadata } : {}) }, { now });
    const first = inspected[0];
    if (first === undefined || !first.ok || inspected.length !== 1) {
      const why = first !== undefined && !first.ok ? first.entry.reason : `the record decodes to ${inspected.length} records, not one`;
      await this.leave(entry, 'unreadable', 'unreadable', named, `the record no longer passes: ${why}`);
      return undefined;
    }
    const item: DeliveryItem = { input: letter.input, finding: first.finding, ...(letter.metadata !== undefined ? { metadata: letter.metadata } : {}) };
    if (!destination.dedupe) return { entry, letter, item, sink, ledgerKey: undefined };

    const ledgerKey = letter.dedupeKey ?? dedupeKey(letter.destination, first.finding);
    const verdict = await ledger.claimOutcome(ledgerKey);
    if (verdict === 'claimed') return { entry, letter, item, sink, ledgerKey };
    if (verdict === 'sent') {
      await store.delete(entry);
      this.report({ ...named, outcome: 'duplicate' });
      return undefined;
    }
    await this.leave(entry, 'held', 'claim-pending', named, 'another run holds this notification\'s claim in the ledger');
    return undefined;
  }

  /** Confirms or releases the ledger claim, then deletes the letter or records the failed attempt. */
  private async settle(one: Ready, outcome: ItemOutcome | undefined): Promise<void> {
    const named = {
      name: one.entry.name,
      destination: one.letter.destination,
      attempts: one.entry.redrive.attempts,
      input: one.letter.input,
      ...deadLetteredAtField(one.letter),
    };
    if (outcome?.delivered === true) {
      // The ledger first: should the delete fail, the next run finds the key sent and deletes a duplicate.
      if (one.ledgerKey !== undefined) await this.options.ledger.confirm(one.ledgerKey);
      await this.options.store.delete(one.entry);
      this.report({ ...named, outcome: 'redriven' });
      return;
    }
    if (one.ledgerKey !== undefined) await this.options.ledger.release(one.ledgerKey);
    const reason = outcome?.error?.reason ?? 'not-delivered';
    const message = outcome?.error?.message ?? 'not delivered';
    // Cut short by the abort: not a verdict on the destination, so never a reason to expire.
    if (reason === 'cancelled') await this.leave(one.entry, 'failed', reason, named, message);
    else await this.failOrExpire(one.entry, one.letter, 'failed', reason, named, message);
  }

  /** Expires the letter when it is too old, else records the attempt with `outcome`. */
  private async failOrExpire(
    entry: DeadLetterListing,
    letter: DeadLetter,
    outcome: RedriveOutcome,
    reason: string,
    named: Omit<RedriveLetterEvent, 'outcome'>,
    message: string,
  ): Promise<void> {
    const now = this.clock();
    const deadLetteredAt = parseUtc(letter.deadLetteredAt) ?? entry.deadLetteredAt;
    if (deadLetteredAt === undefined || now.getTime() - deadLetteredAt.getTime() <= this.spacing.maxAgeMs) {
      await this.leave(entry, outcome, reason, named, message);
      return;
    }
    const { nextAttemptAt: _none, ...kept } = entry.redrive;
    const expired = await this.options.store.expire(entry, { ...kept, lastReason: reason, expiredAt: now.toISOString() });
    if (expired) this.report({ ...named, name: `expired/${entry.name}`, outcome: 'expired', reason, message });
    else this.report({ ...named, outcome: 'held', reason: 'changed-while-claimed' });
  }

  /** Records the attempt (reason, next attempt after the spacing) and reports `outcome`. */
  private async leave(entry: DeadLetterListing, outcome: RedriveOutcome, reason: string, named: Omit<RedriveLetterEvent, 'outcome'>, message: string): Promise<void> {
    const now = this.clock();
    const nextAttemptAt = new Date(now.getTime() + this.interval(entry.redrive.attempts)).toISOString();
    await this.options.store.recordAttempt(entry, { ...entry.redrive, nextAttemptAt, lastReason: reason });
    this.report({ ...named, outcome, reason, message, nextAttemptAt });
  }

  private interval(attempts: number): number {
    return redriveIntervalMs(attempts, this.spacing.minIntervalMs, this.spacing.maxIntervalMs);
  }
}

function deadLetteredAtField(source: Pick<DeadLetterListing, 'deadLetteredAt'> | Pick<DeadLetter, 'deadLetteredAt'>): { deadLetteredAt?: string } {
  const at = source.deadLetteredAt instanceof Date ? source.deadLetteredAt : parseUtc(source.deadLetteredAt);
  return at !== undefined ? { deadLetteredAt: at.toISOString() } : {};
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number of milliseconds, not ${value}`);
  return value;
}

export interface RedriveAccountOptions {
  /** Where the letters came from: `container "deadletter"`, `folder "..."`. */
  readonly source: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  /** Host facts (invocation id, past due). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/**
 * The `run.summary` line of a re-drive (host `redrive`): `redriven` and `duplicates` per destination in
 * the common fields, and per destination `held`, `failed`, `notDue`, `expired`, `unreadable`,
 * `destinationGone` (and `due` for a dry run) in the extra fields, with `letters` listed and `aborted`.
 */
export function accountRedrive(result: RedriveResult, options: RedriveAccountOptions): RunAccount {
  const summary = emptySummary();
  const perDestination = (key: keyof RedriveCounts): Record<string, number> => {
    const counts: Record<string, number> = {};
    for (const [name, destinationCounts] of Object.entries(result.byDestination)) if (destinationCounts[key] > 0) counts[name] = destinationCounts[key];
    return counts;
  };
  Object.assign(summary.redriven, perDestination('redriven'));
  Object.assign(summary.duplicates, perDestination('duplicates'));
  return accountRun(summary, {
    host: 'redrive',
    source: options.source,
    startedAt: options.startedAt,
    finishedAt: options.finishedAt,
    extra: {
      ...options.extra,
      letters: result.letters,
      aborted: result.aborted,
      dryRun: result.dryRun,
      held: perDestination('held'),
      failed: perDestination('failed'),
      notDue: perDestination('notDue'),
      expired: perDestination('expired'),
      unreadable: perDestination('unreadable'),
      destinationGone: perDestination('destinationGone'),
      ...(result.dryRun ? { due: perDestination('due') } : {}),
    },
  });
}
