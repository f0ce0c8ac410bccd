import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { ICECAST_SECRETS_KEY } from '../../src/coordination/keys.js';
import { startEtcd, type TestEtcd } from './etcd.js';
import { launchIcecast, makeIcecastDir, type TestIcecast } from './icecast.js';
import { freePort } from './ports.js';
import { collectLines, startProcess, type Managed } from './processes.js';
import { waitFor } from './wait.js';

const ROOT = new URL('../..', import.meta.url).pathname;

export interface RadiodEvent {
  level: number;
  time: string;
  msg: string;
  pid?: number;
  silentSeconds?: number;
}

/**
 * One node: its own etcd, a radiod from dist/ with a pidfile and the stall killer on, and the
 * Icecasts the test starts on the config radiod writes (the test plays systemd: it starts a new
 * one when it wants). Every radiod log line is kept (Managed keeps only the last 200).
 */
export class LoneRadiod {
  readonly icecasts: TestIcecast[] = [];
  /** The cluster's Icecast admin password, which radiod put in etcd. */
  adminPassword = '';
  private readonly lines: string[] = [];

  private constructor(
    private readonly etcd: TestEtcd,
    readonly client: Etcd3,
    readonly radiod: Managed,
    private readonly dir: string,
    readonly port: number,
    readonly configPath: string,
  ) {
    collectLines(radiod.child.stdout, this.lines);
  }

  /** `radiod`: the build to run (another one, e.g. before a fix, to replay an attack). */
  static async start(opts: { killStalledAfterS: number; radiod?: string }): Promise<LoneRadiod> {
    const radiodPath = opts.radiod ?? join(ROOT, 'dist/radiod/main.js');
    assert.ok(existsSync(radiodPath), `${radiodPath} is missing: build with npx tsc -p tsconfig.json first`);
    const etcd = await startEtcd();
    const client = new Etcd3({ hosts: etcd.url });
    const dir = await makeIcecastDir();
    const port = await freePort();
    const configPath = join(dir, 'icecast.xml');
    const radiod = startProcess(
      'node',
      [
        radiodPath,
        '--etcd-urls', etcd.url,
        '--domain', 'radio.test',
        '--name', 'node1',
        '--ip', '127.0.0.1',
        '--metrics-listen', 'off',
        '--icecast-config', configPath,
        '--icecast-port', String(port),
        '--icecast-bind', '127.0.0.1',
        '--icecast-logdir', join(dir, 'log'),
        '--icecast-pidfile', join(dir, 'icecast.pid'),
        '--lease-ttl', '4',
        '--status-interval', '300',
        '--icecast-kill-stalled-after', String(opts.killStalledAfterS),
        '--relay-via', 'direct',
        '--log-level', 'info',
      ],
      { cwd: ROOT },
    );
    const node = new LoneRadiod(etcd, client, radiod, dir, port, configPath);
    await waitFor('radiod\'s first config', async () => (await node.config()).includes('<icecast>'), { timeoutMs: 15_000 });
    node.adminPassword = (JSON.parse((await client.get(ICECAST_SECRETS_KEY).string())!) as { adminPassword: string }).adminPassword;
    return node;
  }

  config(): Promise<string> {
    return readFile(this.configPath, 'utf8').catch(() => '');
  }

  async startIcecast(): Promise<TestIcecast> {
    const icecast = await launchIcecast({
      host: '127.0.0.1', port: this.port, dir: this.dir, configPath: this.configPath, sourcePassword: 'unused', adminPassword: this.adminPassword,
    });
    this.icecasts.push(icecast);
    return icecast;
  }

  events(): RadiodEvent[] {
    return this.lines.flatMap((line) => {
      try {
        return [JSON.parse(line) as RadiodEvent];
      } catch {
        return [];
      }
    });
  }

  /** How many times radiod logged `msg`. */
  count(msg: string): number {
    return this.events().filter((e) => e.msg === msg).length;
  }

  /** The kills radiod logged. */
  kills(): RadiodEvent[] {
    return this.events().filter((e) => e.level === 50 && /killed it/.test(e.msg));
  }

  /** The last radiod lines, for failure messages. */
  tail(n = 10): string {
    return this.lines.slice(-n).join('\n');
  }

  async stop(): Promise<void> {
    await this.radiod.stop('SIGTERM', 5000);
    for (const i of this.icecasts) {
      i.process.child.kill('SIGCONT');
      await i.stop();
    }
    this.client.close();
    await this.etcd.stop();
  }
}
