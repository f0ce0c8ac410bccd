import { Command, CommanderError } from 'commander';
import { addEtcdOptions } from '../common/flags.js';
import { AutoradioError, errorMessage } from '../common/errors.js';
import { etcdFailureReason, isEtcdUnavailable } from '../coordination/client.js';
import { registerMountCommands } from './commands/mounts.js';
import { registerStatusCommand } from './commands/status.js';
import { registerBackupCommands } from './commands/backup.js';
import type { Output } from './context.js';
import { isEntryPoint } from '../common/entry-point.js';

export function buildProgram(out: Output): Command {
  const program = new Command('radioctl')
    .description('manage the mounts (streams) of an autoradio cluster')
    .option('--json', 'machine-readable output')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: (s) => out(s.replace(/\n$/, '')) });
  addEtcdOptions(program);
  registerMountCommands(program, out);
  registerStatusCommand(program, out);
  registerBackupCommands(program, out);
  return program;
}

/** Runs radioctl; returns the exit status: 0 ok, 1 refused or failed, 2 usage error. */
export async function run(argv: string[], out: Output, err: Output): Promise<number> {
  const program = buildProgram(out);
  let helpAsError = false;
  // Commander writes help to the error stream when no command was given: a usage error.
  program.configureOutput({ writeErr: () => void (helpAsError = true) });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.help' && helpAsError) {
        err('radioctl: missing command (see radioctl --help)');
        return 2;
      }
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      err(`radioctl: ${e.message.replace(/^error: /, '')}`);
      return 2;
    }
    if (e instanceof AutoradioError) err(`radioctl: ${e.message}`);
    else if (isEtcdUnavailable(e)) {
      const o = program.opts<{ etcdUrls: string[]; etcdCert?: string }>();
      const urls = o.etcdUrls.join(',');
      // A TLS etcd that wants a client certificate just drops the handshake: say what may be missing.
      const hint = o.etcdUrls.some((u) => u.startsWith('https:')) && !o.etcdCert ? '; if etcd requires client certificates, pass --etcd-cert and --etcd-key' : '';
      err(`radioctl: etcd is unreachable at ${urls} (${etcdFailureReason(e)}); nothing was changed${hint}`);
    } else err(`radioctl: ${errorMessage(e)}`);
    return 1;
  }
}

if (isEntryPoint(import.meta.url)) {
  // gRPC sets the TLS server name to the etcd URL's host, and Node warns (DEP0123) when that is
  // an IP address: noise that would break radioctl's one-line error contract.
  process.noDeprecation = true;
  const code = await run(process.argv.slice(2), (s) => process.stdout.write(`${s}\n`), (s) => process.stderr.write(`${s}\n`));
  process.exitCode = code;
}
