import { isIP } from 'node:net';

/**
 * The key per-client limits count under: an IPv4 address as it is, an IPv6 address by its /64
 * (one subscriber usually gets a whole /64, so counting single IPv6 addresses would let one host
 * pose as 2^64 clients). IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
 * Anything unparsable shares one key, so malformed input can only limit itself.
 */
export function clientKey(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  const family = isIP(address);
  if (family === 4) return address;
  if (family !== 6) return 'unknown';
  return `${ipv6Prefix64(address)}::/64`;
}

/** The first four hextets of an IPv6 address (zone index dropped), in a canonical form. */
function ipv6Prefix64(address: string): string {
  const bare = address.split('%')[0]!.toLowerCase();
  const [head, tail] = bare.includes('::') ? bare.split('::') : [bare, undefined];
  const headParts = head ? head.split(':') : [];
  let groups: string[];
  if (tail === undefined) {
    groups = headParts;
  } else {
    const tailParts = tail ? tail.split(':') : [];
    // An embedded IPv4 tail (a.b.c.d) fills two groups.
    const tailGroups = tailParts.reduce((n, p) => n + (p.includes('.') ? 2 : 1), 0);
    const missing = Math.max(0, 8 - headParts.length - tailGroups);
    groups = [...headParts, ...Array.from({ length: missing }, () => '0'), ...tailParts];
  }
  return groups
    .slice(0, 4)
    .map((g) => (g.includes('.') ? '0' : Number.parseInt(g || '0', 16).toString(16)))
    .join(':');
}
