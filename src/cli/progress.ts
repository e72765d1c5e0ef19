/**
 * Progress on stderr for runs that take more than a second: records, rate and the current input. On a
 * terminal it redraws one line; elsewhere (CI logs, pipes) it prints a line every few seconds.
 */
import type { Writable } from 'node:stream';
import { isTerminal } from './io.js';

export interface ProgressOptions {
  /** Quiet period before the first report. */
  readonly delayMs?: number;
  /** Interval between reports: 1 s on a terminal, 5 s elsewhere by default. */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

export class Progress {
  private records = 0;
  private current = '';
  private readonly startedMs: number;
  private timer: NodeJS.Timeout | undefined;
  private drawn = false;
  private readonly terminal: boolean;
  private readonly now: () => number;

  constructor(
    private readonly stream: Writable,
    private readonly verb: string,
    options: ProgressOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.startedMs = this.now();
    this.terminal = isTerminal(stream);
    const delayMs = options.delayMs ?? 1000;
    const intervalMs = options.intervalMs ?? (this.terminal ? 1000 : 5000);
    this.timer = setTimeout(() => {
      this.draw();
      this.timer = setInterval(() => this.draw(), intervalMs);
      this.timer.unref();
    }, delayMs);
    this.timer.unref();
  }

  /** Counts records done. */
  add(records = 1): void {
    this.records += records;
  }

  /** Names the input being read. */
  input(name: string): void {
    this.current = name;
  }

  /** Stops reporting and clears the redrawn line. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.drawn && this.terminal) this.stream.write('\r\x1b[K');
  }

  /** The text of one report: "forward: 12,000 records, 8,100/s, 1.5 s, reading samples/big.jsonl". */
  line(): string {
    const seconds = Math.max((this.now() - this.startedMs) / 1000, 0.001);
    const rate = Math.round(this.records / seconds);
    const where = this.current ? `, reading ${this.current}` : '';
    return `${this.verb}: ${this.records.toLocaleString('en-US')} records, ${rate.toLocaleString('en-US')}/s, ${seconds.toFixed(1)} s${where}`;
  }

  private draw(): void {
    this.drawn = true;
    if (this.terminal) this.stream.write(`\r\x1b[K${this.line()}`);
    else this.stream.write(`${this.line()}\n`);
  }
}
