// `npm run bench`: CPU cost of deciding (decode + classify + validate + normalise + route + dedupe) for
// 10,000 alert-sized records, against the floor any forwarder pays (JSON.parse of each body and
// JSON.stringify of each record), measured in the same run on the same data. Not a test: it prints figures.
import { readFileSync } from 'node:fs';
import { cpuUsage, resourceUsage } from 'node:process';
import { createPipeline } from '../dist/src/pipeline/run.js';
import { MemoryLedger } from '../dist/src/routing/dedupe.js';
import { parseRules } from '../dist/src/routing/load.js';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

// Alert-sized bodies: the bundled Kubernetes alert with a unique id, severity and cluster per record
// (fixed pattern, no randomness: runs are comparable).
const template = JSON.parse(readFileSync(new URL('../samples/02-alert-k8s-node-crypto-miner.json', import.meta.url), 'utf8'));
const severities = ['Informational', 'Low', 'Medium', 'High'];
const bodies = Array.from({ length: RECORDS }, (_, i) => {
  const record = structuredClone(template);
  record.SystemAlertId = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  record.Severity = severities[i % severities.length];
  record.AzureResourceId = record.AzureResourceId.replace('aks-prod-weu', `aks-prod-${i % 7}`);
  return JSON.stringify(record);
});
const bytes = bodies.reduce((sum, body) => sum + Buffer.byteLength(body), 0);
const rules = parseRules(readFileSync(new URL('../config/routes.example.yaml', import.meta.url), 'utf8'), 'routes.example.yaml');

function cpuMs(fn) {
  const before = cpuUsage();
  return Promise.resolve(fn()).then(() => {
    const used = cpuUsage(before);
    return (used.user + used.system) / 1000;
  });
}

async function floor() {
  let sink = 0;
  for (const body of bodies) sink += JSON.stringify(JSON.parse(body)).length;
  if (sink === 0) throw new Error('unreachable');
}

async function decide() {
  const pipeline = createPipeline({ rules, ledger: new MemoryLedger() });
  let routed = 0;
  for (let i = 0; i < bodies.length; i++) {
    const [result] = await pipeline.processEnvelope({ input: `bench#${i}`, body: bodies[i] });
    if (result?.report.outcome === 'routed') routed += 1;
  }
  if (routed !== bodies.length) throw new Error(`only ${routed} of ${bodies.length} records were routed`);
}

await decide(); // warm-up: compiles the validators and lets V8 optimise
await floor();
const floors = [];
const decides = [];
for (let round = 0; round < ROUNDS; round++) {
  floors.push(await cpuMs(floor));
  decides.push(await cpuMs(decide));
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const floorMs = median(floors);
const decideMs = median(decides);
const rate = (ms) => Math.round(RECORDS / (ms / 1000));
const mbps = (ms) => (bytes / 1e6 / (ms / 1000)).toFixed(1);
console.log(`records: ${RECORDS} alert bodies, ${(bytes / RECORDS / 1024).toFixed(1)} KB each; median of ${ROUNDS} rounds (CPU time)`);
console.log(`floor  (JSON.parse + JSON.stringify): ${floorMs.toFixed(0)} ms CPU, ${rate(floorMs)} records/s, ${mbps(floorMs)} MB/s`);
console.log(`decide (decode..route + dedupe):      ${decideMs.toFixed(0)} ms CPU, ${rate(decideMs)} records/s, ${mbps(decideMs)} MB/s`);
console.log(`decide/floor throughput ratio: ${(floorMs / decideMs).toFixed(2)}`);
const peakRssMb = (resourceUsage().maxRSS * 1024) / 1e6;
console.log(`peak RSS: ${peakRssMb.toFixed(0)} MB`);
console.log(JSON.stringify({ records: RECORDS, bytes, floorCpuMs: floorMs, decideCpuMs: decideMs, ratio: floorMs / decideMs, peakRssMb }));
