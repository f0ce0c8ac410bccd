import { isIP } from 'node:net';

/**
 * The unit the front door limits connections by: an IPv4 address, or the /64 an IPv6 address
 * belongs to. One subscriber usually gets a whole /64 and can use any address in it, so
 * counting IPv6 addresses one by one would leave one client unlimited. IPv4-mapped IPv6
 * addresses count as their IPv4 address. Pure.
 */
export function addressKey(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress);
  if (mapped) return mapped[1]!;
  const family = isIP(remoteAddress);
  if (family === 4) return remoteAddress;
  if (family !== 6) return 'unknown';
  const groups = ipv6Groups(remoteAddress);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : 'unknown';
}

/** This host itself: 127.0.0.0/8, ::1, or 127.x written IPv4-mapped. */
export function isLoopback(remoteAddress: string | undefined): boolean {
  if (!remoteAddress) return false;
  const v4 = /^(?:::ffff:)?(\d+)\.\d+\.\d+\.\d+$/i.exec(remoteAddress);
  if (v4) return v4[1] === '127';
  return ipv6Groups(remoteAddress)?.join(':') === '0:0:0:0:0:0:0:1';
}

/** The eight 16-bit groups of a valid IPv6 literal (zone index dropped), lowercase, unpadded. */
function ipv6Groups(address: string): string[] | undefined {
  const plain = address.split('%')[0]!.toLowerCase();
  const [left, right] = plain.includes('::') ? plain.split('::') : [plain, undefined];
  const expand = (part: string | undefined): string[] => {
    if (!part) return [];
    return part.split(':').flatMap((g) => {
      // An embedded IPv4 address (::ffff:a.b.c.d, 64:ff9b::a.b.c.d) stands for two groups.
      if (!g.includes('.')) return [g];
      const b = g.split('.').map(Number);
      return [((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16)];
    });
  };
  const head = expand(left);
  const tail = expand(right);
  const zeros = right === undefined ? [] : Array<string>(8 - head.length - tail.length).fill('0');
  const groups = [...head, ...zeros, ...tail].map((g) => Number.parseInt(g, 16).toString(16));
  return groups.length === 8 ? groups : undefined;
}
