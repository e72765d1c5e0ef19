/**
 * The TCP fault proxy of the fault-injection suite, against real servers on port 0: a node:http server, raw
 * TCP servers (one that speaks first, as SMTP does), and the shared Azurite. Each mode's effect is what a
 * client of the forwarder observes: error codes of http.request and fetch, the Azure SDK's RestError, hangs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { BlobServiceClient, RestError } from '@azure/storage-blob';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { randomContainerName } from '../support/azurite.js';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.js';

/** What a client sees when the proxy resets its connection (Node's http client, raw sockets, writes). */
const RESET_CODES = ['ECONNRESET', 'EPIPE'];
/** undici (fetch) wraps the socket error: `TypeError: fetch failed` with one of these as `cause.code`. */
const FETCH_RESET_CODES = ['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE'];

interface Response {
  readonly status: number;
  readonly body: Buffer;
}

/** An error with a code, as Node's network errors have. */
function codeOf(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/** One request with node:http; rejects with the socket's error (its `code` intact), or `CLIENT_TIMEOUT`. */
function request(url: string, options: { method?: string; body?: Buffer; agent?: http.Agent | false; timeoutMs?: number } = {}): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.timeoutMs !== undefined) {
      req.setTimeout(options.timeoutMs, () => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    }
    req.end(options.body);
  });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A deterministic body of `bytes` bytes (cheap to make, easy to check). */
function patternBody(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 31 + (i >>> 8)) & 0xff;
  return out;
}

/**
 * The target: `POST /echo` answers the request body; `GET /bytes?n=` n bytes of {@link patternBody};
 * `GET /slow?ms=` answers "slow" after ms; anything else "hello".
 */
async function startHttpTarget(): Promise<{ server: http.Server; port: number; requests: () => number }> {
  let requests = 0;
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    requests++;
    const url = new URL(req.url ?? '/', 'http://target');
    if (url.pathname === '/echo') {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.concat(chunks)));
      return;
    }
    req.resume();
    if (url.pathname === '/bytes') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(patternBody(Number(url.searchParams.get('n'))));
    } else if (url.pathname === '/slow') {
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!res.destroyed) res.end('slow');
      }, Number(url.searchParams.get('ms')));
      timers.add(timer);
    } else {
      res.end('hello');
    }
  });
  server.on('close', () => timers.forEach(clearTimeout));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, requests: () => requests };
}

async function startTcpTarget(onConnection: (socket: Socket) => void): Promise<{ server: TcpServer; port: number }> {
  const server = createTcpServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

async function closeServer(server: http.Server | TcpServer): Promise<void> {
  if ('closeAllConnections' in server) server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * Connects a raw socket and collects what it receives until it closes; `outcome` settles on close or error.
 * It may end its side first (a half-close); when the other side ends first, it ends too.
 */
function rawClient(port: number): { socket: Socket; received: () => Buffer; outcome: Promise<{ error?: string; closed: true }> } {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('end', () => socket.end());
  const outcome = new Promise<{ error?: string; closed: true }>((resolve) => {
    let error: string | undefined;
    socket.on('error', (cause) => {
      error = codeOf(cause) ?? cause.message;
    });
    socket.on('close', () => resolve(error !== undefined ? { error, closed: true } : { closed: true }));
  });
  return { socket, received: () => Buffer.concat(chunks), outcome };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('TCP fault proxy in front of an HTTP server', () => {
  let target: Awaited<ReturnType<typeof startHttpTarget>>;
  let proxy: TcpProxy;

  beforeEach(async () => {
    target = await startHttpTarget();
    proxy = await startTcpProxy({ target: { host: '127.0.0.1', port: target.port } });
  });

  afterEach(async () => {
    await proxy.close();
    await closeServer(target.server);
  });

  it('passes large bodies both ways, byte for byte, with http.request and fetch', async () => {
    expect(proxy.mode).toBe('pass');
    expect(proxy.host).toBe('127.0.0.1');
    expect(proxy.url()).toBe(`http://127.0.0.1:${proxy.port}`);
    const upload = randomBytes(6 * 1024 * 1024);
    const echoed = await request(`${proxy.url()}/echo`, { method: 'POST', body: upload });
    expect(echoed.status).toBe(200);
    expect(sha256(echoed.body)).toBe(sha256(upload));

    const size = 5 * 1024 * 1024 + 17;
    const download = await fetch(`${proxy.url()}/bytes?n=${size}`);
    const bytes = Buffer.from(await download.arrayBuffer());
    expect(bytes.length).toBe(size);
    expect(sha256(bytes)).toBe(sha256(patternBody(size)));

    expect(proxy.stats.bytesToTarget).toBeGreaterThan(upload.length);
    expect(proxy.stats.bytesToClient).toBeGreaterThan(upload.length + size);
    expect(proxy.stats.accepted).toBe(2);
    expect(proxy.stats.forwarded).toBe(2);
    expect(proxy.stats.reset).toBe(0);
  });

  it('reset: the request in flight and every new connection fail with ECONNRESET; pass restores service', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await expect(request(`${proxy.url()}/`, { agent })).resolves.toMatchObject({ status: 200 });
      const inFlight = request(`${proxy.url()}/slow?ms=2000`, { agent });
      await sleep(100);
      expect(proxy.connections()).toBe(1);
      const started = performance.now();
      proxy.setMode('reset');
      expect(proxy.connections()).toBe(0);
      const error = await inFlight.then(
        () => undefined,
        (cause: unknown) => cause,
      );
      expect(RESET_CODES).toContain(codeOf(error));
      expect(performance.now() - started).toBeLessThan(1_000);

      const fresh = await request(`${proxy.url()}/`).then(
        () => undefined,
        (cause: unknown) => cause,
      );
      expect(RESET_CODES).toContain(codeOf(fresh));
      const fetched = await fetch(`${proxy.url()}/`).then(
        () => undefined,
        (cause: unknown) => cause,
      );
      expect(fetched).toBeInstanceOf(TypeError);
      expect(FETCH_RESET_CODES).toContain(codeOf((fetched as TypeError).cause));
      expect(proxy.stats.reset).toBeGreaterThanOrEqual(3);

      proxy.setMode('pass');
      await expect(request(`${proxy.url()}/`)).resolves.toMatchObject({ status: 200, body: Buffer.from('hello') });
      await expect(request(`${proxy.url()}/`, { agent })).resolves.toMatchObject({ status: 200 });
    } finally {
      agent.destroy();
    }
  });

  it('hang: new and open connections get no answer (only client timeouts); pass lets held requests complete', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await expect(request(`${proxy.url()}/`, { agent })).resolves.toMatchObject({ status: 200 });
      const before = target.requests();
      proxy.setMode('hang');
      // On the kept-alive connection: the request is never forwarded.
      const onOpen = await request(`${proxy.url()}/`, { agent, timeoutMs: 300 }).then(
        () => undefined,
        (cause: unknown) => cause,
      );
      expect(codeOf(onOpen)).toBe('CLIENT_TIMEOUT');
      // On a new connection: accepted (connect succeeds), never answered.
      const raw = rawClient(proxy.port);
      await once(raw.socket, 'connect');
      raw.socket.write('GET / HTTP/1.1\r\nHost: target\r\nConnection: close\r\n\r\n');
      const held = request(`${proxy.url()}/`, { timeoutMs: 5_000 });
      await sleep(300);
      expect(raw.received().length).toBe(0);
      expect(target.requests()).toBe(before);
      expect(proxy.stats.hung).toBeGreaterThanOrEqual(2);

      // The partition heals: what was held goes through.
      proxy.setMode('pass');
      await expect(held).resolves.toMatchObject({ status: 200, body: Buffer.from('hello') });
      await raw.outcome;
      expect(raw.received().toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*hello$/);
      await expect(request(`${proxy.url()}/`)).resolves.toMatchObject({ status: 200 });
    } finally {
      agent.destroy();
    }
  });

  it('refuse: new connections are reset on arrival, open ones too; pass restores service', async () => {
    const raw = rawClient(proxy.port);
    await once(raw.socket, 'connect');
    await sleep(50);
    expect(proxy.connections()).toBe(1);
    proxy.setMode('refuse');
    expect(proxy.connections()).toBe(0);
    expect((await raw.outcome).error).toBe('ECONNRESET');

    const started = performance.now();
    const refused = await request(`${proxy.url()}/`).then(
      () => undefined,
      (cause: unknown) => cause,
    );
    expect(RESET_CODES).toContain(codeOf(refused));
    const fetched = await fetch(`${proxy.url()}/`).then(
      () => undefined,
      (cause: unknown) => cause,
    );
    expect(FETCH_RESET_CODES).toContain(codeOf((fetched as TypeError).cause));
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(proxy.stats.refused).toBeGreaterThanOrEqual(2);
    expect(target.requests()).toBe(0);

    proxy.setMode('pass');
    await expect(request(`${proxy.url()}/`)).resolves.toMatchObject({ status: 200 });
    expect(target.requests()).toBe(1);
  });

  it('close() resolves at once with hung connections, and their clients see the connection end', async () => {
    proxy.setMode('hang');
    const clients = [rawClient(proxy.port), rawClient(proxy.port), rawClient(proxy.port)];
    await Promise.all(clients.map((client) => once(client.socket, 'connect')));
    const pending = request(`${proxy.url()}/`).then(
      () => 'answered',
      (cause: unknown) => codeOf(cause),
    );
    await sleep(100);
    expect(proxy.connections()).toBe(4);
    const started = performance.now();
    await proxy.close();
    expect(performance.now() - started).toBeLessThan(500);
    expect(proxy.connections()).toBe(0);
    for (const client of clients) expect(await client.outcome).toMatchObject({ closed: true });
    expect(RESET_CODES).toContain(await pending);
    await proxy.close(); // idempotent
  });
});

describe('TCP fault proxy with raw TCP targets', () => {
  it('passes a half-close: the client ends its side, the target still answers', async () => {
    const { server, port } = await startTcpTarget((socket) => {
      const hash = createHash('sha256');
      let bytes = 0;
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      socket.on('end', () => socket.end(`${bytes} ${hash.digest('hex')}`));
    });
    const proxy = await startTcpProxy({ target: { host: '127.0.0.1', port } });
    try {
      const payload = randomBytes(2 * 1024 * 1024);
      const client = rawClient(proxy.port);
      client.socket.end(payload);
      await client.outcome;
      expect(client.received().toString()).toBe(`${payload.length} ${sha256(payload)}`);
    } finally {
      await proxy.close();
      await closeServer(server);
    }
  });

  it('forwards what a target says first (SMTP greets before the client writes)', async () => {
    const { server, port } = await startTcpTarget((socket) => {
      socket.write('220 smtp.example.test ESMTP ready\r\n');
      socket.on('data', (chunk: Buffer) => {
        if (chunk.toString().startsWith('QUIT')) socket.end('221 Bye\r\n');
      });
    });
    const proxy = await startTcpProxy({ target: { host: '127.0.0.1', port } });
    try {
      expect(proxy.url('smtp')).toBe(`smtp://127.0.0.1:${proxy.port}`);
      const client = rawClient(proxy.port);
      await once(client.socket, 'data');
      expect(client.received().toString()).toBe('220 smtp.example.test ESMTP ready\r\n');
      client.socket.write('QUIT\r\n');
      await client.outcome;
      expect(client.received().toString()).toBe('220 smtp.example.test ESMTP ready\r\n221 Bye\r\n');
    } finally {
      await proxy.close();
      await closeServer(server);
    }
  });

  it('resets the client when the target is down', async () => {
    const probe = await startTcpTarget(() => undefined);
    await closeServer(probe.server);
    const proxy = await startTcpProxy({ target: { host: '127.0.0.1', port: probe.port } });
    try {
      const error = await request(`${proxy.url()}/`).then(
        () => undefined,
        (cause: unknown) => cause,
      );
      expect(RESET_CODES).toContain(codeOf(error));
      expect(proxy.stats.upstreamErrors).toBe(1);
    } finally {
      await proxy.close();
    }
  });
});

describe('TCP fault proxy in front of Azurite', () => {
  const connectionString = inject('azuriteConnectionString');
  const blobEndpoint = new URL(inject('azuriteBlobEndpoint'));

  it('uploads through the proxy in pass, fails fast with a connection error in refuse, recovers in pass', async () => {
    const proxy = await startTcpProxy({ target: { host: blobEndpoint.hostname, port: Number(blobEndpoint.port) } });
    const direct = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(randomContainerName('proxy'));
    try {
      const proxied = connectionString.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=${proxy.url()}${blobEndpoint.pathname}`);
      expect(proxied).not.toBe(connectionString);
      // Small retries: the point is how fast a client learns that the store is gone.
      const service = BlobServiceClient.fromConnectionString(proxied, { retryOptions: { maxTries: 2, retryDelayInMs: 50, maxRetryDelayInMs: 100, tryTimeoutInMs: 3_000 } });
      const container = service.getContainerClient(direct.containerName);
      await container.create();
      const blob = container.getBlockBlobClient('through-the-proxy.json');
      const content = JSON.stringify({ hello: 'azurite', padding: 'x'.repeat(256 * 1024) });
      await blob.upload(content, Buffer.byteLength(content));
      expect((await direct.getBlockBlobClient('through-the-proxy.json').downloadToBuffer()).toString()).toBe(content);
      expect(proxy.stats.forwarded).toBeGreaterThan(0);

      proxy.setMode('refuse');
      const started = performance.now();
      const error = await blob.upload('second', 6).then(
        () => undefined,
        (cause: unknown) => cause,
      );
      const elapsedMs = performance.now() - started;
      expect(error).toBeInstanceOf(RestError);
      expect(RESET_CODES).toContain((error as RestError).code);
      expect(elapsedMs).toBeLessThan(2_000);
      expect(proxy.stats.refused).toBeGreaterThanOrEqual(1);

      proxy.setMode('pass');
      await blob.upload('third', 5);
      expect((await direct.getBlockBlobClient('through-the-proxy.json').downloadToBuffer()).toString()).toBe('third');
    } finally {
      await proxy.close();
      await direct.deleteIfExists();
    }
  });
});
