import { Option, type Command } from 'commander';
import { usage } from '../usage.js';
import { MountStore } from '../../coordination/mount-store.js';
import {
  CODECS,
  DEFAULT_SAMPLERATE,
  SOURCE_USERNAME,
  publicMount,
  type Codec,
  type Mount,
  type TranscodingParams,
} from '../../coordination/mount.js';
import { generatePassword } from '../../coordination/icecast-secrets.js';
import { intFlag, numberFlag } from '../../common/flags.js';
import { AutoradioError, ErrorCode } from '../../common/errors.js';
import { printJson, withContext, type CommandContext, type Output } from '../context.js';
import { describeCredentials, describeMount, mountListLine, onAirLine } from '../format.js';
import { readClusterState } from '../../coordination/cluster-view.js';
import { pickOnAir, summarizeCluster } from '../../coordination/cluster-summary.js';

interface TranscodingFlags {
  source?: string;
  codec?: Codec;
  bitrate?: number;
  samplerate?: number;
  channels?: 1 | 2;
  quality?: number;
}

function addTranscodingOptions(cmd: Command, required: boolean): Command {
  const codec = new Option('--codec <codec>', 'codec of the transcoded stream').choices([...CODECS]);
  const bitrate = new Option('--bitrate <kbps>', 'bitrate in kbit/s').argParser(usage(intFlag('--bitrate', 1, 10000)));
  const source = new Option('--source <mount>', 'mount to transcode');
  if (required) {
    codec.makeOptionMandatory();
    bitrate.makeOptionMandatory();
    source.makeOptionMandatory();
  }
  return cmd
    .addOption(source)
    .addOption(codec)
    .addOption(bitrate)
    .addOption(new Option('--samplerate <hz>', 'sample rate in Hz').argParser(usage(intFlag('--samplerate', 1, 1_000_000))))
    .addOption(new Option('--channels <n>', 'channels, 1 or 2').argParser(usage(intFlag('--channels', 1, 2))))
    .addOption(new Option('--quality <q>', 'codec quality (mp3 0-9, vorbis -0.1-1, opus 0-10)').argParser(usage(numberFlag('--quality', -10, 100))));
}

function newMount(path: string, extra: Partial<Mount>): Mount {
  return { path, username: SOURCE_USERNAME, password: generatePassword(), ...extra };
}

/** Stores a new mount and prints its credentials: the one time radioctl shows them unasked. */
async function createAndPrint(ctx: CommandContext, mount: Mount): Promise<void> {
  const created = await new MountStore(ctx.client).create(mount);
  if (ctx.json) printJson(ctx, created);
  else ctx.out(describeCredentials(created));
}

export function registerMountCommands(program: Command, out: Output): void {
  registerCreateCommands(program, out);
  registerChangeCommands(program, out);
  registerReadCommands(program, out);
}

function registerCreateCommands(program: Command, out: Output): void {
  program
    .command('create-mount')
    .description('create a mount that a source client feeds (or that relays an outside stream)')
    .argument('<path>', 'mount path, e.g. /radio.mp3')
    .option('--relay <url>', 'pull this mount from an outside Icecast/Shoutcast URL instead of a source')
    .option('--fallback <mount>', 'where listeners go when the source drops')
    .action(async (path: string, opts: { relay?: string; fallback?: string }, cmd: Command) => {
      await withContext(cmd, out, async (ctx) => {
        await createAndPrint(
          ctx,
          newMount(path, {
            ...(opts.relay !== undefined ? { relayUrl: opts.relay } : {}),
            ...(opts.fallback !== undefined ? { fallback: opts.fallback } : {}),
          }),
        );
      });
    });

  addTranscodingOptions(
    program
      .command('create-transcoding-mount')
      .description('create a mount the cluster fills by re-encoding another mount')
      .argument('<path>', 'mount path of the transcoded stream, e.g. /radio-low.mp3')
      .option('--fallback <mount>', 'where listeners go when the transcoder stops'),
    true,
  ).action(async (path: string, opts: TranscodingFlags & { fallback?: string }, cmd: Command) => {
    await withContext(cmd, out, async (ctx) => {
      const codec = opts.codec!;
      const transcoding: TranscodingParams = {
        source: opts.source!,
        codec,
        bitrate: opts.bitrate!,
        samplerate: opts.samplerate ?? DEFAULT_SAMPLERATE[codec],
        channels: opts.channels ?? 2,
        ...(opts.quality !== undefined ? { quality: opts.quality } : {}),
      };
      await createAndPrint(
        ctx,
        newMount(path, { transcoding, ...(opts.fallback !== undefined ? { fallback: opts.fallback } : {}) }),
      );
    });
  });

}

function registerChangeCommands(program: Command, out: Output): void {
  addTranscodingOptions(
    program
      .command('edit-mount')
      .description('change a mount')
      .argument('<path>', 'mount path')
      .option('--relay <url>', 'relay this outside URL')
      .option('--no-relay', 'stop relaying; a source client feeds the mount again')
      .option('--fallback <mount>', 'set the fallback mount')
      .option('--no-fallback', 'remove the fallback mount')
      .option('--reset-password', 'generate a new source password'),
    false,
  ).action(
    async (
      path: string,
      opts: TranscodingFlags & { relay?: string | false; fallback?: string | false; resetPassword?: boolean },
      cmd: Command,
    ) => {
      await withContext(cmd, out, async (ctx) => {
        const mount = await new MountStore(ctx.client).edit(path, (m) => applyEdits(m, opts));
        if (ctx.json) printJson(ctx, mount);
        else ctx.out(opts.resetPassword ? describeCredentials(mount) : describeMount(publicMount(mount)));
      });
    },
  );

  program
    .command('delete-mount')
    .description('delete a mount')
    .argument('<path>', 'mount path')
    .action(async (path: string, _opts: unknown, cmd: Command) => {
      await withContext(cmd, out, async (ctx) => {
        await new MountStore(ctx.client).delete(path);
        if (ctx.json) printJson(ctx, { deleted: path });
        else ctx.out(`deleted ${path}`);
      });
    });

}

function registerReadCommands(program: Command, out: Output): void {
  program
    .command('list-mounts')
    .description('list mounts')
    .action(async (_opts: unknown, cmd: Command) => {
      await withContext(cmd, out, async (ctx) => {
        const listing = await new MountStore(ctx.client).list();
        const mounts = [...listing.mounts.values()]
          .map((v) => publicMount(v.mount))
          .sort((a, b) => a.path.localeCompare(b.path));
        if (ctx.json) printJson(ctx, { mounts, invalid: listing.invalid.map(({ key, problem }) => ({ key, problem })) });
        else {
          ctx.out(mounts.length === 0 ? 'no mounts' : mounts.map(mountListLine).join('\n'));
          for (const bad of listing.invalid) ctx.out(`invalid value at ${bad.key}: ${bad.problem}`);
        }
      });
    });

  program
    .command('show-mount')
    .description('show one mount, with its source credentials')
    .argument('<path>', 'mount path')
    .action(async (path: string, _opts: unknown, cmd: Command) => {
      await withContext(cmd, out, async (ctx) => {
        const mount = await new MountStore(ctx.client).get(path);
        const live = summarizeCluster(await readClusterState(ctx.client)).mounts.find((m) => m.path === mount.path);
        const onAir = pickOnAir(live);
        if (ctx.json) printJson(ctx, { ...mount, ...onAir, listeners: live?.listeners ?? 0 });
        else {
          ctx.out(
            `${describeMount(publicMount(mount))}\n  source password: ${mount.password}\n` +
              `  ${onAirLine(onAir)}\n  listeners: ${live?.listeners ?? 0}`,
          );
        }
      });
    });
}

/** Pure: the edited mount (validation happens in the store, against the fresh cluster state). */
export function applyEdits(
  m: Mount,
  opts: TranscodingFlags & { relay?: string | false; fallback?: string | false; resetPassword?: boolean },
): Mount {
  const next: Mount = { ...m };
  if (opts.relay === false) delete next.relayUrl;
  else if (typeof opts.relay === 'string') next.relayUrl = opts.relay;
  if (opts.fallback === false) delete next.fallback;
  else if (typeof opts.fallback === 'string') next.fallback = opts.fallback;
  if (opts.resetPassword) next.password = generatePassword();
  const transcodingChange =
    opts.source !== undefined ||
    opts.codec !== undefined ||
    opts.bitrate !== undefined ||
    opts.samplerate !== undefined ||
    opts.channels !== undefined ||
    opts.quality !== undefined;
  if (transcodingChange) {
    if (!m.transcoding) throw new AutoradioError(ErrorCode.invalidMount, `mount ${m.path} is not a transcoding mount; transcoding options do not apply`);
    const codec = opts.codec ?? m.transcoding.codec;
    next.transcoding = {
      ...m.transcoding,
      ...(opts.source !== undefined ? { source: opts.source } : {}),
      codec,
      ...(opts.bitrate !== undefined ? { bitrate: opts.bitrate } : {}),
      // A codec change resets the sample rate to that codec's default unless one is given.
      samplerate: opts.samplerate ?? (opts.codec !== undefined ? DEFAULT_SAMPLERATE[codec] : m.transcoding.samplerate),
      ...(opts.channels !== undefined ? { channels: opts.channels } : {}),
      ...(opts.quality !== undefined ? { quality: opts.quality } : {}),
    };
  }
  return next;
}
