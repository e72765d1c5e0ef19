// `npx vite-node bench/consumerMemory.ts` (after `npm run build`): does the standalone consumer's memory stay
// flat on a long run? The real command line (`node bin/defender-forwarder.js forward --from-eventhub`) reads a
// 4-partition hub (the Event Hubs stand-in), with checkpoints, ledger, quarantine and dead letters in Azurite and
// the routes of test/faults/routes.yaml delivering to HEC, Teams and SMTP receivers on loopback. Its RSS (from
// /proc/<pid>/status, else `ps`) is sampled every 250 ms; the baseline is taken once a 5,000-record warm-up is
// in HEC, the second reading once 50,000 more are. The result is the ratio after/baseline, measured in the same
// run: about 1.0 means flat. One reading lands anywhere on the garbage collector's sawtooth (V8 sizes its heap
// to the load), so the RSS at every 10,000 records and the medians of the first and last fifth are printed too.
// Not a test: it prints figures (exit 1 only when the run itself failed).
//
// vite-node rather than node: it runs the TypeScript test support modules (receivers, stand-ins, generator).
// BENCH_WARMUP / BENCH_RECORDS change the counts; BENCH_NODE_FLAGS=--trace-gc adds the live heap after each full
// GC; BENCH_CONSUMER_LOG=<file> and BENCH_SAMPLES=<file> keep the consumer's output and the RSS samples.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomContainerName, startAzurite, type AzuriteServer } from '../test/support/azurite.js';
import { startEventHubsStandIn, type EventHubsStandIn } from '../test/support/eventHubs.js';
import { FAULT_DESTINATIONS, FAULT_ROUTES_FILE, generateRecords, type GeneratedRecord } from '../test/support/generateRecords.js';
import { startHecReceiver, type HecReceiver } from '../test/support/hecReceiver.js';
import { startSmtpServer, type SmtpStandIn } from '../test/support/smtpServer.js';
import { startTeamsReceiver, type TeamsReceiver } from '../test/support/teamsReceiver.js';

const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 5_000);
const MEASURED = Number(process.env['BENCH_RECORDS'] ?? 50_000);
const PARTITIONS = 4;
/** Appended per partition at a time; the next chunk goes in while half a chunk is still ahead of the consumer. */
const CHUNK_PER_PARTITION = 2_500;
const SAMPLE_MS = 250;
/** Fail when HEC sees nothing new for this long (the consumer is stuck or gone). */
const STALL_MS = 120_000;
/** How long the consumer may take to notice it is idle (--exit-when-idle 3) and stop, once everything is in HEC. */
const EXIT_GRACE_MS = 60_000;
const SEED = 'consumer-memory';
/** BENCH_CONSUMER_LOG=<file>: the consumer's whole stderr is written there (progress lines, batch summaries). */
const CONSUMER_LOG = process.env['BENCH_CONSUMER_LOG'];
/** BENCH_SAMPLES=<file>: every RSS sample as CSV (seconds since the consumer started, RSS MB, records in HEC). */
const SAMPLES_FILE = process.env['BENCH_SAMPLES'];
/**
 * BENCH_NODE_FLAGS='--trace-gc ...': extra node flags for the consumer, for a diagnosis (its stdout then goes to
 * BENCH_CONSUMER_LOG too). With --trace-gc the live heap after each full GC (Mark-Compact) is reported as well:
 * the heap figure that RSS, which follows V8's heap sizing and the sawtooth between collections, cannot give.
 */
const NODE_FLAGS = (process.env['BENCH_NODE_FLAGS'] ?? '').split(/\s+/).filter((flag) => flag !== '');
const TRACE_GC = NODE_FLAGS.includes('--trace-gc');
/** V8's --trace-gc line of a full collection: `Mark-Compact 131.4 (163.4) -> 39.2 (163.4) MB, ...`. */
const MARK_COMPACT = /Mark-Compact(?: \([a-z ]+\))? [\d.]+ \([\d.]+\) -> ([\d.]+) \(([\d.]+)\) MB/;
const TOKEN = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';

const root = path.resolve(import.meta.dirname, '..');
const bin = path.join(root, 'bin/defender-forwarder.js');
/** Exits the consumer when the benchmark's end of its stdin pipe closes (the benchmark died without cleaning up). */
const PARENT_WATCHDOG =
  "data:text/javascript,process.stdin.on('end',()=>process.exit(0)).on('error',()=>process.exit(0)).resume();process.stdin.unref?.()";

interface Sample {
  readonly atMs: number;
  readonly rssKb: number;
  /** Records in HEC when it was taken. */
  readonly delivered: number;
}

class BenchFailure extends Error {}

const cleanups: (() => Promise<void> | void)[] = [];
let child: ChildProcess | undefined;
const killChildNow = (): void => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
};
process.once('exit', killChildNow);

async function cleanUp(): Promise<void> {
  for (const step of cleanups.splice(0).reverse()) {
    try {
      await step();
    } catch {
      // best effort: every other step still runs
    }
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`consumerMemory: ${signal}: cleaning up\n`);
    void cleanUp().finally(() => process.exit(1));
  });
}

/** RSS and the kernel's high-water mark of a process, in kB; undefined once it is gone. */
function readMemory(pid: number): { rssKb: number; hwmKb?: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    const hwm = /^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1];
    if (rss === undefined) return undefined; // a zombie has no VmRSS
    return { rssKb: Number(rss), ...(hwm !== undefined ? { hwmKb: Number(hwm) } : {}) };
  } catch {
    if (existsSync('/proc/self/status')) return undefined; // /proc is there: the process is gone
  }
  try {
    const text = execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return text === '' ? undefined : { rssKb: Number(text) };
  } catch {
    return undefined;
  }
}

const mb = (kb: number): number => (kb * 1024) / 1e6;
const fmt = (value: number, digits = 0): string => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const benchStarted = performance.now();
  for (const [name, value] of [['BENCH_WARMUP', WARMUP], ['BENCH_RECORDS', MEASURED]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new BenchFailure(`${name} must be a whole number of at least 1`);
  }
  if (!existsSync(path.join(root, 'dist/src/cli/main.js'))) throw new BenchFailure('dist/ is missing: run `npm run build` first');

  // ---------------------------------------------------------------------------------------- services
  const hubName = randomContainerName('hub');
  const started = await Promise.allSettled([
    startAzurite(),
    startEventHubsStandIn({ hubs: { [hubName]: PARTITIONS } }),
    startHecReceiver({ token: TOKEN }),
    startTeamsReceiver(),
    startSmtpServer(),
  ] as const);
  const [azuriteResult, hubResult, hecResult, teamsResult, smtpResult] = started;
  if (azuriteResult.status === 'fulfilled') cleanups.push(() => azuriteResult.value.stop());
  if (hubResult.status === 'fulfilled') cleanups.push(() => hubResult.value.close());
  if (hecResult.status === 'fulfilled') cleanups.push(() => hecResult.value.stop());
  if (teamsResult.status === 'fulfilled') cleanups.push(() => teamsResult.value.close());
  if (smtpResult.status === 'fulfilled') cleanups.push(() => smtpResult.value.stop());
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw new BenchFailure(`a service did not start: ${failed.reason instanceof Error ? failed.reason.message : String(failed.reason)}`);
  const azurite = (azuriteResult as PromiseFulfilledResult<AzuriteServer>).value;
  const hub = (hubResult as PromiseFulfilledResult<EventHubsStandIn>).value;
  const hec = (hecResult as PromiseFulfilledResult<HecReceiver>).value;
  const teams = (teamsResult as PromiseFulfilledResult<TeamsReceiver>).value;
  const smtp = (smtpResult as PromiseFulfilledResult<SmtpStandIn>).value;

  // ---------------------------------------------------------------------------------------- records
  const generatedAt = performance.now();
  const records = generateRecords({ count: WARMUP + MEASURED, seed: SEED, maxTooLarge: 0 });
  const generateMs = performance.now() - generatedAt;
  const goesTo = (record: GeneratedRecord, destination: string): boolean => record.expected.destinations.includes(destination);
  const count = (from: number, to: number, destination: string): number => {
    let n = 0;
    for (let i = from; i < to; i++) if (goesTo(records[i] as GeneratedRecord, destination)) n++;
    return n;
  };
  const expectedHecWarmup = count(0, WARMUP, FAULT_DESTINATIONS.splunk);
  const expectedHecTotal = count(0, records.length, FAULT_DESTINATIONS.splunk);
  const expectedTeams = count(0, records.length, FAULT_DESTINATIONS.teams);
  const expectedEmail = count(0, records.length, FAULT_DESTINATIONS.email);
  const bodyBytes = records.reduce((sum, record) => sum + Buffer.byteLength(record.body), 0);

  /** Appends records [from, to) round-robin over the partitions; answers how many of them HEC must receive. */
  const append = (from: number, to: number): number => {
    const perPartition: string[][] = Array.from({ length: PARTITIONS }, () => []);
    for (let i = from; i < to; i++) perPartition[i % PARTITIONS]?.push((records[i] as GeneratedRecord).body);
    perPartition.forEach((bodies, partition) => hub.append(hubName, String(partition), bodies));
    return count(from, to, FAULT_DESTINATIONS.splunk);
  };

  // HEC's receiver keeps every event; count them (unique by kind and id) and let them go.
  const seen = new Set<string>();
  let hecEvents = 0;
  let lastProgressMs = Date.now();
  const drainHec = (): number => {
    if (hec.events.length > 0) {
      for (const event of hec.events) {
        const fields = (event['fields'] ?? {}) as Record<string, unknown>;
        seen.add(`${String(fields['kind'])}|${String(fields['id'])}`);
      }
      hecEvents += hec.events.length;
      hec.events.length = 0;
      lastProgressMs = Date.now();
    }
    return seen.size;
  };

  // ---------------------------------------------------------------------------------------- consumer
  const scratch = mkdtempSync(path.join(tmpdir(), 'consumer-memory-'));
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  const stores = randomContainerName('bench');
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    HEC_URL: hec.url,
    HEC_TOKEN: TOKEN,
    TEAMS_URL: teams.url,
    SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
    EVENTHUB_CONNECTION: hub.connectionString(hubName),
    EVENTHUB_CONSUMER_GROUP: 'forwarder',
    FORWARDER_STORAGE_CONNECTION: azurite.connectionString,
    CHECKPOINT_CONTAINER: `${stores}-cp`,
    QUARANTINE_CONTAINER: `${stores}-qu`,
    DEADLETTER_CONTAINER: `${stores}-dl`,
    LEDGER_CONTAINER: `${stores}-lg`,
  };
  const args = ['forward', '--from-eventhub', '--rules', FAULT_ROUTES_FILE, '--report', 'none', '--exit-when-idle', '3', '--max-batch-size', '100'];

  // The program is bin/defender-forwarder.js, started through a symlink of another name: node runs the real
  // file (it resolves the main module's symlink), while a clean-up elsewhere on the machine that kills by name
  // (`ps aux | grep defender-forwarder.js | xargs kill -9`, as seen on shared machines) leaves this run alone.
  const program = path.join(scratch, 'consumer-under-benchmark.js');
  symlinkSync(bin, program);
  append(0, WARMUP);
  const consumer = spawn(process.execPath, [...NODE_FLAGS, '--import', PARENT_WATCHDOG, program, ...args], {
    cwd: scratch,
    env,
    stdio: ['pipe', CONSUMER_LOG || TRACE_GC ? 'pipe' : 'ignore', 'pipe'],
  });
  child = consumer;
  cleanups.push(async () => {
    if (consumer.exitCode !== null || consumer.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => consumer.once('exit', () => resolve()));
    consumer.kill('SIGTERM');
    const timer = setTimeout(() => consumer.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  });
  const pid = consumer.pid;
  if (pid === undefined) throw new BenchFailure('the consumer did not start');
  let exit: { code: number | null; signal: NodeJS.Signals | null; atMs: number } | undefined;
  consumer.once('exit', (code, signal) => (exit = { code, signal, atMs: performance.now() }));

  // stderr: the per-batch run.summary lines, progress, warnings; keep the run's summary, count the warnings.
  let stderrTail = '';
  let partial = '';
  let batches = 0;
  let runSummary: Record<string, unknown> | undefined;
  const warnings: string[] = [];
  if (CONSUMER_LOG) {
    writeFileSync(CONSUMER_LOG, '');
    consumer.stdout?.on('data', (chunk: Buffer) => appendFileSync(CONSUMER_LOG, chunk));
  }
  /** With --trace-gc: the heap after each full GC, and how many records were in HEC then. */
  const fullGcs: { delivered: number; heapMb: number; committedMb: number }[] = [];
  let stdoutPartial = '';
  if (TRACE_GC) {
    consumer.stdout?.on('data', (chunk: Buffer) => {
      const lines = (stdoutPartial + chunk.toString('utf8')).split('\n');
      stdoutPartial = lines.pop() ?? '';
      for (const line of lines) {
        const match = MARK_COMPACT.exec(line);
        if (match) fullGcs.push({ delivered: seen.size, heapMb: Number(match[1]), committedMb: Number(match[2]) });
      }
    });
  }
  consumer.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    if (CONSUMER_LOG) appendFileSync(CONSUMER_LOG, text);
    stderrTail = (stderrTail + text).slice(-6_000);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('{"') && line.includes('"run.summary"')) {
        let parsed: Record<string, unknown> | undefined;
        try {
          parsed = JSON.parse(line) as Record<string, unknown>;
        } catch {
          warnings.push(line);
        }
        if (parsed?.['scope'] === 'run') runSummary = parsed;
        else if (parsed) batches += 1;
      } else if (!/^forward: [\d,]+ events, /.test(line) && /retrying|dead-lettered|unreachable|not written|unacknowledged|recovers by itself|defender-forwarder: /.test(line)) {
        warnings.push(line);
      }
    }
  });

  // RSS every 250 ms; the kernel's high-water mark is the peak between samples too.
  const samples: Sample[] = [];
  let hwmKb = 0;
  const sampleNow = (): Sample | undefined => {
    const memory = readMemory(pid);
    if (memory === undefined) return undefined;
    const sample = { atMs: performance.now(), rssKb: memory.rssKb, delivered: seen.size };
    samples.push(sample);
    hwmKb = Math.max(hwmKb, memory.hwmKb ?? 0);
    return sample;
  };
  const sampler = setInterval(sampleNow, SAMPLE_MS);
  cleanups.push(() => clearInterval(sampler));

  const consumerStarted = performance.now();
  /** Waits until `done()`; fails when the consumer exits first or HEC stalls. */
  const waitUntil = async (what: string, done: () => boolean, tick?: () => void): Promise<void> => {
    lastProgressMs = Date.now();
    while (!done()) {
      if (exit !== undefined) {
        const outside = exit.signal === 'SIGKILL' ? ' (this benchmark sends SIGKILL only when cleaning up: something else on the machine killed it)' : '';
        throw new BenchFailure(`the consumer exited (code ${exit.code}, signal ${exit.signal})${outside} before ${what}: ${seen.size} of ${expectedHecTotal} records in HEC. Its stderr ends:\n${stderrTail.split('\n').slice(-6).join('\n')}`);
      }
      if (Date.now() - lastProgressMs > STALL_MS) {
        throw new BenchFailure(`nothing new reached HEC for ${STALL_MS / 1000} s while waiting for ${what} (${seen.size} of ${expectedHecTotal}). The consumer's stderr ends:\n${stderrTail}`);
      }
      tick?.();
      await sleep(50);
    }
  };

  // Warm-up: the baseline is the RSS once its records are all in HEC.
  await waitUntil('the warm-up was delivered', () => drainHec() >= expectedHecWarmup);
  const baseline = sampleNow();
  if (baseline === undefined) throw new BenchFailure('could not read the consumer\'s RSS');
  const warmupSeconds = (baseline.atMs - consumerStarted) / 1000;

  // The measured part: chunks of 2,500 per partition, the next one appended while at least half a chunk is
  // still ahead of the consumer, so it never goes idle. RSS is also noted at every 10,000 records.
  const chunk = CHUNK_PER_PARTITION * PARTITIONS;
  let appended = WARMUP;
  let expectedHecAppended = expectedHecWarmup;
  const measuredStarted = performance.now();
  const milestones: { records: number; rssKb: number }[] = [{ records: WARMUP, rssKb: baseline.rssKb }];
  // Milestone targets, computed once (count() walks the list).
  const milestoneTargets = new Map<number, number>();
  for (let at = WARMUP + chunk; at < records.length; at += chunk) milestoneTargets.set(at, count(0, at, FAULT_DESTINATIONS.splunk));
  const tick = (): void => {
    const delivered = seen.size;
    if (appended < records.length && expectedHecAppended - delivered < chunk / 2) {
      const to = Math.min(appended + chunk, records.length);
      expectedHecAppended += append(appended, to);
      appended = to;
    }
    const next = WARMUP + milestones.length * chunk;
    const target = milestoneTargets.get(next);
    if (target !== undefined && delivered >= target) {
      const sample = sampleNow();
      if (sample) milestones.push({ records: next, rssKb: sample.rssKb });
    }
  };
  await waitUntil(`all ${fmt(records.length)} records were delivered`, () => drainHec() >= expectedHecTotal, tick);
  const after = sampleNow();
  if (after === undefined) throw new BenchFailure('could not read the consumer\'s RSS after the run');
  milestones.push({ records: records.length, rssKb: after.rssKb });
  const measuredSeconds = (after.atMs - measuredStarted) / 1000;

  // Let it notice it is idle and stop by itself (its final summary names what it did).
  const exitDeadline = Date.now() + EXIT_GRACE_MS;
  while (exit === undefined && Date.now() < exitDeadline) await sleep(100);
  clearInterval(sampler);
  drainHec();
  const exitedByItself = exit !== undefined;
  const lastSample = samples.at(-1);
  const sampledPeakKb = samples.reduce((peak, sample) => Math.max(peak, sample.rssKb), 0);
  const peakKb = Math.max(hwmKb, sampledPeakKb);

  // ---------------------------------------------------------------------------------------- report
  const ratio = after.rssKb / baseline.rssKb;
  // One reading depends on where the garbage collector's sawtooth happens to be, and V8 keeps growing its heap
  // for a while once the load is full: the median of the samples taken while each fifth of the records went
  // through shows the trend, and the last fifth against the second (the first holds that growth) is the
  // steady-state ratio.
  const span = after.delivered - baseline.delivered;
  const medianOf = (from: number, to: number): number => {
    const values = samples
      .filter((sample) => sample.delivered >= from && sample.delivered <= to && sample.atMs >= baseline.atMs && sample.atMs <= after.atMs)
      .map((sample) => sample.rssKb)
      .sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)] ?? Number.NaN;
  };
  const fifthsKb = [0, 1, 2, 3, 4].map((k) => medianOf(baseline.delivered + (span * k) / 5, baseline.delivered + (span * (k + 1)) / 5));
  const steadyRatio = (fifthsKb[4] ?? Number.NaN) / (fifthsKb[1] ?? Number.NaN);
  if (SAMPLES_FILE) {
    writeFileSync(SAMPLES_FILE, `seconds,rss_mb,records_in_hec\n${samples.map((sample) => `${((sample.atMs - consumerStarted) / 1000).toFixed(2)},${mb(sample.rssKb).toFixed(1)},${sample.delivered}`).join('\n')}\n`);
  }
  const header = ['records', 'seconds', 'records/s', 'RSS baseline MB', `RSS after ${fmt(MEASURED)} MB`, 'peak MB', 'after/baseline'];
  const row = [fmt(MEASURED), fmt(measuredSeconds, 1), fmt(MEASURED / measuredSeconds), fmt(mb(baseline.rssKb)), fmt(mb(after.rssKb)), fmt(mb(peakKb)), ratio.toFixed(2)];
  const widths = header.map((title, i) => Math.max(title.length, (row[i] ?? '').length));
  console.log(
    `standalone consumer, RSS of the real process (${process.platform === 'linux' ? '/proc VmRSS' : 'ps rss'}, every ${SAMPLE_MS} ms): ` +
      `${fmt(WARMUP)} warm-up records, then ${fmt(MEASURED)} (${(bodyBytes / records.length / 1024).toFixed(1)} KB a body on average), ` +
      `${PARTITIONS} partitions, --max-batch-size 100, routes of test/faults/routes.yaml`,
  );
  console.log(header.map((title, i) => title.padStart(widths[i] ?? 0)).join('  '));
  console.log(row.map((cell, i) => cell.padStart(widths[i] ?? 0)).join('  '));
  console.log(`RSS by records done: ${milestones.map((m) => `${m.records % 1000 === 0 ? `${m.records / 1000}k` : fmt(m.records)} ${fmt(mb(m.rssKb))} MB`).join(', ')}`);
  console.log(
    `median RSS by fifth of the ${fmt(MEASURED)}: ${fifthsKb.map((kb) => fmt(mb(kb))).join(' · ')} MB; ` +
      `steady state, last fifth/second fifth: ${steadyRatio.toFixed(2)}`,
  );
  if (TRACE_GC) {
    const during = fullGcs.filter((gc) => gc.delivered >= baseline.delivered);
    const before = fullGcs.filter((gc) => gc.delivered < baseline.delivered).at(-1);
    const heaps = during.map((gc) => gc.heapMb);
    console.log(
      `live heap after each full GC (--trace-gc): ${before ? `${before.heapMb} MB at the end of the warm-up; ` : ''}` +
        `${during.length} during the ${fmt(MEASURED)}: ${heaps.length > 0 ? `${Math.min(...heaps)}-${Math.max(...heaps)} MB, the last ${heaps.at(-1)} MB` : 'none'}; ` +
        `V8's committed heap ${during.length > 0 ? `${Math.min(...during.map((gc) => gc.committedMb))}-${Math.max(...during.map((gc) => gc.committedMb))} MB` : '-'}`,
    );
    console.log(`  ${fullGcs.map((gc) => `${fmt(gc.delivered)}: ${gc.heapMb} (${gc.committedMb})`).join(', ')}`);
  }
  if (lastSample) console.log(`RSS at the last sample before exit (idle): ${fmt(mb(lastSample.rssKb))} MB; ${samples.length} samples; peak is the kernel's VmHWM (includes start-up)`);
  const delivered = (runSummary?.['delivered'] ?? {}) as Record<string, number>;
  const outcomes = ['routed', 'muted', 'unrouted', 'quarantined'].map((name) => `${name} ${fmt(Number(runSummary?.[name] ?? 0))}`).join(', ');
  console.log(
    `delivered: HEC ${fmt(seen.size)}/${fmt(expectedHecTotal)} records (${fmt(hecEvents)} events), Teams ${fmt(teams.messages.length)}/${fmt(expectedTeams)}, ` +
      `email ${fmt(smtp.messages.length)}/${fmt(expectedEmail)}; consumer's run summary: ${runSummary ? `${outcomes}, delivered ${JSON.stringify(delivered)}` : '(none)'}; ${fmt(batches)} batches`,
  );
  console.log(
    `consumer ${exitedByItself ? `exited by itself (${exit?.signal ? `signal ${exit.signal}` : `code ${exit?.code}`})` : `did not exit within ${EXIT_GRACE_MS / 1000} s of the last record (stopped)`}; ` +
      `warm-up took ${warmupSeconds.toFixed(1)} s (start-up included); generating the records ${(generateMs / 1000).toFixed(1)} s; the whole benchmark ${((performance.now() - benchStarted) / 1000).toFixed(0)} s`,
  );
  if (warnings.length > 0) console.log(`consumer warnings: ${warnings.length}, the first: ${warnings[0]}`);
  const problems: string[] = [];
  if (teams.messages.length !== expectedTeams) problems.push(`Teams got ${teams.messages.length}, expected ${expectedTeams}`);
  if (smtp.messages.length !== expectedEmail) problems.push(`email got ${smtp.messages.length}, expected ${expectedEmail}`);
  if (exitedByItself && exit?.code !== 0) problems.push(`the consumer exited with ${exit?.signal ? `signal ${exit.signal}` : `code ${exit?.code}`}`);
  if (problems.length > 0) console.log(`note: ${problems.join('; ')}`);
  if (exitedByItself && exit?.code !== 0) console.log(`the consumer's stderr ends:\n${stderrTail.split('\n').slice(-8).join('\n')}`);
  console.log(
    JSON.stringify({
      warmupRecords: WARMUP,
      records: MEASURED,
      seconds: measuredSeconds,
      recordsPerSecond: MEASURED / measuredSeconds,
      rssBaselineMb: mb(baseline.rssKb),
      rssAfterMb: mb(after.rssKb),
      peakRssMb: mb(peakKb),
      ratio,
      milestones: milestones.map((m) => ({ records: m.records, rssMb: mb(m.rssKb) })),
      medianRssMbByFifth: fifthsKb.map(mb),
      steadyRatio,
      ...(TRACE_GC ? { fullGcs } : {}),
      delivered: { hec: seen.size, teams: teams.messages.length, email: smtp.messages.length },
      consumerExit: exit?.signal ?? exit?.code ?? null,
    }),
  );
}

let failed = false;
try {
  await main();
} catch (error: unknown) {
  failed = true;
  process.stderr.write(`consumerMemory: failed: ${error instanceof BenchFailure || !(error instanceof Error) ? String(error instanceof Error ? error.message : error) : (error.stack ?? error.message)}\n`);
} finally {
  await cleanUp();
}
process.exit(failed ? 1 : 0);
