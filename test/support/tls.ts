import { before, after } from 'node:test';
import { mkdtemp, rm, writeFile, rename, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runOk } from './netns.js';

/** A certificate authority made at test time with openssl, and the server certificates it signs. */
export interface TestCa {
  dir: string;
  /** PEM file of the CA certificate: what clients trust. */
  caFile: string;
  /** Issues a certificate for `names` (DNS names; IP addresses too), files `<label>.crt`/`<label>.key`. */
  issue(label: string, names: string[]): Promise<{ certFile: string; keyFile: string }>;
  remove(): Promise<void>;
}

export async function makeTestCa(): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'autoradio-ca-'));
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.crt');
  await runOk(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey,
    '-out', caFile, '-days', '2', '-subj', '/CN=autoradio test CA']);
  let serial = 1000;
  return {
    dir,
    caFile,
    async issue(label, names) {
      const keyFile = join(dir, `${label}.key`);
      const csr = join(dir, `${label}.csr`);
      const certFile = join(dir, `${label}.crt`);
      const ext = join(dir, `${label}.ext`);
      const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      await writeFile(ext, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
      await runOk(['openssl', 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile,
        '-out', csr, '-subj', `/CN=${names[0]}`]);
      await runOk(['openssl', 'x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', String(serial++),
        '-days', '2', '-extfile', ext, '-out', certFile]);
      return { certFile, keyFile };
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Issues a certificate for `names` and reads the pair back as PEM text. */
export async function issuePem(ca: TestCa, label: string, names: string[]): Promise<{ cert: string; key: string }> {
  const f = await ca.issue(label, names);
  return { cert: await readFile(f.certFile, 'utf8'), key: await readFile(f.keyFile, 'utf8') };
}

/**
 * Two pairs for `radio.example.org` and its wildcard from one test CA, made before a file's
 * tests run and removed after them (node:test hooks): the fields are set once `before` ran.
 */
export function pairsForThisFile(): { one: { cert: string; key: string }; two: { cert: string; key: string } } {
  const pairs = {} as ReturnType<typeof pairsForThisFile>;
  let ca: TestCa | undefined;
  before(async () => {
    ca = await makeTestCa();
    pairs.one = await issuePem(ca, 'one', ['radio.example.org', '*.radio.example.org']);
    pairs.two = await issuePem(ca, 'two', ['radio.example.org', '*.radio.example.org']);
  });
  after(() => ca?.remove());
  return pairs;
}

/** Replaces `dest` with `src`'s content the way deploy tools do: a new file renamed over it. */
export async function replaceFile(src: string, dest: string): Promise<void> {
  const tmp = `${dest}.new`;
  await writeFile(tmp, await readFile(src));
  await rename(tmp, dest);
}
