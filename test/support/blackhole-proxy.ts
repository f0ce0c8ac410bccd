import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP forwarder that can go silent: connections stay open but no byte passes either way,
 * like a network path that drops packets without resets (what a real partition looks like).
 */
export interface BlackholeProxy {
  url: string;
  /** Silently drop every byte, connections stay open. */
  blackhole(): void;
  /**
   * Go silent (as blackhole()) once this many more bytes went from the server to the client:
   * lets small answers through and swallows the first big one.
   */
  blackholeAfter(bytes: number): void;
  /** Reset every connection and every new one until restore(). */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startBlackholeProxy(target: { host: string; port: number }): Promise<BlackholeProxy> {
  let silent = false;
  let refusing = false;
  let downstreamBudget = Infinity;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    const forward = (from: Socket, to: Socket) =>
      from.on('data', (chunk) => {
        if (!silent) to.write(chunk);
      });
    forward(client, upstream);
    upstream.on('data', (chunk: Buffer) => {
      downstreamBudget -= chunk.length;
      if (downstreamBudget < 0) silent = true;
    });
    forward(upstream, client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    blackhole: () => {
      silent = true;
    },
    blackholeAfter: (bytes) => {
      downstreamBudget = bytes;
    },
    cut: () => {
      refusing = true;
      for (const s of sockets) s.resetAndDestroy();
    },
    restore: () => {
      silent = false;
      downstreamBudget = Infinity;
      refusing = false;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
