/**
 * `npm run bench`: the forwarder's cost per record against its floor and against the forwarder a user would
 * write with Splunk's own JavaScript library, in ONE run on the SAME data. Not a test: it prints figures.
 *
 * Data: Defender export bodies from the fault suite's generator (test/support/generateRecords.ts, fixed seed):
 * alerts with their entities (Kubernetes, servers, PaaS, Activity Log), recommendations, container and server
 * vulnerability findings, secure scores and regulatory compliance, kept between 1 and 10 KB each.
 *
 * Stages, each timed on the wall clock (median of BENCH_ROUNDS rounds, default 5; every stage is one thread's
 * work). Each stage runs in a process of its own, warmed up by one untimed round on the same data, and each
 * timed round starts on a collected heap (`--expose-gc`): no stage runs on code V8 optimised for another, or
 * pays for another's garbage. The rounds interleave the stages, one stage at a time, so that a slow spell of
 * the machine falls on all of them alike.
 * - floor:   JSON.parse of each body + JSON.stringify of each record, what any forwarder must do at least;
 * - decide:  decode + classify + validate + normalise + route + dedupe decision (the pipeline, no delivery);
 * - render:  the HEC batches, Teams cards and emails of the routed records (test/faults/routes.yaml);
 * - end to end: the whole pipeline delivering to the tests' HEC stand-in over loopback, in a process of its
 *   own, batches of BENCH_BATCH bodies on BENCH_LANES lanes (the Function's partitions), gzip off and on;
 * - peer:    JSON.parse of each body, then `splunk-logging` with its batching on (the same batch size and
 *   bytes, no gzip), to the same receiver.
 * Then, in a child process each (so that their peak RSS is their own): 100,000 records end to end, generated
 * and sent a slice at a time; and `defender-forwarder forward` streaming a 100,000-line file, its RSS sampled.
 *
 * The last line is JSON with every figure.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resourceUsage } from 'node:process';
import { fileURLToPath } from 'node:url';
import { Logger as SplunkLogger } from 'splunk-logging';
import { createDelivery } from '../src/delivery/deliver.js';
import type { DeadLetter } from '../src/delivery/contracts.js';
import { DEFAULT_RETRY_POLICY } from '../src/delivery/retry.js';
import type { Envelope } from '../src/pipeline/decode.js';
import { createPipeline, type RecordResult } from '../src/pipeline/run.js';
import { MemoryLedger } from '../src/routing/dedupe.js';
import { parseRules } from '../src/routing/load.js';
import type { RoutingRules } from '../src/routing/types.js';
import { closeHttpClient, createHttpClient } from '../src/sinks/http.js';
import { closeSinks, createSinks } from '../src/sinks/registry.js';
import type { DeliveryItem, Sink } from '../src/sinks/sink.js';
import { generateRecords } from '../test/support/generateRecords.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root: this file runs from `.bench-build/bench/`. */
const root = path.resolve(here, '../..');
const env = process.env;
const RECORDS = Number(env['BENCH_RECORDS'] ?? 20_000);
const ROUNDS = Number(env['BENCH_ROUNDS'] ?? 5);
const BATCH = Number(env['BENCH_BATCH'] ?? 500);
const LANES = Number(env['BENCH_LANES'] ?? 4);
const LARGE = Number(env['BENCH_LARGE_RECORDS'] ?? 100_000);
const SEED = 'defender-forwarder bench';
const TOKEN = '5e11c0de-0000-4000-8000-00000000be4c';
/** HEC batching, ours and the peer's: events and bytes per request (the HEC sink's defaults). */
const HEC_BATCH_EVENTS = BATCH;
const HEC_BATCH_BYTES = 1_000_000;

// ------------------------------------------------------------------------------------------- data

/** `count` bodies of 1 to 10 KB, generated slice by slice (seed `SEED/<slice>`: ids never repeat). */
function* bodies(count: number, slice = 5_000): Generator<string[]> {
  let made = 0;
  for (let n = 0; made < count; n++) {
    const out: string[] = [];
    for (const record of generateRecords({ count: Math.ceil(slice * 1.2), seed: `${SEED}/${n}`, invalidShare: 0, maxTooLarge: 0 })) {
      const size = Buffer.byteLength(record.body);
      if (size < 1024 || size > 10_240) continue;
      out.push(record.body);
      if (out.length === slice || made + out.length === count) break;
    }
    made += out.length;
    yield out;
  }
}

function envelopes(list: readonly string[], offset: number): Envelope[] {
  return list.map((body, i) => ({ input: `eh:0/${offset + i}`, body, metadata: { partitionId: '0', sequenceNumber: offset + i } }));
}

// ------------------------------------------------------------------------------------------- the receiver

interface Receiver {
  readonly url: string;
  /** Events received since the last call. */
  count(): Promise<number>;
  stop(): void;
}

async function startReceiver(): Promise<Receiver> {
  const child: ChildProcess = fork(path.join(here, 'hecStandIn.js'), [TOKEN], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (message: unknown) => resolve((message as { url: string }).url));
    child.once('exit', (code) => reject(new Error(`the HEC stand-in exited (${code})`)));
  });
  return {
    url,
    count: () =>
      new Promise<number>((resolve) => {
        child.once('message', (message: unknown) => resolve((message as { events: number }).events));
        child.send({ count: true });
      }),
    stop: () => child.disconnect(),
  };
}

// ------------------------------------------------------------------------------------------- stages

const rulesOf = (file: string): RoutingRules => parseRules(readFileSync(path.join(root, file), 'utf8'), file);
const splunkOnly = (gzip: boolean): RoutingRules =>
  parseRules(
    `destinations:\n  splunk: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}", index: defender, gzip: ${gzip}, batchMaxEvents: ${HEC_BATCH_EVENTS}, batchMaxBytes: ${HEC_BATCH_BYTES}}\nroutes:\n  - {name: everything, match: {}, to: [splunk]}\n`,
    `bench-splunk-gzip-${gzip}.yaml`,
  );

function floor(list: readonly string[]): void {
  let sink = 0;
  for (const body of list) sink += JSON.stringify(JSON.parse(body)).length;
  if (sink === 0) throw new Error('unreachable');
}

/**
 * Decides every body, a batch at a time, as a host does: a batch's results are let go once it is done (they
 * are kept only when `keep` is given, for the render stage, outside its timing). Returns the records routed.
 */
async function decide(list: readonly string[], rules: RoutingRules, keep?: RecordResult[]): Promise<number> {
  const pipeline = createPipeline({ rules, ledger: new MemoryLedger() });
  let routed = 0;
  for (let i = 0; i < list.length; i += BATCH) {
    const results = await pipeline.processBatch(envelopes(list.slice(i, i + BATCH), i));
    for (const result of results) if (result.report.outcome === 'routed') routed += 1;
    keep?.push(...results);
  }
  return routed;
}

/** Renders what every destination would receive; returns the records rendered. */
function render(results: readonly RecordResult[], sinks: ReadonlyMap<string, Sink>): number {
  const byDestination = new Map<string, DeliveryItem[]>();
  for (const result of results) {
    if (result.finding === undefined) continue;
    for (const destination of result.report.destinations ?? []) {
      let items = byDestination.get(destination);
      if (!items) byDestination.set(destination, (items = []));
      items.push({ input: result.report.input, finding: result.finding });
    }
  }
  let rendered = 0;
  for (const [destination, items] of byDestination) {
    const sink = sinks.get(destination);
    if (!sink) throw new Error(`no sink ${destination}`);
    for (let i = 0; i < items.length; i += sink.maxBatchItems) {
      const chunk = items.slice(i, i + sink.maxBatchItems);
      if (sink.render(chunk).length === 0) throw new Error(`${destination} rendered nothing`);
      rendered += chunk.length;
    }
  }
  return rendered;
}

interface EndToEnd {
  run(list: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** The whole pipeline into HEC: batches of BATCH bodies, LANES at a time. */
function endToEnd(receiverUrl: string, gzip: boolean): EndToEnd {
  const rules = splunkOnly(gzip);
  const http = createHttpClient();
  const sinks = createSinks(rules, { env: { HEC_URL: receiverUrl, HEC_TOKEN: TOKEN }, http });
  const letters: DeadLetter[] = [];
  return {
    async run(list) {
      const ledger = new MemoryLedger();
      const delivery = createDelivery({ rules, sinks, ledger, deadLetters: { put: async (letter) => void letters.push(letter) }, policy: DEFAULT_RETRY_POLICY });
      const pipeline = createPipeline({ rules, ledger, delivery });
      let next = 0;
      const lane = async (): Promise<void> => {
        for (let start = next; start < list.length; start = next) {
          next += BATCH;
          await pipeline.processBatch(envelopes(list.slice(start, start + BATCH), start));
        }
      };
      await Promise.all(Array.from({ length: LANES }, lane));
      if (letters.length > 0) throw new Error(`${letters.length} records were dead-lettered: ${letters[0]?.error.message}`);
    },
    async close() {
      await closeSinks(sinks);
      closeHttpClient(http);
    },
  };
}

/** The peer: what a user writes with splunk-logging: parse each body, send it, batching on, no gzip. */
async function peer(receiverUrl: string, list: readonly string[]): Promise<void> {
  const logger = new SplunkLogger({ token: TOKEN, url: receiverUrl, maxBatchCount: HEC_BATCH_EVENTS, maxBatchSize: HEC_BATCH_BYTES, maxRetries: 3 });
  let failure: Error | undefined;
  logger.error = (error) => {
    failure ??= error;
  };
  // A `send` that fills a batch flushes it (its queue is then empty) and calls back once the request is done.
  let inFlight = 0;
  let allSent = false;
  let drained: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (drained = resolve));
  const requestDone = (): void => {
    inFlight -= 1;
    if (allSent && inFlight === 0) drained();
  };
  for (const body of list) {
    const record: unknown = JSON.parse(body);
    logger.send({ message: record, metadata: { source: 'defender-for-cloud', sourcetype: 'azure:defender', index: 'defender' } }, requestDone);
    if (logger.serializedContextQueue.length === 0) inFlight += 1;
  }
  if (logger.serializedContextQueue.length > 0) {
    inFlight += 1;
    logger.flush(requestDone);
  }
  allSent = true;
  if (inFlight === 0) drained();
  await finished;
  if (failure) throw failure;
}

// ------------------------------------------------------------------------------------------- timing

/**
 * Times one stage. The heap is collected first (the bench runs with --expose-gc), so that no stage pays for
 * the garbage of the stage before it.
 */
async function time(fn: () => unknown): Promise<number> {
  collectGarbage();
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

const collectGarbage = (): void => {
  const gc: unknown = (globalThis as { gc?: unknown }).gc;
  if (typeof gc === 'function') (gc as () => void)();
};

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

interface Figure {
  readonly ms: number;
  readonly recordsPerSecond: number;
  readonly mbPerSecond: number;
}

// ------------------------------------------------------------------------------------------- modes

/** A child: LARGE records end to end, generated and sent a slice at a time; prints its figures. */
async function largeRun(receiverUrl: string): Promise<void> {
  const e2e = endToEnd(receiverUrl, false);
  const started = performance.now();
  const rss: number[] = [];
  let sent = 0;
  // Slices of 1,000 (two Function batches each): the generator's own garbage stays small beside the pipeline's.
  for (const slice of bodies(LARGE, 1_000)) {
    await e2e.run(slice);
    sent += slice.length;
    rss.push(process.memoryUsage().rss);
  }
  const ms = performance.now() - started;
  await e2e.close();
  const quarter = rss.slice(0, Math.max(1, Math.floor(rss.length / 4)));
  process.send?.({ records: sent, ms, peakRssMb: (resourceUsage().maxRSS * 1024) / 1e6, rssFirstQuarterMaxMb: Math.max(...quarter) / 1e6, rssLastQuarterMaxMb: Math.max(...rss.slice(-quarter.length)) / 1e6 });
}

/** `forward` (the real command) streaming a LARGE-line file to the receiver: its peak RSS over time. */
async function streamFile(receiverUrl: string, scratch: string): Promise<{ records: number; ms: number; peakRssMb: number; firstQuarterPeakMb: number; lastQuarterPeakMb: number }> {
  const file = path.join(scratch, 'large.jsonl');
  const out = createWriteStream(file);
  let records = 0;
  for (const slice of bodies(LARGE)) {
    records += slice.length;
    if (!out.write(`${slice.join('\n')}\n`)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve) => out.end(resolve));
  const rulesFile = path.join(scratch, 'splunk.yaml');
  writeFileSync(rulesFile, `destinations:\n  splunk: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}", index: defender}\nroutes:\n  - {name: everything, match: {}, to: [splunk]}\n`);
  const started = performance.now();
  const child = spawn(process.execPath, [path.join(root, 'bin/defender-forwarder.js'), 'forward', '--input', file, '--rules', rulesFile, '--state-dir', path.join(scratch, 'state'), '--report', 'none'], {
    env: { PATH: env['PATH'] ?? '', HEC_URL: receiverUrl, HEC_TOKEN: TOKEN },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const samples: number[] = [];
  const sampler = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      if (kb > 0) samples.push(kb * 1024);
    } catch {
      // the process ended between two samples
    }
  }, 100);
  const code = await new Promise<number>((resolve) => child.on('close', (exit) => resolve(exit ?? -1)));
  clearInterval(sampler);
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`forward exited ${code}: ${stderr.slice(-500)}`);
  const quarter = Math.max(1, Math.floor(samples.length / 4));
  return {
    records,
    ms,
    peakRssMb: Math.max(...samples) / 1e6,
    firstQuarterPeakMb: Math.max(...samples.slice(0, quarter)) / 1e6,
    lastQuarterPeakMb: Math.max(...samples.slice(-quarter)) / 1e6,
  };
}

type Stage = 'floor' | 'decide' | 'render' | 'endToEnd' | 'endToEndGzip' | 'peer';
const STAGES: readonly Stage[] = ['floor', 'decide', 'render', 'endToEnd', 'endToEndGzip', 'peer'];
/** The stages whose records end up at the receiver (its count is checked after each of their rounds). */
const DELIVERING: ReadonlySet<Stage> = new Set(['endToEnd', 'endToEndGzip', 'peer']);

/** What a stage's process answers: ready (warmed up), a round's time, or its peak RSS once done. */
type StageReply = { ready: true } | { ms: number } | { done: true; peakRssMb: number } | { failed: string };

/**
 * A stage's own process: it generates the same bodies (same seed), warms the stage up (validators compiled,
 * V8 optimised, connections open), then times one round each time the parent asks. Each stage has a process
 * of its own so that none runs on code V8 optimised for, or a heap filled by, another stage.
 */
async function stageProcess(stage: Stage, receiverUrl: string): Promise<void> {
  const reply = (message: StageReply): void => void process.send?.(message);
  const [list = []] = [...bodies(RECORDS, RECORDS)];
  const faultRules = rulesOf('test/faults/routes.yaml');
  // Only the render stage renders: the other stages do not build its destinations.
  const http = stage === 'render' ? createHttpClient() : undefined;
  const renderSinks = http
    ? createSinks(faultRules, { env: { HEC_URL: receiverUrl, HEC_TOKEN: TOKEN, TEAMS_URL: 'https://teams.example/hook?sig=bench', SMTP_URL: 'smtp://127.0.0.1:9' }, http })
    : new Map<string, Sink>();
  const e2e = stage === 'endToEnd' || stage === 'endToEndGzip' ? endToEnd(receiverUrl, stage === 'endToEndGzip') : undefined;
  /** One timed round of the stage (what is prepared outside the timing is prepared first). */
  const round = async (): Promise<number> => {
    switch (stage) {
      case 'floor':
        return time(() => floor(list));
      case 'decide':
        return time(async () => {
          if ((await decide(list, faultRules)) === 0) throw new Error('nothing was routed');
        });
      case 'render': {
        // The render stage's input is decided outside its timing, and let go after it.
        const decided: RecordResult[] = [];
        await decide(list, faultRules, decided);
        return time(() => render(decided, renderSinks));
      }
      case 'endToEnd':
      case 'endToEndGzip':
        return time(() => e2e?.run(list));
      case 'peer':
        return time(() => peer(receiverUrl, list));
    }
  };
  // Warm-up: one untimed round on the same data, whatever the stage.
  await round();
  reply({ ready: true });
  process.on('message', (message: unknown) => {
    const command = (message as { command?: string }).command;
    if (command === 'round') {
      round().then(
        (ms) => reply({ ms }),
        (error: unknown) => reply({ failed: error instanceof Error ? error.message : String(error) }),
      );
    } else if (command === 'done') {
      void Promise.all([e2e?.close(), closeSinks(renderSinks)]).then(() => {
        if (http) closeHttpClient(http);
        reply({ done: true, peakRssMb: (resourceUsage().maxRSS * 1024) / 1e6 });
        process.disconnect();
      });
    }
  });
}

interface StageChild {
  /** Sends a command and resolves with the reply to it (one command at a time). */
  ask(command: 'round' | 'done'): Promise<StageReply>;
  readonly ready: Promise<StageReply>;
}

function startStage(stage: Stage, receiverUrl: string): StageChild {
  // The stage's process runs with this one's flags (--expose-gc).
  const child = fork(fileURLToPath(import.meta.url), ['--stage', stage, receiverUrl], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let exited: Error | undefined;
  const waiting: ((reply: StageReply) => void)[] = [];
  child.on('message', (message: unknown) => waiting.shift()?.(message as StageReply));
  // A command sent after the process is gone fails here; its answer is the `failed` below.
  child.on('error', () => undefined);
  child.once('exit', (code) => {
    exited = new Error(`the ${stage} stage's process exited (${code})`);
    for (const resolve of waiting.splice(0)) resolve({ failed: exited.message });
  });
  const next = (): Promise<StageReply> =>
    new Promise<StageReply>((resolve) => {
      if (exited) resolve({ failed: exited.message });
      else waiting.push(resolve);
    });
  return {
    ready: next(),
    ask(command) {
      const reply = next();
      if (!exited) child.send({ command });
      return reply;
    },
  };
}

function expectReply<K extends 'ready' | 'ms' | 'done'>(stage: Stage, reply: StageReply, key: K): Extract<StageReply, Record<K, unknown>> {
  if ('failed' in reply) throw new Error(`${stage}: ${reply.failed}`);
  if (!(key in reply)) throw new Error(`${stage}: unexpected answer ${JSON.stringify(reply)}`);
  return reply as Extract<StageReply, Record<K, unknown>>;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--stage') {
    await stageProcess(process.argv[3] as Stage, process.argv[4] ?? '');
    return;
  }
  const receiver = await startReceiver();
  try {
    if (process.argv[2] === '--large') {
      await largeRun(receiver.url);
      return;
    }
    const [list = []] = [...bodies(RECORDS, RECORDS)];
    const bytes = list.reduce((sum, body) => sum + Buffer.byteLength(body), 0);
    const figure = (ms: number): Figure => ({ ms, recordsPerSecond: list.length / (ms / 1000), mbPerSecond: bytes / 1e6 / (ms / 1000) });
    process.stderr.write(`bench: ${list.length} bodies, ${(bytes / 1e6).toFixed(1)} MB (${(bytes / list.length / 1024).toFixed(1)} KB each on average); ${ROUNDS} rounds per stage, each stage in a process of its own\n`);

    // One process per stage, started one after the other (their warm-ups send to the receiver too).
    const children = new Map<Stage, StageChild>();
    for (const stage of STAGES) {
      const child = startStage(stage, receiver.url);
      expectReply(stage, await child.ready, 'ready');
      children.set(stage, child);
    }
    await receiver.count();

    const rounds: Record<Stage, number[]> = { floor: [], decide: [], render: [], endToEnd: [], endToEndGzip: [], peer: [] };
    // Rounds interleave the stages (floor, decide, ..., peer; again), so that a slower spell of the machine
    // falls on every stage alike. Only one stage runs at a time.
    for (let round = 0; round < ROUNDS; round++) {
      for (const stage of STAGES) {
        const child = children.get(stage);
        if (!child) throw new Error(`no process for ${stage}`);
        rounds[stage].push(expectReply(stage, await child.ask('round'), 'ms').ms);
        if (DELIVERING.has(stage)) {
          const received = await receiver.count();
          if (received !== list.length) throw new Error(`${stage}: the receiver got ${received} events, not ${list.length}`);
        }
      }
      process.stderr.write(`bench: round ${round + 1}/${ROUNDS} done\n`);
    }
    const peakRss: Record<string, number> = {};
    for (const [stage, child] of children) peakRss[stage] = expectReply(stage, await child.ask('done'), 'done').peakRssMb;
    const figures = Object.fromEntries(Object.entries(rounds).map(([stage, values]) => [stage, figure(median(values))])) as Record<Stage, Figure>;
    const peakRssMb = Math.max(...Object.values(peakRss));

    process.stderr.write(`bench: ${LARGE} records end to end in a process of their own...\n`);
    const large = await new Promise<Record<string, number>>((resolve, reject) => {
      const child = fork(fileURLToPath(import.meta.url), ['--large'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      child.once('message', (message: unknown) => resolve(message as Record<string, number>));
      child.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`the large run exited ${code}`))));
    });
    process.stderr.write(`bench: forward streaming a ${LARGE}-line file...\n`);
    const scratch = mkdtempSync(path.join(tmpdir(), 'df-bench-'));
    let stream;
    try {
      stream = await streamFile(receiver.url, scratch);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }

    const row = (name: string, stage: Stage): string => {
      const f = figures[stage];
      return `${name.padEnd(36)} ${f.ms.toFixed(0).padStart(7)} ms ${Math.round(f.recordsPerSecond).toLocaleString('en-US').padStart(9)} records/s ${f.mbPerSecond.toFixed(1).padStart(7)} MB/s ${`peak RSS ${(peakRss[stage] ?? 0).toFixed(0)} MB`.padStart(18)}`;
    };
    console.log(`records: ${list.length} bodies, ${(bytes / list.length / 1024).toFixed(1)} KB average, 1-10 KB; median of ${ROUNDS} rounds (wall clock); each stage in a process of its own; Node ${process.versions.node}`);
    console.log(row('floor (parse + stringify)', 'floor'));
    console.log(row('decide (decode .. route + dedupe)', 'decide'));
    console.log(row('render (HEC, Teams, email)', 'render'));
    console.log(row(`end to end to HEC, gzip off`, 'endToEnd'));
    console.log(row(`end to end to HEC, gzip on`, 'endToEndGzip'));
    console.log(row(`peer: splunk-logging, batches of ${HEC_BATCH_EVENTS}`, 'peer'));
    const ratios = {
      decideOverFloor: figures.decide.recordsPerSecond / figures.floor.recordsPerSecond,
      endToEndOverPeer: figures.endToEnd.recordsPerSecond / figures.peer.recordsPerSecond,
      endToEndOverFloor: figures.endToEnd.recordsPerSecond / figures.floor.recordsPerSecond,
      endToEndGzipOverPeer: figures.endToEndGzip.recordsPerSecond / figures.peer.recordsPerSecond,
    };
    console.log(`decide/floor ${ratios.decideOverFloor.toFixed(2)} (target >= 0.4); end-to-end/peer ${ratios.endToEndOverPeer.toFixed(2)} (target >= 1.5); end-to-end/floor ${ratios.endToEndOverFloor.toFixed(2)} (target >= 0.3); gzip on/peer ${ratios.endToEndGzipOverPeer.toFixed(2)}`);
    console.log(`peak RSS: the stages ${peakRssMb.toFixed(0)} MB at most; ${large['records']} records end to end ${Number(large['peakRssMb']).toFixed(0)} MB (target < 300), RSS in the first and last quarter ${Number(large['rssFirstQuarterMaxMb']).toFixed(0)} / ${Number(large['rssLastQuarterMaxMb']).toFixed(0)} MB`);
    console.log(`forward streaming ${stream.records} lines: ${(stream.records / (stream.ms / 1000)).toFixed(0)} records/s, peak RSS ${stream.peakRssMb.toFixed(0)} MB, first / last quarter ${stream.firstQuarterPeakMb.toFixed(0)} / ${stream.lastQuarterPeakMb.toFixed(0)} MB`);
    console.log(JSON.stringify({ node: process.versions.node, records: list.length, bytes, batch: BATCH, lanes: LANES, rounds: ROUNDS, figures, ratios, peakRssMb, peakRss, large, stream }));
  } finally {
    receiver.stop();
  }
}

await main();
