import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../test/support/ports.js';
import { waitFor } from '../../test/support/wait.js';
import { onCleanup, startChild, stopChild } from './common.js';

export interface Nginx {
  port: number;
  /** The worker's pid (the one that answers; the master only supervises). */
  workerPid: number;
  masterPid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Debian's nginx as the reference redirector: one worker, no access log, `return 302` with the
 * same headers redirectord sends (Location, Cache-Control, CORS). Every path lives in a temp dir.
 */
export async function startNginx(o: {
  location: string;
  extraHeaders: Record<string, string>;
  keepalive: boolean;
  /** Serve TLS with this certificate; started once its pid file exists (no plain-HTTP check). */
  tls?: { certFile: string; keyFile: string };
}): Promise<Nginx> {
  const dir = await mkdtemp(join(tmpdir(), 'autoradio-bench-nginx-'));
  const port = await freePort();
  const headers = Object.entries(o.extraHeaders)
    .map(([k, v]) => `      add_header ${k} "${v.replace(/"/g, '\\"')}" always;`)
    .join('\n');
  const conf = `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout ${o.keepalive ? '60s' : '0'};
  server_tokens off;
  server {
    listen 127.0.0.1:${port} backlog=511${o.tls ? ' ssl' : ''};
${o.tls ? `    ssl_certificate ${o.tls.certFile};\n    ssl_certificate_key ${o.tls.keyFile};\n    ssl_session_tickets off;` : ''}
    location / {
${headers}
      return 302 ${o.location};
    }
  }
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  const { child, output } = startChild('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')]);
  const stop = async () => {
    await stopChild(child, 'SIGQUIT', 3000);
    await rm(dir, { recursive: true, force: true });
  };
  onCleanup(stop);
  try {
    await waitFor(
      'nginx answering',
      async () => {
        if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}: ${output.join('\n')}`);
        if (o.tls) return existsSync(join(dir, 'nginx.pid'));
        const res = await fetch(`http://127.0.0.1:${port}/x`, { redirect: 'manual', signal: AbortSignal.timeout(500) });
        return res.status === 302;
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const workerPid = await waitFor('nginx worker', () => childPidOf(child.pid!), { timeoutMs: 5000 });
  return { port, workerPid, masterPid: child.pid!, child, stop };
}

async function childPidOf(pid: number): Promise<number | undefined> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  const first = text.trim().split(/\s+/)[0];
  return first ? Number(first) : undefined;
}
