/**
 * The one retry loop, driven by a scripted sink (an implementation of the Sink contract written for the
 * test, not a mock of a project module). Waits are collapsed: `sleep` records what it was asked to wait.
 */
import { describe, expect, it } from 'vitest';
import { backoffMs, DEFAULT_RETRY_POLICY, deliverWithRetry, type RetryPolicy } from '../../src/delivery/retry.js';
import { Limiter } from '../../src/delivery/limiter.js';
import { DeliveryError, type AttemptResult, type DeliveryItem, type Sink } from '../../src/sinks/sink.js';
import { makeAlert } from '../support/findings.js';

type Script = (items: readonly DeliveryItem[], call: number) => AttemptResult[] | Promise<AttemptResult[]>;

function scriptedSink(script: Script, maxBatchItems = 10): Sink & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    name: 'dest',
    type: 'splunk-hec',
    notify: false,
    maxBatchItems,
    maxConcurrency: 1,
    calls,
    async send(items) {
      calls.push(items.map((item) => item.finding.id));
      return script(items, calls.length);
    },
    render: () => [],
    close: async () => undefined,
  };
}

const items = (n: number): DeliveryItem[] => Array.from({ length: n }, (_, i) => ({ input: `in#${i}`, finding: makeAlert({ id: `a${i}` }) }));
const ok: AttemptResult = { ok: true };
const fail = (retryable: boolean, extra: { retryAfterMs?: number; reason?: string } = {}): AttemptResult => ({
  ok: false,
  error: new DeliveryError('boom', { reason: extra.reason ?? (retryable ? 'http-503' : 'http-400'), retryable, ...(extra.retryAfterMs !== undefined ? { retryAfterMs: extra.retryAfterMs } : {}) }),
});

function clock(): { now: () => number; sleep: (ms: number) => Promise<void>; waits: number[] } {
  let nowMs = 0;
  const waits: number[] = [];
  return {
    now: () => nowMs,
    sleep: async (ms) => {
      waits.push(ms);
      nowMs += ms;
    },
    waits,
  };
}

describe('deliverWithRetry', () => {
  it('delivers on the first try without waiting', async () => {
    const sink = scriptedSink((batch) => batch.map(() => ok));
    const c = clock();
    const outcomes = await deliverWithRetry(sink, items(3), DEFAULT_RETRY_POLICY, c);
    expect(outcomes.map((o) => [o.delivered, o.attempts])).toEqual([
      [true, 1],
      [true, 1],
      [true, 1],
    ]);
    expect(c.waits).toEqual([]);
  });

  it('retries "503 twice, then success" with exponential backoff and full jitter', async () => {
    const sink = scriptedSink((batch, call) => batch.map(() => (call <= 2 ? fail(true) : ok)));
    const c = clock();
    const outcomes = await deliverWithRetry(sink, items(2), DEFAULT_RETRY_POLICY, { ...c, random: () => 0.5 });
    expect(outcomes.every((o) => o.delivered && o.attempts === 3)).toBe(true);
    // ceilings 1 s then 2 s, jitter 0.5
    expect(c.waits).toEqual([500, 1000]);
  });

  it('never retries sooner than Retry-After', async () => {
    const sink = scriptedSink((batch, call) => batch.map(() => (call === 1 ? fail(true, { retryAfterMs: 7000, reason: 'http-429' }) : ok)));
    const c = clock();
    await deliverWithRetry(sink, items(1), DEFAULT_RETRY_POLICY, { ...c, random: () => 0.1 });
    expect(c.waits).toEqual([7000]);
  });

  it('gives up on a permanent failure at once, with its error', async () => {
    const sink = scriptedSink((batch) => batch.map(() => fail(false)));
    const c = clock();
    const [outcome] = await deliverWithRetry(sink, items(1), DEFAULT_RETRY_POLICY, c);
    expect(outcome).toMatchObject({ delivered: false, attempts: 1 });
    expect(outcome?.error?.reason).toBe('http-400');
    expect(c.waits).toEqual([]);
  });

  it('caps attempts', async () => {
    const sink = scriptedSink((batch) => batch.map(() => fail(true)));
    const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxAttempts: 3 };
    const [outcome] = await deliverWithRetry(sink, items(1), policy, { ...clock(), random: () => 0 });
    expect(outcome).toMatchObject({ delivered: false, attempts: 3 });
    expect(sink.calls).toHaveLength(3);
  });

  it('caps total time: a wait that would pass the budget is not made', async () => {
    const sink = scriptedSink((batch) => batch.map(() => fail(true, { retryAfterMs: 90_000 })));
    const c = clock();
    const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxTotalMs: 60_000 };
    const [outcome] = await deliverWithRetry(sink, items(1), policy, c);
    expect(outcome?.delivered).toBe(false);
    expect(outcome?.attempts).toBe(1);
    expect(outcome?.error?.message).toMatch(/would pass the time budget/);
    expect(c.waits).toEqual([]);
  });

  it('resends only the items that may succeed (HEC invalid-event-number), keeping per-item attempts', async () => {
    // First call: item 0 ok, item 1 permanent, item 2 retryable; then item 2 succeeds alone.
    const sink = scriptedSink((batch, call) => (call === 1 ? [ok, fail(false, { reason: 'hec-6' }), fail(true, { reason: 'hec-resend-after-invalid' })] : batch.map(() => ok)));
    const outcomes = await deliverWithRetry(sink, items(3), DEFAULT_RETRY_POLICY, clock());
    expect(outcomes.map((o) => [o.delivered, o.attempts, o.error?.reason])).toEqual([
      [true, 1, undefined],
      [false, 1, 'hec-6'],
      [true, 2, undefined],
    ]);
    expect(sink.calls).toEqual([['a0', 'a1', 'a2'], ['a2']]);
  });

  it('sends in chunks of the sink batch size, under the concurrency limit', async () => {
    let running = 0;
    let peak = 0;
    const sink = scriptedSink(async (batch) => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running -= 1;
      return batch.map(() => ok);
    }, 2);
    const outcomes = await deliverWithRetry(sink, items(9), DEFAULT_RETRY_POLICY, { limiter: new Limiter(2) });
    expect(sink.calls.map((call) => call.length)).toEqual([2, 2, 2, 2, 1]);
    expect(peak).toBe(2);
    expect(outcomes.every((o) => o.delivered)).toBe(true);
  });

  it('a sink that throws loses nothing: the items are retried, then handed back', async () => {
    const sink = scriptedSink(() => {
      throw new Error('defect');
    });
    const outcomes = await deliverWithRetry(sink, items(2), { ...DEFAULT_RETRY_POLICY, maxAttempts: 2 }, clock());
    expect(outcomes.map((o) => [o.delivered, o.attempts, o.error?.reason])).toEqual([
      [false, 2, 'sink-error'],
      [false, 2, 'sink-error'],
    ]);
  });

  it('an abort while waiting hands the pending items back undelivered', async () => {
    const controller = new AbortController();
    const sink = scriptedSink((batch) => batch.map(() => fail(true)));
    const outcomes = await deliverWithRetry(sink, items(2), DEFAULT_RETRY_POLICY, {
      signal: controller.signal,
      sleep: async () => {
        controller.abort();
        throw new Error('aborted');
      },
    });
    expect(outcomes.every((o) => !o.delivered && o.attempts === 1)).toBe(true);
    expect(outcomes[0]?.error?.message).toMatch(/cancelled/);
  });

  it('backoff ceilings double up to the maximum', () => {
    const top = () => 0.999999;
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffMs(n, DEFAULT_RETRY_POLICY, top))).toEqual([999, 1999, 3999, 7999, 15999, 29999, 29999]);
  });
});

describe('Limiter', () => {
  it('never runs more than its limit, even when a slot is handed over', async () => {
    const limiter = new Limiter(2);
    let running = 0;
    let peak = 0;
    const task = async (): Promise<void> => {
      running += 1;
      peak = Math.max(peak, running);
      await Promise.resolve();
      running -= 1;
    };
    await Promise.all(Array.from({ length: 50 }, () => limiter.run(task)));
    expect(peak).toBe(2);
    expect(() => new Limiter(0)).toThrow(RangeError);
  });
});

describe('deliverWithRetry: the time budget bounds the attempts, not only the waits', () => {
  it('stops sending once the budget is spent and cuts an attempt in flight at the deadline', async () => {
    const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxTotalMs: 300 };
    // Each send takes 120 ms unless aborted; one item per chunk, one at a time.
    const sink = scriptedSink(
      (batch) =>
        new Promise<AttemptResult[]>((resolve) => {
          setTimeout(() => resolve(batch.map(() => ok)), 120);
        }),
      1,
    );
    const signalled: boolean[] = [];
    const original = sink.send.bind(sink);
    sink.send = async (batch, signal) => {
      const result = original(batch, signal);
      const aborted = new Promise<AttemptResult[]>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
      try {
        return await Promise.race([result, aborted]);
      } finally {
        signalled.push(signal.aborted);
      }
    };
    const outcomes = await deliverWithRetry(sink, items(6), policy, { limiter: new Limiter(1) });
    const delivered = outcomes.filter((o) => o.delivered).length;
    expect(delivered).toBe(2);
    expect(outcomes.slice(delivered).every((o) => !o.delivered && o.error?.reason === 'budget-exhausted')).toBe(true);
    // The third attempt was in flight at the deadline and was aborted; the rest were never sent.
    expect(sink.calls).toHaveLength(3);
    expect(signalled).toEqual([false, false, true]);
  });
});
