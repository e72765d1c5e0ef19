/**
 * A TCP fault proxy for tests: put it between a client and a real server (Azurite, the HEC, Teams or SMTP
 * receivers) and switch what the network does, at any moment:
 *
 * - `pass`: bytes flow both ways, half-closes included (what one side ends, the proxy ends on the other).
 * - `reset`: every open connection is reset (RST) now; new ones are accepted and reset at once. Clients see
 *   ECONNRESET / "socket hang up" / "other side closed".
 * - `hang`: new connections are accepted and never forwarded nor answered; open ones stop forwarding in both
 *   directions (a partition, or a server stuck under load). Clients only ever see their own timeouts.
 * - `refuse`: new connections are reset as they arrive, before a byte is read; open ones are reset too. A
 *   listening socket cannot refuse a connection at the TCP level (that would mean closing the listener and
 *   losing the port), so clients see ECONNRESET rather than ECONNREFUSED; both are connection errors to every
 *   retry table of the project (`src/sinks/http.ts`, the e-mail sink, the Azure SDK).
 *
 * Going back to `pass` serves new connections again, and lets the connections a `hang` held go on (a healed
 * partition): those that were forwarding resume, those accepted during the hang are connected upstream then.
 * `reset` and `refuse` leave nothing to resume.
 *
 * Listens on 127.0.0.1, port 0. `close()` destroys every connection and never waits for a client.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export type ProxyMode = 'pass' | 'reset' | 'hang' | 'refuse';

export interface TcpProxyTarget {
  readonly host: string;
  readonly port: number;
}

export interface TcpProxyOptions {
  readonly target: TcpProxyTarget;
  /** The mode to start in (default `pass`). */
  readonly mode?: ProxyMode;
}

/** Counters since start; connections are client connections to the proxy. */
export interface TcpProxyStats {
  /** Connections accepted (in any mode). */
  readonly accepted: number;
  /** Connections connected (or being connected) to the target. */
  readonly forwarded: number;
  /** Connections reset by the proxy: in `reset` or `refuse` mode, or because the target failed. */
  readonly reset: number;
  /** Connections put on hold by `hang` (accepted during it, or open when it began). */
  readonly hung: number;
  /** Of `reset`, those refused on arrival in `refuse` mode. */
  readonly refused: number;
  /** Connections whose target connection failed (the target is down: the client is reset). */
  readonly upstreamErrors: number;
  /** Bytes forwarded client -> target and target -> client. */
  readonly bytesToTarget: number;
  readonly bytesToClient: number;
}

export interface TcpProxy {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `<scheme>://127.0.0.1:<port>` (scheme default `http`), e.g. `proxy.url('smtp')`. */
  url(scheme?: string): string;
  readonly mode: ProxyMode;
  /** Takes effect at once for open and new connections (see the module comment for each mode). */
  setMode(mode: ProxyMode): void;
  /** Client connections open now. */
  connections(): number;
  readonly stats: TcpProxyStats;
  /** Stops listening and destroys every connection; resolves once the listener is closed. Idempotent. */
  close(): Promise<void>;
}

/** One client connection and, once forwarded, its target connection. */
interface Link {
  readonly client: Socket;
  upstream?: Socket;
  /** The pipes are attached: bytes flow. */
  flowing: boolean;
  /** Held by `hang` (counted once in `stats.hung`). */
  held: boolean;
}

type MutableStats = { -readonly [K in keyof TcpProxyStats]: TcpProxyStats[K] };

/** Starts a proxy to `target`; resolves once it listens. */
export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const { target } = options;
  let mode: ProxyMode = options.mode ?? 'pass';
  let closing: Promise<void> | undefined;
  const links = new Set<Link>();
  const stats: MutableStats = { accepted: 0, forwarded: 0, reset: 0, hung: 0, refused: 0, upstreamErrors: 0, bytesToTarget: 0, bytesToClient: 0 };

  const reset = (link: Link): void => {
    links.delete(link);
    if (!link.client.destroyed) stats.reset++;
    resetSocket(link.client);
    if (link.upstream) resetSocket(link.upstream);
  };

  /** Attaches the pipes (again, after a hang); `pipe` resumes the paused sockets. */
  const flow = (link: Link): void => {
    const { client, upstream } = link;
    link.held = false;
    if (upstream === undefined || upstream.connecting || link.flowing || client.destroyed || upstream.destroyed) return;
    link.flowing = true;
    client.pipe(upstream);
    upstream.pipe(client);
  };

  /** Detaches the pipes and stops reading both sides: nothing moves until `flow`. */
  const hold = (link: Link): void => {
    const { client, upstream } = link;
    if (link.flowing && upstream !== undefined) {
      client.unpipe(upstream);
      upstream.unpipe(client);
    }
    link.flowing = false;
    client.pause();
    upstream?.pause();
    if (!link.held) stats.hung++;
    link.held = true;
  };

  const forward = (link: Link): void => {
    const { client } = link;
    stats.forwarded++;
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    link.upstream = upstream;
    // Paused until the pipes are attached: a byte read before that would be lost (SMTP servers speak first).
    upstream.pause();
    upstream.setNoDelay(true);
    upstream.on('data', (chunk: Buffer) => {
      stats.bytesToClient += chunk.length;
    });
    upstream.once('connect', () => {
      if (mode === 'pass') flow(link);
    });
    upstream.on('error', () => {
      // The target refused or dropped the connection: the client learns it the same way, with a reset.
      if (!client.destroyed) stats.upstreamErrors++;
      reset(link);
    });
    upstream.on('close', () => {
      // Whatever the target sent has been piped, and its end passed on: close the client once that is written.
      if (!client.destroyed) client.destroySoon();
    });
  };

  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    stats.accepted++;
    if (closing !== undefined || mode === 'refuse' || mode === 'reset') {
      if (mode === 'refuse') stats.refused++;
      stats.reset++;
      resetSocket(client);
      return;
    }
    const link: Link = { client, flowing: false, held: false };
    links.add(link);
    client.setNoDelay(true);
    client.on('data', (chunk: Buffer) => {
      stats.bytesToTarget += chunk.length;
    });
    client.on('error', () => {
      // The client reset or vanished: so does its target connection.
      if (link.upstream) resetSocket(link.upstream);
    });
    client.on('close', () => {
      links.delete(link);
      const { upstream } = link;
      // Ends what the client ended (once written); destroys what it abandoned.
      if (upstream !== undefined && !upstream.destroyed) {
        if (upstream.writableEnded) upstream.destroySoon();
        else upstream.destroy();
      }
    });
    if (mode === 'hang') hold(link);
    else forward(link);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  const setMode = (next: ProxyMode): void => {
    if (closing !== undefined) return;
    mode = next;
    for (const link of [...links]) {
      if (next === 'reset' || next === 'refuse') reset(link);
      else if (next === 'hang') hold(link);
      else if (link.upstream === undefined) forward(link); // accepted during a hang: connect it now
      else flow(link); // still connecting: its `connect` handler lets it flow
    }
  };

  return {
    host: '127.0.0.1',
    port,
    url: (scheme = 'http') => `${scheme}://127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    setMode,
    connections: () => links.size,
    stats,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const link of [...links]) {
          resetSocket(link.client);
          if (link.upstream) resetSocket(link.upstream);
        }
        links.clear();
      });
      return closing;
    },
  };
}

/** Closes with RST when the socket still has its handle; destroys it in every case. */
function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    if (!socket.connecting) socket.resetAndDestroy();
  } catch {
    // No TCP handle any more (already closing): a plain destroy below does.
  }
  if (!socket.destroyed) socket.destroy();
}
