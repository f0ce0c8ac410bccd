import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Turns the source-client captures (test/fixtures/source-captures/) back into the exact bytes
 * that crossed the wire. The files show `\r`/`\n` visibly; four notations occur:
 *  - capture-server logs: `<<< request head (N bytes):` / `>>> upstream response head:` /
 *    `>>> sent response:` followed by lines ending in a visible `\r\n` or `\n`;
 *  - byte logs: `+Nms c2s|s2c NB "<JSON string of latin1 chars>"`, connections separated by
 *    `client closed` / `upstream closed` lines (long audio strings are cut short);
 *  - silent-server dumps: a Python bytes literal after `# head (repr):` plus the hex of the
 *    next bytes;
 *  - curl -i output where each line ends in a literal `\r`.
 * The parsing is pure (text in, vectors out); only `loadCaptures` reads files.
 */

export interface CaptureVector {
  file: string;
  /** Connection number within the file (1-based). */
  conn: number;
  direction: 'request' | 'response';
  bytes: Buffer;
  /** Byte count the capture states for this head or chunk, when it states one. */
  declaredLength?: number;
  /** True when `bytes` is a cut-off prefix of what was sent (long audio in byte logs). */
  truncated: boolean;
  /** More bytes of a direction that already has a vector on this connection (audio after a reply). */
  continuation: boolean;
}

export const CAPTURES_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'source-captures');

export function loadCaptures(dir = CAPTURES_DIR): CaptureVector[] {
  const out: CaptureVector[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.txt') || file.endsWith('.cmd.txt')) continue;
    out.push(...parseCaptureFile(file, readFileSync(join(dir, file), 'utf8')));
  }
  return out;
}

export function parseCaptureFile(file: string, text: string): CaptureVector[] {
  if (/^\+\d+ms (c2s|s2c) /m.test(text)) return parseByteLog(file, text);
  if (text.includes('# head (repr):')) return parseSilentServer(file, text);
  if (/^## /m.test(text)) return parseCurlReplies(file, text);
  return parseCaptureServerLog(file, text);
}

/** `Line\r\n` -> bytes with a real CRLF; `Line\n` -> LF. */
function visibleLineToBytes(line: string): string | undefined {
  if (line.endsWith('\\r\\n')) return `${line.slice(0, -4)}\r\n`;
  if (line.endsWith('\\n')) return `${line.slice(0, -2)}\n`;
  return undefined;
}

function parseCaptureServerLog(file: string, text: string): CaptureVector[] {
  const out: CaptureVector[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /\[conn (\d+)\] (<<< request head \((\d+) bytes\)|>>> upstream response head|>>> sent response):$/.exec(
      lines[i]!,
    );
    if (!m) continue;
    let head = '';
    for (i++; i < lines.length; i++) {
      const bytes = visibleLineToBytes(lines[i]!);
      if (bytes === undefined) throw new Error(`${file}:${i + 1}: line without a visible line end`);
      head += bytes;
      if (bytes === '\r\n' || bytes === '\n') break;
    }
    out.push({
      file,
      conn: Number(m[1]),
      direction: m[2]!.startsWith('<<<') ? 'request' : 'response',
      bytes: Buffer.from(head, 'latin1'),
      declaredLength: m[3] ? Number(m[3]) : undefined,
      truncated: false,
      continuation: false,
    });
  }
  return out;
}

function parseByteLog(file: string, text: string): CaptureVector[] {
  const out: CaptureVector[] = [];
  let conn = 1;
  let sawData = false;
  for (const line of text.split('\n')) {
    const m = /^\+\d+ms (c2s|s2c) (\d+)B (".*")$/.exec(line);
    if (m) {
      const decoded = JSON.parse(m[3]!) as string;
      const bytes = Buffer.from(decoded, 'latin1');
      out.push({
        file,
        conn,
        direction: m[1] === 'c2s' ? 'request' : 'response',
        bytes,
        declaredLength: Number(m[2]),
        truncated: bytes.length < Number(m[2]),
        continuation: false,
      });
      sawData = true;
    } else if (/^\+\d+ms (client|upstream) closed$/.test(line) && sawData) {
      // Both sides report their close; the next data line opens a new connection.
      conn++;
      sawData = false;
    }
  }
  return mergeByteLogChunks(out);
}

/** Consecutive chunks of one connection and direction form one vector (head plus body). */
function mergeByteLogChunks(chunks: CaptureVector[]): CaptureVector[] {
  const out: CaptureVector[] = [];
  for (const c of chunks) {
    const last = out[out.length - 1];
    if (last && last.conn === c.conn && last.direction === c.direction && !last.truncated) {
      last.bytes = Buffer.concat([last.bytes, c.bytes]);
      last.declaredLength = (last.declaredLength ?? 0) + (c.declaredLength ?? 0);
      last.truncated = c.truncated;
    } else {
      const continuation = out.some((v) => v.conn === c.conn && v.direction === c.direction);
      out.push({ ...c, continuation });
    }
  }
  return out;
}

function parseSilentServer(file: string, text: string): CaptureVector[] {
  const repr = /^b'(.*)'$/m.exec(text);
  if (!repr) throw new Error(`${file}: no bytes literal`);
  const head = pythonBytesLiteral(repr[1]!);
  const hex = /next 32 bytes after head \(hex\): ?([0-9a-f]*)$/m.exec(text)?.[1] ?? '';
  const total = Number(/total (\d+) bytes/.exec(text)?.[1]);
  const bytes = Buffer.concat([head, Buffer.from(hex, 'hex')]);
  return [
    {
      file,
      conn: 1,
      direction: 'request',
      bytes,
      declaredLength: Number.isFinite(total) ? total : undefined,
      truncated: Number.isFinite(total) && bytes.length < total,
      continuation: false,
    },
  ];
}

export function pythonBytesLiteral(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\') {
      out.push(c.charCodeAt(0));
      continue;
    }
    const n = s[++i];
    const simple: Record<string, number> = { r: 13, n: 10, t: 9, '\\': 92, "'": 39, '"': 34, '0': 0 };
    if (n === 'x') {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (n !== undefined && n in simple) {
      out.push(simple[n]!);
    } else {
      throw new Error(`unknown escape \\${n}`);
    }
  }
  return Buffer.from(out);
}

function parseCurlReplies(file: string, text: string): CaptureVector[] {
  const out: CaptureVector[] = [];
  const sections = text.split(/^## .*$/m).slice(1);
  sections.forEach((section, idx) => {
    let head = '';
    for (const line of section.replace(/^\n/, '').split('\n')) {
      if (!line.endsWith('\\r')) break;
      head += `${line.slice(0, -2)}\r\n`;
      if (line === '\\r') break;
    }
    out.push({ file, conn: idx + 1, direction: 'response', bytes: Buffer.from(head, 'latin1'), truncated: false, continuation: false });
  });
  return out;
}
