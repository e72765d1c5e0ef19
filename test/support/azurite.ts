/**
 * A real Azurite blob server for tests: the `azurite-blob` program of the `azurite` devDependency, run as a
 * child process on 127.0.0.1 with an ephemeral port and in-memory persistence.
 *
 * Port discovery: Azurite is asked for port 0 and prints the address it actually bound
 * ("Azurite Blob service successfully listens on http://127.0.0.1:41477"); that line is the readiness signal.
 *
 * No process is left behind:
 * - `stop()` closes the child's stdin (the watchdog below exits at once) and sends SIGTERM, then SIGKILL if it
 *   has not exited 3 s later;
 * - the parent's `exit` event kills it (synchronously) if `stop()` was never called;
 * - and when the parent dies without running any handler (SIGKILL, crash), the child's stdin pipe closes:
 *   a one-line preload given with `--import` exits the child on end of stdin.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';

/** Azurite's (and the Storage Emulator's) well-known development account. Not a secret. */
export const DEV_ACCOUNT_NAME = 'devstoreaccount1';
/** The published key of {@link DEV_ACCOUNT_NAME}. Not a secret. */
export const DEV_ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** A running Azurite blob service. */
export interface AzuriteServer {
  /** `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=...;BlobEndpoint=...;` */
  readonly connectionString: string;
  /** `http://127.0.0.1:<port>/devstoreaccount1` */
  readonly blobEndpoint: string;
  readonly port: number;
  /** Milliseconds from spawn to the readiness line. */
  readonly startupMs: number;
  /** Stops the server and waits for the process to exit. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface StartAzuriteOptions {
  /** How long to wait for the readiness line before killing the process and rejecting (default 15 000). */
  readonly startTimeoutMs?: number;
}

const READY_LINE = /successfully listens on (https?:\/\/[^\s]+)/;
/** Exits the child when its stdin reaches its end, i.e. when the parent is gone. */
const PARENT_WATCHDOG =
  "data:text/javascript,process.stdin.on('end',()=>process.exit(0)).on('error',()=>process.exit(0)).resume()";
const STOP_GRACE_MS = 3_000;

/** Builds the connection string of the development account for a blob endpoint. */
export function devConnectionString(blobEndpoint: string): string {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT_NAME};AccountKey=${DEV_ACCOUNT_KEY};` +
    `BlobEndpoint=${blobEndpoint};`
  );
}

/** Starts Azurite's blob service; rejects (with its output) if it does not come up in time. */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<AzuriteServer> {
  const startTimeoutMs = options.startTimeoutMs ?? 15_000;
  const location = await mkdtemp(path.join(tmpdir(), 'azurite-'));
  const env = { ...process.env };
  delete env['AZURITE_ACCOUNTS']; // would replace the development account
  delete env['NODE_OPTIONS']; // a debugger flag meant for the tests (--inspect-brk) would stall Azurite
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      '--import',
      PARENT_WATCHDOG,
      azuriteBlobBin(),
      '--blobHost', '127.0.0.1',
      '--blobPort', '0',
      // Azurite refuses --location with --inMemoryPersistence; the working directory (a fresh temporary
      // folder, removed on stop) keeps anything it might still write out of the repository.
      '--inMemoryPersistence',
      '--skipApiVersionCheck',
      '--loose',
      '--silent',
      '--disableTelemetry',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'], env, cwd: location },
  );
  const killOnExit = (): void => {
    child.kill('SIGKILL');
    rmSync(location, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);

  let output = '';
  const collect = (chunk: Buffer): void => {
    // Keep the tail only: enough to explain a failure.
    output = (output + chunk.toString('utf8')).slice(-4_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  const cleanUp = async (): Promise<void> => {
    process.removeListener('exit', killOnExit);
    await rm(location, { recursive: true, force: true });
  };

  let endpoint: URL;
  try {
    endpoint = await waitForReady(child, () => output, startTimeoutMs);
  } catch (error: unknown) {
    await terminate(child);
    await cleanUp();
    throw error;
  }
  const startupMs = Math.round(performance.now() - started);
  // Neither the process nor its pipes may keep the test runner alive; the exit handler and the watchdog
  // still end the process.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    if (stream instanceof Socket) stream.unref();
  }

  const blobEndpoint = `http://${endpoint.hostname}:${endpoint.port}/${DEV_ACCOUNT_NAME}`;
  let stopping: Promise<void> | undefined;
  return {
    connectionString: devConnectionString(blobEndpoint),
    blobEndpoint,
    port: Number(endpoint.port),
    startupMs,
    stop: () => {
      stopping ??= terminate(child).then(cleanUp);
      return stopping;
    },
  };
}

function azuriteBlobBin(): string {
  const require = createRequire(import.meta.url);
  const manifestPath = require.resolve('azurite/package.json');
  const manifest = require(manifestPath) as { bin?: Record<string, string> };
  const bin = manifest.bin?.['azurite-blob'];
  if (bin === undefined) throw new Error(`azurite at ${path.dirname(manifestPath)} has no azurite-blob program`);
  return path.resolve(path.dirname(manifestPath), bin);
}

function waitForReady(child: ChildProcess, output: () => string, timeoutMs: number): Promise<URL> {
  return new Promise<URL>((resolve, reject) => {
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`Azurite did not start within ${timeoutMs} ms. Its output:\n${output() || '(none)'}`));
    }, timeoutMs);
    const onData = (): void => {
      const match = READY_LINE.exec(output());
      if (match?.[1] === undefined) return;
      finish();
      resolve(new URL(match[1]));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      finish();
      reject(new Error(`Azurite exited before it was ready (code ${code}, signal ${signal}). Its output:\n${output() || '(none)'}`));
    };
    const onError = (error: Error): void => {
      finish();
      reject(new Error(`Azurite could not be started: ${error.message}`, { cause: error }));
    };
    function finish(): void {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    }
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/** End of stdin and SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. */
function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  // The handle was unref'd after start-up; without this the parent could exit before the child's exit
  // event arrives, and the caller's await would never finish.
  child.ref();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    // End of stdin is the watchdog's cue to exit at once (the data is in memory: there is nothing to save);
    // SIGTERM lets Azurite close its server should the watchdog be gone.
    child.stdin?.end();
    child.kill('SIGTERM');
  });
}

/** A container made for one test. */
export interface TestContainer {
  readonly containerName: string;
  readonly containerClient: ContainerClient;
  /** Deletes the container (ignores a container already gone). */
  dispose(): Promise<void>;
}

/** A random, valid container name: `<prefix>-<16 hex digits>`. */
export function randomContainerName(prefix = 'test'): string {
  return `${prefix}-${randomBytes(8).toString('hex')}`;
}

/** Creates a fresh container with a random name in the account of `connectionString`. */
export async function createTestContainer(connectionString: string, prefix = 'test'): Promise<TestContainer> {
  const service = BlobServiceClient.fromConnectionString(connectionString, { retryOptions: { maxTries: 2, retryDelayInMs: 100 } });
  const containerName = randomContainerName(prefix);
  const containerClient = service.getContainerClient(containerName);
  await containerClient.create();
  return {
    containerName,
    containerClient,
    dispose: async () => {
      await containerClient.deleteIfExists();
    },
  };
}
