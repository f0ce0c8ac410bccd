import { Command, CommanderError, Option } from 'commander';
import { addEtcdOptions, type EtcdFlags } from '../common/flags.js';
import { ErrorCode } from '../common/errors.js';
import { registerMountCommands } from './commands/mounts.js';
import { registerStatusCommand } from './commands/status.js';
import { registerBackupCommands } from './commands/backup.js';
import { registerNodeCommands } from './commands/nodes.js';
import { registerListenersCommand } from './commands/listeners.js';
import { resolveEtcdFlags, type Output } from './context.js';
import { DEFAULT_CONFIG_FILE } from './config-file.js';
import { describeFailure, failureLine, type Failure } from './failure.js';
import { isEntryPoint } from '../common/entry-point.js';
import { packageVersion } from '../common/package-version.js';

export function buildProgram(out: Output): Command {
  const program = new Command('radioctl')
    .description('manage the mounts (streams) of an autoradio cluster')
    .version(packageVersion(), '--version', 'print the version and exit')
    .option('--json', 'machine-readable output (errors too: {"error":{"code","message"}} on stderr)')
    .addOption(
      new Option('--config <file>', 'read the etcd URLs and TLS files from this file (AUTORADIO_ETCD_* lines)').default(
        DEFAULT_CONFIG_FILE,
      ),
    )
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: (s) => out(s.replace(/\n$/, '')) });
  addEtcdOptions(program);
  registerMountCommands(program, out);
  registerStatusCommand(program, out);
  registerBackupCommands(program, out);
  registerNodeCommands(program, out);
  registerListenersCommand(program, out);
  // help2man turns this into the man page's closing section (debian/rules).
  program.addHelpText(
    'after',
    `
Node lifecycle:
  radioctl drain NODE        NODE takes no new listeners; connected ones stay. It hands
                             its master role and transcoders to other nodes, unless no
                             other node can take them. The drain outlives a restart of
                             NODE (for an upgrade) until undrained.
  radioctl undrain NODE      NODE takes new listeners again.
  radioctl forget-node NODE  remove a dead node at once from status, DNS, balancers and
                             metrics (refused while it is present or a candidate, unless
                             --force, which revokes its presence lease).
  radioctl status            also shows what is on air per mount (since when, codec,
                             bitrate, title), draining nodes and each node's version.

Listeners:
  radioctl listeners [MOUNT] who listens now, on every node: the listener's own address,
                             user agent, time connected and bytes (each node's front door
                             answers /admin/listclients with the cluster's Icecast admin
                             password from etcd). Finished sessions are in each node's
                             access log (/var/log/autoradio/access.log).`,
  );
  return program;
}

/** The etcd settings to name in an error message, even when the config file is the problem. */
function etcdSettingsForMessage(program: Command): EtcdFlags {
  try {
    return resolveEtcdFlags(program);
  } catch {
    return program.opts<EtcdFlags>();
  }
}

/** Runs radioctl; returns the exit status: 0 ok, 1 refused or failed, 2 usage error. */
export async function run(argv: string[], out: Output, err: Output): Promise<number> {
  const program = buildProgram(out);
  // Known before parsing, so that even a usage error is reported as JSON.
  const json = argv.includes('--json');
  const fail = (f: Failure): number => {
    err(failureLine(f, json));
    return f.status;
  };
  let helpAsError = false;
  // Commander writes help to the error stream when no command was given: a usage error.
  program.configureOutput({ writeErr: () => void (helpAsError = true) });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.help' && helpAsError) {
        return fail({ code: ErrorCode.usage, message: 'missing command (see radioctl --help)', status: 2 });
      }
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    }
    return fail(describeFailure(e, etcdSettingsForMessage(program)));
  }
}

/**
 * The program as bin/radioctl runs it, on the process's streams and exit status. `argv` is
 * shaped like process.argv (node, script, arguments), as every program's main takes it.
 */
export async function main(argv: readonly string[]): Promise<void> {
  // gRPC sets the TLS server name to the etcd URL's host, and Node warns (DEP0123) when that is
  // an IP address: noise that would break radioctl's one-line error contract.
  process.noDeprecation = true;
  process.exitCode = await run(
    argv.slice(2),
    (s) => process.stdout.write(`${s}\n`),
    (s) => process.stderr.write(`${s}\n`),
  );
}

if (isEntryPoint(import.meta.url)) await main(process.argv);
