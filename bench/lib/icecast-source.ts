import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { launchIcecast, makeIcecastDir, minimalIcecastConfig, type TestIcecast } from '../../test/support/icecast.js';
import { freePort } from '../../test/support/ports.js';
import { waitFor } from '../../test/support/wait.js';
import { onCleanup, startChild, stopChild } from './common.js';

/** A real Icecast with its `clients` limit raised, and an ffmpeg 128 kbit/s MP3 source on `mount`. */
export async function icecastWithSource(mount: string, clients = 20_000): Promise<{ icecast: TestIcecast; pid: number }> {
  const dir = await makeIcecastDir();
  const host = '127.0.0.1';
  const port = await freePort();
  const sourcePassword = 'benchsource1';
  const adminPassword = 'benchadmin1';
  const configPath = join(dir, 'icecast.xml');
  const xml = minimalIcecastConfig({ host, port, dir, sourcePassword, adminPassword }).replace(
    /<clients>\d+<\/clients>/,
    `<clients>${clients}</clients>`,
  );
  await writeFile(configPath, xml, { mode: 0o644 });
  const icecast = await launchIcecast({ host, port, dir, configPath, sourcePassword, adminPassword });
  onCleanup(() => icecast.stop());
  const src = startChild('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-re',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-c:a', 'libmp3lame', '-b:a', '128k', '-content_type', 'audio/mpeg', '-f', 'mp3',
    `icecast://source:${sourcePassword}@${host}:${port}${mount}`,
  ]);
  onCleanup(() => stopChild(src.child, 'SIGTERM', 2000));
  await waitFor(
    `${mount} on Icecast`,
    async () => {
      if (src.child.exitCode !== null) throw new Error(`ffmpeg exited: ${src.output.join('\n')}`);
      const res = await fetch(`${icecast.url}/status-json.xsl`, { signal: AbortSignal.timeout(1000) });
      return (await res.text()).includes(`${mount}"`);
    },
    { timeoutMs: 15_000, intervalMs: 200 },
  );
  return { icecast, pid: icecast.process.child.pid! };
}
