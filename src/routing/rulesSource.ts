/**
 * The routing rules a long-running host uses NOW, and what was built from them (the Function app builds the
 * sinks and the delivery), kept current from a source that may change under it: a blob (`ROUTES_BLOB_URL`),
 * checked at most once per refresh interval, or the file deployed with the app (read once: it only changes
 * with a deployment, which restarts the app).
 *
 * - **When it is checked**: at the start of an invocation (`use`, `current`, `refresh`), when the refresh
 *   interval has passed since the last check began. No timer: nothing keeps the process alive, and an idle
 *   app makes no requests. Concurrent invocations share one check and wait for it (bounded by the reader's
 *   own timeouts), so an invocation that starts after the interval sees what the blob holds.
 * - **A change** (a new ETag) is parsed and validated, and built (every destination's `${ENV}` settings and
 *   URLs resolved) BEFORE it replaces anything: YAML errors, `RulesError`, `SinkConfigError` (an unset
 *   `${ENV}` included) reject the update. The previous rules stay, one `rules.rejected` error line is logged
 *   (the ETag and the problems), and {@link RulesSource.status} reports it until a later version loads. The
 *   rejected ETag is remembered, so it is neither downloaded nor reported again.
 * - **A failed check** (storage unreachable, the blob deleted, access refused) keeps the current rules; the
 *   first failure of a streak logs one `rules.refreshFailed` warning, the first success after it one
 *   `rules.refreshRecovered` line, and the status says the checks are failing meanwhile.
 * - **In-flight work**: `use` pins the state an invocation started with until its work settles; a replaced
 *   state is released (its sinks closed: the SMTP pools) only once the last invocation holding it is done.
 *   Until then old and new sinks coexist, each with its own per-destination concurrency cap, so for the
 *   length of one batch a destination may see up to twice its usual concurrency.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SettingsError } from '../config/appSettings.js';
import { redactCredentials } from '../config/secret.js';
import { SinkConfigError } from '../sinks/settings.js';
import { parseRules, RulesError } from './load.js';
import type { RoutingRules } from './types.js';

/** What reading the rules gave. `etag` is opaque and handed back to the next `read`. */
export type RulesRead =
  /** The rules are still the version whose `etag` was given. */
  | { readonly changed: false }
  | { readonly changed: true; readonly etag: string; readonly version: string; readonly text: string }
  /** A version that is refused unread (too large); the reason is reported as its problem. */
  | { readonly changed: true; readonly etag: string; readonly version: string; readonly refused: string };

/** Where the rules text comes from. */
export interface RulesReader {
  readonly kind: 'file' | 'blob';
  /** The setting naming it (`ROUTES_FILE`, `ROUTES_BLOB_URL`), for start-up errors. */
  readonly setting: string;
  /** The file's path or the blob's URL with its query string masked: safe to log. */
  readonly origin: string;
  /** Whether it is checked again after start-up. */
  readonly refreshes: boolean;
  /**
   * The rules text, unless it is still the version of `knownEtag`. Rejects with an error whose message is
   * safe to log (no SAS, no key) when the rules cannot be read.
   */
  read(knownEtag?: string): Promise<RulesRead>;
}

/** Length of a file's version: the first 16 hex digits of the SHA-256 of its bytes. */
const FILE_VERSION_DIGITS = 16;

/** The deployed rules file: read once, its version a content hash. */
export function fileRulesReader(path: string): RulesReader {
  return {
    kind: 'file',
    setting: 'ROUTES_FILE',
    origin: path,
    refreshes: false,
    async read(): Promise<RulesRead> {
      let bytes: Buffer;
      try {
        bytes = await readFile(path);
      } catch (error) {
        throw new Error(`cannot read the rules file ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
      const version = createHash('sha256').update(bytes).digest('hex').slice(0, FILE_VERSION_DIGITS);
      return { changed: true, etag: version, version, text: bytes.toString('utf8') };
    },
  };
}

/** Where a source's lines go: an invocation's context (`InvocationContext` fits), or the console. */
export interface RulesLog {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

const CONSOLE_LOG: RulesLog = {
  log: (message) => console.log(message),
  warn: (message) => console.warn(message),
  error: (message) => console.error(message),
};

/** The rules in use and where they come from. */
export interface RulesSnapshot {
  readonly rules: RoutingRules;
  /** The blob's ETag (without quotes), or the file's content hash. */
  readonly version: string;
  readonly source: 'file' | 'blob';
  /** The file's path or the blob's masked URL. */
  readonly origin: string;
}

/** The rules in use with what was built from them. Frozen: a new version is a new object. */
export type RoutingState<Built extends object> = RulesSnapshot & Readonly<Built>;

/** What a handler needs of a rules source: the current routing, pinned for the length of its work. */
export interface RoutingAccess<View> {
  use<T>(log: RulesLog, work: (routing: View) => Promise<T>): Promise<T>;
}

/** A source's state, for the health report. Never holds a secret. */
export interface RulesStatus {
  readonly source: 'file' | 'blob';
  readonly origin: string;
  readonly version: string;
  /** When the rules in use were loaded. */
  readonly loadedAt: Date;
  /** When the source was last read successfully (changed or not); for a file, when it was loaded. */
  readonly checkedAt: Date;
  /** Longest time between checks; undefined for a file (read once). */
  readonly refreshMs: number | undefined;
  /** The last version that failed to load, while it is the source's latest. */
  readonly rejected: { readonly version: string; readonly problems: readonly string[]; readonly at: Date } | undefined;
  /** Set while checks fail: since when, how many, and the last error. */
  readonly refreshFailing: { readonly since: Date; readonly failedChecks: number; readonly error: string } | undefined;
}

export interface RulesSourceOptions<Built extends object> {
  readonly reader: RulesReader;
  /**
   * Builds what the rules need to be used (sinks, delivery). Throws `SinkConfigError` when a destination
   * cannot be used as configured: at start-up that fails the start, later it rejects the update.
   */
  readonly build: (rules: RoutingRules) => Built;
  /** Releases what `build` made once no work holds it (closes sinks); a failure is ignored. */
  readonly release?: (built: Built) => Promise<void>;
  /** Longest time between two checks of a source that refreshes, in ms. */
  readonly refreshMs: number;
  readonly now?: () => Date;
  /** Where lines go when a call passes no log. Default: the console. */
  readonly log?: RulesLog;
  /**
   * Waits before the first read is tried again after a transient failure (no answer, 408, 429, 5xx), so that
   * a blip at start-up does not keep an instance from registering its functions. Default
   * {@link START_RETRY_DELAYS_MS}.
   */
  readonly startRetryDelaysMs?: readonly number[];
}

/** 2, 5 and 10 s: with the read's own deadline, a start-up gives storage up to about two minutes. */
export const START_RETRY_DELAYS_MS: readonly number[] = Object.freeze([2_000, 5_000, 10_000]);

/**
 * Reads, validates and builds the rules once, and returns the source that keeps them current.
 *
 * @throws SettingsError when the rules cannot be read (naming the setting and the cause), RulesError when they
 *   are invalid, SinkConfigError when a destination cannot be built: what an invalid rules file does.
 */
export async function createRulesSource<Built extends object>(options: RulesSourceOptions<Built>): Promise<RulesSource<Built>> {
  const { reader } = options;
  let read: RulesRead | undefined;
  const delays = [...(options.startRetryDelaysMs ?? START_RETRY_DELAYS_MS)];
  while (read === undefined) {
    try {
      read = await reader.read();
    } catch (error) {
      const message = redactCredentials(error instanceof Error ? error.message : String(error));
      const delayMs = (error as { transient?: unknown }).transient === true ? delays.shift() : undefined;
      if (delayMs === undefined) throw new SettingsError([`${reader.setting}: ${message}`]);
      (options.log ?? CONSOLE_LOG).warn(JSON.stringify({ event: 'rules.startRetry', origin: reader.origin, error: message, retryInMs: delayMs }));
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
  if (!read.changed) throw new SettingsError([`${reader.setting}: ${reader.origin} answered "not modified" to a first read`]);
  if ('refused' in read) throw new RulesError(reader.origin, [{ path: '', message: read.refused }]);
  const rules = parseRules(read.text, reader.origin);
  const built = options.build(rules);
  return new RulesSource(options, { rules, built, version: read.version }, read.etag);
}

interface Held<Built extends object> {
  readonly state: RoutingState<Built>;
  readonly built: Built;
  readonly loadedAt: Date;
  /** Work in progress holding this state. */
  refs: number;
  /** Replaced by a newer version: released once `refs` is 0. */
  retired: boolean;
  released: boolean;
}

export class RulesSource<Built extends object> implements RoutingAccess<RoutingState<Built>> {
  readonly #options: RulesSourceOptions<Built>;
  readonly #clock: () => Date;
  #current: Held<Built>;
  /** The ETag of the latest version read, accepted or rejected: the next check asks "changed since?". */
  #seenEtag: string;
  #checkedAt: Date;
  #nextCheckAtMs: number;
  #checking: Promise<void> | undefined;
  #rejected: RulesStatus['rejected'];
  #failing: { since: Date; failedChecks: number; error: string } | undefined;

  /** Use {@link createRulesSource}. */
  constructor(options: RulesSourceOptions<Built>, loaded: { rules: RoutingRules; built: Built; version: string }, etag: string) {
    this.#options = options;
    this.#clock = options.now ?? (() => new Date());
    const now = this.#clock();
    this.#current = this.#hold(loaded.rules, loaded.built, loaded.version, now);
    this.#seenEtag = etag;
    this.#checkedAt = now;
    this.#nextCheckAtMs = now.getTime() + options.refreshMs;
  }

  /** The current routing, after a check if one is due. Never rejects once the source exists. */
  async current(log?: RulesLog): Promise<RoutingState<Built>> {
    await this.refresh(log);
    return this.#current.state;
  }

  /**
   * Runs `work` with the current routing (after a check if one is due). The state it gets stays usable (its
   * sinks open) until `work` settles, even if a newer version replaces it meanwhile.
   */
  async use<T>(log: RulesLog, work: (routing: RoutingState<Built>) => Promise<T>): Promise<T> {
    await this.refresh(log);
    const held = this.#current;
    held.refs += 1;
    try {
      return await work(held.state);
    } finally {
      held.refs -= 1;
      if (held.retired && held.refs === 0) this.#release(held);
    }
  }

  /**
   * Checks the source when the refresh interval has passed since the last check began (or joins the check
   * in progress). Never rejects: failures are logged and kept in the status.
   */
  refresh(log?: RulesLog): Promise<void> {
    if (!this.#options.reader.refreshes) return Promise.resolve();
    if (this.#checking) return this.#checking;
    const nowMs = this.#clock().getTime();
    if (nowMs < this.#nextCheckAtMs) return Promise.resolve();
    this.#nextCheckAtMs = nowMs + this.#options.refreshMs;
    this.#checking = this.#check(log ?? this.#options.log ?? CONSOLE_LOG).finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  status(): RulesStatus {
    const { reader } = this.#options;
    return {
      source: reader.kind,
      origin: reader.origin,
      version: this.#current.state.version,
      loadedAt: this.#current.loadedAt,
      checkedAt: this.#checkedAt,
      refreshMs: reader.refreshes ? this.#options.refreshMs : undefined,
      rejected: this.#rejected,
      refreshFailing: this.#failing ? { ...this.#failing } : undefined,
    };
  }

  async #check(log: RulesLog): Promise<void> {
    const { reader } = this.#options;
    let read: RulesRead;
    try {
      read = await reader.read(this.#seenEtag);
    } catch (error) {
      this.#failed(log, error);
      return;
    }
    const now = this.#clock();
    this.#checkedAt = now;
    if (this.#failing) {
      log.log(
        JSON.stringify({
          event: 'rules.refreshRecovered',
          origin: reader.origin,
          version: this.#current.state.version,
          failedChecks: this.#failing.failedChecks,
          failingSince: this.#failing.since.toISOString(),
        }),
      );
      this.#failing = undefined;
    }
    if (!read.changed) return;
    this.#seenEtag = read.etag;
    const previous = this.#current;
    let next: Held<Built>;
    try {
      if ('refused' in read) throw new RulesError(reader.origin, [{ path: '', message: read.refused }]);
      const rules = parseRules(read.text, reader.origin);
      next = this.#hold(rules, this.#options.build(rules), read.version, now);
    } catch (error) {
      const problems = problemsOf(error);
      this.#rejected = { version: read.version, problems, at: now };
      log.error(
        JSON.stringify({
          event: 'rules.rejected',
          source: reader.kind,
          origin: reader.origin,
          etag: read.version,
          currentVersion: previous.state.version,
          problems,
        }),
      );
      return;
    }
    this.#current = next;
    this.#rejected = undefined;
    previous.retired = true;
    if (previous.refs === 0) this.#release(previous);
    log.log(
      JSON.stringify({
        event: 'rules.reloaded',
        source: reader.kind,
        origin: reader.origin,
        oldVersion: previous.state.version,
        newVersion: next.state.version,
        destinations: next.state.rules.destinations.size,
        routes: next.state.rules.routes.length,
        mutes: next.state.rules.mutes.length,
      }),
    );
  }

  /** One warning per failure streak; the status keeps the latest error. */
  #failed(log: RulesLog, error: unknown): void {
    const message = redactCredentials(error instanceof Error ? error.message : String(error));
    if (this.#failing) {
      this.#failing.failedChecks += 1;
      this.#failing.error = message;
      return;
    }
    this.#failing = { since: this.#clock(), failedChecks: 1, error: message };
    log.warn(
      JSON.stringify({
        event: 'rules.refreshFailed',
        origin: this.#options.reader.origin,
        version: this.#current.state.version,
        error: message,
        note: 'the current rules stay in use; this is logged once until a check succeeds',
      }),
    );
  }

  #hold(rules: RoutingRules, built: Built, version: string, loadedAt: Date): Held<Built> {
    const { reader } = this.#options;
    const state = Object.freeze({ ...built, rules, version, source: reader.kind, origin: reader.origin }) as RoutingState<Built>;
    return { state, built, loadedAt, refs: 0, retired: false, released: false };
  }

  #release(held: Held<Built>): void {
    if (held.released) return;
    held.released = true;
    const release = this.#options.release;
    // Never in the way of the invocation that let go of it last: released after it, failures ignored.
    if (release) void Promise.resolve(held.built).then(release).catch(() => undefined);
  }
}

/** Each problem of a rejected version, one a line, as its error words it (they name keys, never values). */
function problemsOf(error: unknown): string[] {
  const message = error instanceof Error ? error.message : String(error);
  const lines = message
    .split('\n')
    .map((line) => line.replace(/^\s*-\s+/, '').trim())
    .filter((line) => line !== '');
  return (error instanceof RulesError || error instanceof SinkConfigError ? lines : [`unexpected error: ${lines.join(' ')}`]).map(redactCredentials);
}
