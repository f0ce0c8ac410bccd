import { readFileSync } from 'node:fs';
import { AutoradioError, ErrorCode, errorMessage } from '../common/errors.js';
import { splitList, type EtcdFlags } from '../common/flags.js';

export const DEFAULT_CONFIG_FILE = '/etc/default/autoradio';

/** The variables of the config file that radioctl reads, and the flag each one stands for. */
const ETCD_VARIABLES = {
  AUTORADIO_ETCD_URLS: 'etcdUrls',
  AUTORADIO_ETCD_CA: 'etcdCa',
  AUTORADIO_ETCD_CERT: 'etcdCert',
  AUTORADIO_ETCD_KEY: 'etcdKey',
} as const satisfies Record<string, keyof EtcdFlags>;

/**
 * Parses /etc/default/autoradio: systemd EnvironmentFile lines (`KEY=value`, optionally quoted,
 * `#` comments). Pure; lines it cannot read are skipped, as systemd does.
 */
export function parseEnvironmentFile(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    const quoted = /^"(.*)"$/.exec(value) ?? /^'(.*)'$/.exec(value);
    if (quoted) value = quoted[1]!;
    values.set(m[1]!, value);
  }
  return values;
}

/** The etcd flags a config file sets (empty values count as unset). Pure. */
export function etcdFlagsFromEnvironment(values: ReadonlyMap<string, string>): Partial<EtcdFlags> {
  const flags: Partial<EtcdFlags> = {};
  for (const [variable, flag] of Object.entries(ETCD_VARIABLES)) {
    const value = values.get(variable)?.trim();
    if (!value) continue;
    if (flag === 'etcdUrls') flags.etcdUrls = splitList(value);
    else flags[flag] = value;
  }
  return flags;
}

/**
 * Reads the etcd flags of a config file. The default file may be absent (a machine with only
 * the client package); a file named with --config must exist.
 */
export function readConfigFile(path: string, explicit: boolean): Partial<EtcdFlags> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new AutoradioError(ErrorCode.invalidConfig, `cannot read the config file ${path}: ${errorMessage(err)}`, { cause: err });
  }
  return etcdFlagsFromEnvironment(parseEnvironmentFile(text));
}
