import type { TestContext } from 'node:test';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'node:https';
import { freePort } from './ports.js';
import { startProcess } from './processes.js';
import type { TestCa } from './tls.js';
import { waitFor } from './wait.js';

/** A running pebble (the ACME test CA) on loopback, validating DNS-01 against one DNS server. */
export interface TestPebble {
  directory: string;
  /** PEM of the root pebble made at start: what clients of issued certificates trust. */
  root: string;
  rootFile: string;
}

/** GET over HTTPS trusting `ca` only. */
export function httpsGet(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: new Agent({ ca }), timeout: 3000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/**
 * Starts pebble with its API certificate from `ca` (what --acme-ca-file trusts), real validation
 * (PEBBLE_VA_ALWAYS_VALID=0) without its random sleeps, no rejected nonces, no reused
 * authorizations (every order validates), and certificates living `validitySeconds`.
 */
export async function startPebble(t: TestContext, ca: TestCa, o: { dnsPort: number; validitySeconds: number }): Promise<TestPebble> {
  const cert = await ca.issue('pebble', ['localhost', '127.0.0.1']);
  const [listen, management, httpPort, tlsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const config = join(ca.dir, 'pebble.json');
  await writeFile(config, JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${listen}`, managementListenAddress: `127.0.0.1:${management}`,
      certificate: cert.certFile, privateKey: cert.keyFile, httpPort, tlsPort, ocspResponderURL: '',
      externalAccountBindingRequired: false, certificateValidityPeriod: o.validitySeconds,
    },
  }));
  const pebble = startProcess('pebble', ['-config', config, '-dnsserver', `127.0.0.1:${o.dnsPort}`], {
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_VA_ALWAYS_VALID: '0', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
  });
  t.after(() => pebble.stop('SIGTERM', 2000));
  const caPem = await readFile(ca.caFile, 'utf8');
  const directory = `https://127.0.0.1:${listen}/dir`;
  await waitFor('pebble answering', async () => (await httpsGet(directory, caPem).catch(() => '')).includes('newOrder'), {
    timeoutMs: 15_000, intervalMs: 100,
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${pebble.output.join('\n')}`);
  });
  const root = await httpsGet(`https://127.0.0.1:${management}/roots/0`, caPem);
  if (!root.includes('BEGIN CERTIFICATE')) throw new Error(`pebble gave no root: ${root.slice(0, 200)}`);
  const rootFile = join(ca.dir, 'pebble-root.pem');
  await writeFile(rootFile, root);
  return { directory, root, rootFile };
}
