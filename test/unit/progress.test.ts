import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Progress } from '../../src/cli/progress.js';

function capture(tty: boolean): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  Object.assign(stream, { isTTY: tty });
  const chunks: string[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  return { stream, text: () => chunks.join('') };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('progress on stderr', () => {
  it('stays quiet for runs shorter than the delay', () => {
    vi.useFakeTimers();
    const { stream, text } = capture(false);
    const progress = new Progress(stream, 'forward');
    progress.add(10);
    vi.advanceTimersByTime(900);
    progress.stop();
    expect(text()).toBe('');
  });

  it('prints records, rate and the current input once the run takes longer, then every interval (lines off a terminal)', () => {
    vi.useFakeTimers();
    let nowMs = 0;
    const { stream, text } = capture(false);
    const progress = new Progress(stream, 'forward', { now: () => nowMs, intervalMs: 5000 });
    progress.input('samples/big.jsonl');
    progress.add(2000);
    nowMs = 1000;
    vi.advanceTimersByTime(1000);
    expect(text()).toBe('forward: 2,000 records, 2,000/s, 1.0 s, reading samples/big.jsonl\n');
    progress.add(8000);
    nowMs = 6000;
    vi.advanceTimersByTime(5000);
    expect(text().split('\n')[1]).toBe('forward: 10,000 records, 1,667/s, 6.0 s, reading samples/big.jsonl');
    progress.stop();
    vi.advanceTimersByTime(20_000);
    expect(text().split('\n')).toHaveLength(3);
  });

  it('redraws one line on a terminal and clears it at the end', () => {
    vi.useFakeTimers();
    const { stream, text } = capture(true);
    const progress = new Progress(stream, 'validate', { now: () => 0 });
    vi.advanceTimersByTime(2000);
    progress.stop();
    expect(text().startsWith('\r\x1b[Kvalidate: 0 records')).toBe(true);
    expect(text().endsWith('\r\x1b[K')).toBe(true);
  });
});
