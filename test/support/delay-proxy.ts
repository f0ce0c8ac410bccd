import { createServer, connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * A TCP forwarder that adds latency spikes: every `everyMs` it delays every chunk, both ways,
 * by `delayMs` for `spikeMs`, keeping the byte order. These machines have no `tc netem`; this
 * stands in for a congested or slow path to etcd. Run as a script inside a node's namespace:
 *   node --import tsx delay-proxy.ts LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS SPIKE_MS EVERY_MS
 */
export function delayProxyArgv(listen: string, target: string, o: { delayMs: number; spikeMs: number; everyMs: number }): string[] {
  return [process.execPath, '--import', import.meta.resolve('tsx'), fileURLToPath(import.meta.url), listen, target, String(o.delayMs), String(o.spikeMs), String(o.everyMs)];
}

function hostPort(s: string): { host: string; port: number } {
  const cut = s.lastIndexOf(':');
  return { host: s.slice(0, cut), port: Number(s.slice(cut + 1)) };
}

function serve(listen: string, target: string, delayMs: number, spikeMs: number, everyMs: number): void {
  const started = Date.now();
  const inSpike = () => (Date.now() - started) % everyMs < spikeMs;
  const to = hostPort(target);
  const pipe = (from: Socket, into: Socket) => {
    // Chunks leave in order: each waits at least until the one before it left.
    let lastOut = 0;
    from.on('data', (chunk: Buffer) => {
      const due = Math.max(Date.now() + (inSpike() ? delayMs : 0), lastOut);
      lastOut = due;
      const wait = due - Date.now();
      if (wait <= 0) into.write(chunk);
      else setTimeout(() => into.destroyed || into.write(chunk), wait);
    });
  };
  const server = createServer((client) => {
    const upstream = connect(to.port, to.host);
    pipe(client, upstream);
    pipe(upstream, client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  const at = hostPort(listen);
  server.listen(at.port, at.host);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [listen, target, delay, spike, every] = process.argv.slice(2);
  serve(listen!, target!, Number(delay), Number(spike), Number(every));
}
