// `npm run bench` (part 2): the cost of rendering a Teams card and an email per record, against the plain
// JSON.stringify of the same record (measured in the same run), and 10,000 records to a HEC receiver on
// loopback: how many requests, how large, how fast. Not a test: it prints figures.
import { createServer } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { cpuUsage, resourceUsage } from 'node:process';
import { readFileSync } from 'node:fs';
import { inspectEnvelope } from '../dist/src/pipeline/run.js';
import { parseRules } from '../dist/src/routing/load.js';
import { createHttpClient, closeHttpClient } from '../dist/src/sinks/http.js';
import { createSinks, closeSinks } from '../dist/src/sinks/registry.js';
import { deliverWithRetry } from '../dist/src/delivery/retry.js';
import { Limiter } from '../dist/src/delivery/limiter.js';
import { encodeEmail } from '../dist/src/sinks/email/encode.js';
import { readEmailConfig } from '../dist/src/sinks/email/config.js';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 10_000);
const template = JSON.parse(readFileSync(new URL('../samples/02-alert-k8s-node-crypto-miner.json', import.meta.url), 'utf8'));
const findings = Array.from({ length: RECORDS }, (_, i) => {
  const record = { ...template, SystemAlertId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` };
  const [inspected] = inspectEnvelope({ input: `bench#${i}`, body: record });
  if (!inspected?.ok) throw new Error('bench record rejected');
  return inspected.finding;
});
const items = findings.map((finding, i) => ({ input: `bench#${i}`, finding }));

// A HEC receiver on loopback: counts requests and events, answers success.
let requests = 0;
let events = 0;
let largestRequest = 0;
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    let body = Buffer.concat(chunks);
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    requests += 1;
    largestRequest = Math.max(largestRequest, body.length);
    events += body.toString('utf8').split('\n').filter((line) => line.trim() !== '').length;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"text":"Success","code":0}');
  });
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = server.address().port;

const rules = parseRules(
  `destinations:
  splunk: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}"}
  splunk-plain: {type: splunk-hec, url: "\${HEC_URL}", token: "\${HEC_TOKEN}", gzip: false}
  teams: {type: teams, url: "\${TEAMS_URL}"}
  email: {type: email, smtpUrl: "\${SMTP_URL}", from: alerts@contoso.example, to: [oncall@contoso.example]}
routes:
  - {name: all, match: {}, to: [splunk, splunk-plain, teams, email]}
`,
  'bench.yaml',
);
const http = createHttpClient();
const sinks = createSinks(rules, {
  env: { HEC_URL: `http://127.0.0.1:${port}`, HEC_TOKEN: 'bench', TEAMS_URL: 'https://teams.example/hook?sig=x', SMTP_URL: 'smtp://127.0.0.1:9' },
  http,
});

function cpuMsOf(fn) {
  const before = cpuUsage();
  fn();
  const used = cpuUsage(before);
  return (used.user + used.system) / 1000;
}
const SAMPLE = Math.min(2000, RECORDS);
const baseMs = cpuMsOf(() => {
  for (let i = 0; i < SAMPLE; i++) JSON.stringify(findings[i].raw);
});
const teamsSink = sinks.get('teams');
const emailSink = sinks.get('email');
teamsSink.render(items.slice(0, 50));
emailSink.render(items.slice(0, 50));
const teamsMs = cpuMsOf(() => {
  for (let i = 0; i < SAMPLE; i++) teamsSink.render([items[i]]);
});
const emailMs = cpuMsOf(() => {
  for (let i = 0; i < SAMPLE; i++) emailSink.render([items[i]]);
});
const emailConfig = readEmailConfig(rules.destinations.get('email'), { env: { SMTP_URL: 'smtp://127.0.0.1:9' }, http });
const emailContentMs = cpuMsOf(() => {
  for (let i = 0; i < SAMPLE; i++) encodeEmail(findings[i], emailConfig);
});
const us = (ms) => ((ms * 1000) / SAMPLE).toFixed(1);
console.log(`render, per record (${SAMPLE} alert records, ${(JSON.stringify(template).length / 1024).toFixed(1)} KB each):`);
console.log(`  baseline JSON.stringify:   ${us(baseMs)} µs`);
console.log(`  Teams card (+ validation): ${us(teamsMs)} µs  (${(teamsMs / baseMs).toFixed(1)}x the baseline)`);
console.log(`  email content (text+HTML): ${us(emailContentMs)} µs  (${(emailContentMs / baseMs).toFixed(1)}x the baseline)`);
console.log(`  email, full MIME message: ${us(emailMs)} µs  (${(emailMs / baseMs).toFixed(1)}x the baseline)`);

async function toHec(name) {
  requests = 0;
  events = 0;
  largestRequest = 0;
  const started = Date.now();
  const outcomes = await deliverWithRetry(sinks.get(name), items, undefined, { limiter: new Limiter(4) });
  const elapsed = Date.now() - started;
  const delivered = outcomes.filter((outcome) => outcome.delivered).length;
  console.log(
    `HEC ${name === 'splunk' ? 'gzip on ' : 'gzip off'}: ${delivered}/${RECORDS} delivered in ${elapsed} ms (${Math.round(RECORDS / (elapsed / 1000))} records/s), ${requests} requests, ${events} events, largest request ${(largestRequest / 1e6).toFixed(2)} MB uncompressed`,
  );
  return { elapsedMs: elapsed, requests, largestRequestBytes: largestRequest, delivered };
}
await toHec('splunk'); // warm-up
const gzipOn = await toHec('splunk');
const gzipOff = await toHec('splunk-plain');
await closeSinks(sinks);
closeHttpClient(http);
server.close();
const peakRssMb = (resourceUsage().maxRSS * 1024) / 1e6;
console.log(`peak RSS: ${peakRssMb.toFixed(0)} MB`);
console.log(
  JSON.stringify({
    renderUsPerRecord: {
      baseline: (baseMs * 1000) / SAMPLE,
      teams: (teamsMs * 1000) / SAMPLE,
      emailContent: (emailContentMs * 1000) / SAMPLE,
      emailMime: (emailMs * 1000) / SAMPLE,
    },
    hec: { gzipOn, gzipOff },
    peakRssMb,
  }),
);
