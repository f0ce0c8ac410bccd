import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Sends UDP datagrams with a source port the sockets API refuses (0), through a raw socket
 * (python3, as root). The kernel writes the IP header; the script writes the UDP header with
 * the chosen source port. IPv6 needs the UDP checksum, which the kernel fills in
 * (IPV6_CHECKSUM at offset 6); over IPv4 a zero checksum means "none".
 */
const SCRIPT = `
import socket, struct, sys
family, dst, dport, sport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
payloads = [bytes.fromhex(h) for h in sys.argv[5:]]
af = socket.AF_INET6 if family == '6' else socket.AF_INET
s = socket.socket(af, socket.SOCK_RAW, socket.IPPROTO_UDP)
if af == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, getattr(socket, 'IPV6_CHECKSUM', 7), 6)
for p in payloads:
    s.sendto(struct.pack('!HHHH', sport, dport, 8 + len(p), 0) + p, (dst, 0))
print(len(payloads))
`;

export async function sendRawUdp(o: {
  family: 4 | 6;
  address: string;
  port: number;
  sourcePort: number;
  payloads: Buffer[];
}): Promise<number> {
  const { stdout } = await run('python3', [
    '-c',
    SCRIPT,
    String(o.family),
    o.address,
    String(o.port),
    String(o.sourcePort),
    ...o.payloads.map((p) => p.toString('hex')),
  ]);
  return Number(stdout.trim());
}
