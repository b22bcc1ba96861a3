/**
 * IP addresses and ranges for the egress guard (egress-guard.ts): parsing (IPv4 and IPv6,
 * CIDRs), membership, and the ranges an outbound request may not reach unless the operator
 * allows them (EGRESS_ALLOW_CIDRS). Pure: no DNS, no sockets.
 *
 * The refused ranges follow the IANA special-purpose address registries (IPv4 and IPv6),
 * everything not "globally reachable" there, plus multicast and, for IPv6, everything
 * outside global unicast 2000::/3. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4
 * address it carries and is judged as that; NAT64 (64:ff9b::/96, 64:ff9b:1::/48) and 6to4
 * (2002::/16), which reach an embedded IPv4 address through a translator, are refused.
 */
import net from 'node:net';

export type Family = 4 | 6;

/** An address as bytes: 4 for IPv4, 16 for IPv6. */
export interface IpAddress {
  readonly family: Family;
  readonly bytes: Uint8Array;
}

export interface Cidr {
  readonly family: Family;
  /** The network address (host bits cleared). */
  readonly bytes: Uint8Array;
  readonly prefix: number;
  /** As written canonically, e.g. `127.0.0.0/8`, `fe80::/10`. */
  readonly text: string;
}

function ipv4Bytes(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

function ipv6Bytes(text: string): Uint8Array {
  let rest = text.split('%')[0]; // a zone id (fe80::1%eth0) is not part of the address
  const lastColon = rest.lastIndexOf(':');
  const tail = rest.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a, b, c, d] = ipv4Bytes(tail);
    rest = `${rest.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = rest.split('::');
  const groupsOf = (part: string) => (part === '' ? [] : part.split(':'));
  const head = groupsOf(halves[0]);
  const end = halves.length > 1 ? groupsOf(halves[1]) : [];
  const groups = halves.length > 1 ? [...head, ...Array<string>(8 - head.length - end.length).fill('0'), ...end] : head;
  const bytes = new Uint8Array(16);
  groups.forEach((group, index) => {
    const value = parseInt(group, 16);
    bytes[index * 2] = value >> 8;
    bytes[index * 2 + 1] = value & 0xff;
  });
  return bytes;
}

/**
 * An IP address in text (dotted-quad IPv4, or IPv6 in any form node:net accepts, without
 * brackets), or undefined when it is not one.
 */
export function parseAddress(text: string): IpAddress | undefined {
  const family = net.isIP(text);
  if (family === 4) return { family: 4, bytes: ipv4Bytes(text) };
  if (family === 6) return { family: 6, bytes: ipv6Bytes(text) };
  return undefined;
}

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** ::ffff:a.b.c.d as a.b.c.d; any other address unchanged. */
export function unmapped(address: IpAddress): IpAddress {
  if (address.family === 6 && MAPPED_PREFIX.every((byte, index) => address.bytes[index] === byte)) {
    return { family: 4, bytes: address.bytes.slice(12) };
  }
  return address;
}

/** Canonical text of an address: dotted quad, or RFC 5952 IPv6 (mapped IPv4 as ::ffff:a.b.c.d). */
export function formatAddress(address: IpAddress): string {
  if (address.family === 4) return [...address.bytes].join('.');
  // The WHATWG URL parser writes IPv6 canonically (RFC 5952).
  const groups = Array.from({ length: 8 }, (_, index) => ((address.bytes[index * 2] << 8) | address.bytes[index * 2 + 1]).toString(16));
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

/** A CIDR (`10.0.0.0/8`, `fd00::/8`; a bare address is a /32 or /128), or undefined. */
export function parseCidr(text: string): Cidr | undefined {
  const match = /^([^/\s]+)(?:\/(\d{1,3}))?$/.exec(text.trim());
  if (!match) return undefined;
  const address = parseAddress(match[1]);
  if (!address || match[1].includes('%')) return undefined;
  const max = address.family === 4 ? 32 : 128;
  const prefix = match[2] === undefined ? max : Number(match[2]);
  if (prefix > max || (match[2] !== undefined && match[2].length > 1 && match[2].startsWith('0'))) return undefined;
  const bytes = address.bytes.map((byte, index) => {
    const bits = Math.min(8, Math.max(0, prefix - index * 8));
    return byte & ((0xff << (8 - bits)) & 0xff);
  });
  return { family: address.family, bytes, prefix, text: `${formatAddress({ family: address.family, bytes })}/${prefix}` };
}

/** parseCidr, throwing on a bad value (for constants and already validated configuration). */
export function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed) throw new TypeError(`not a CIDR: "${text}"`);
  return parsed;
}

/**
 * Whether an address lies in a range. An IPv4-mapped IPv6 address is in the IPv4 ranges
 * its IPv4 address is in (and in ::ffff:0:0/96).
 */
export function isInRange(address: IpAddress | string, range: Cidr | string): boolean {
  const parsed = typeof address === 'string' ? parseAddress(address) : address;
  const network = typeof range === 'string' ? cidr(range) : range;
  if (!parsed) return false;
  const candidates = [parsed, unmapped(parsed)];
  return candidates.some((candidate) => {
    if (candidate.family !== network.family) return false;
    for (let bit = 0; bit < network.prefix; bit += 8) {
      const bits = Math.min(8, network.prefix - bit);
      const mask = (0xff << (8 - bits)) & 0xff;
      if ((candidate.bytes[bit / 8] & mask) !== network.bytes[bit / 8]) return false;
    }
    return true;
  });
}

export interface NamedRange {
  readonly range: Cidr;
  readonly name: string;
}

const named = (entries: ReadonlyArray<readonly [string, string]>): readonly NamedRange[] =>
  Object.freeze(entries.map(([text, name]) => Object.freeze({ range: cidr(text), name })));

/** IPv4: IANA special-purpose registry, not globally reachable, plus multicast. */
export const REFUSED_IPV4: readonly NamedRange[] = named([
  ['0.0.0.0/8', 'unspecified ("this network")'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared address space (carrier-grade NAT)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['192.0.2.0/24', 'documentation (TEST-NET-1)'],
  ['192.88.99.0/24', 'deprecated 6to4 relay anycast'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation (TEST-NET-2)'],
  ['203.0.113.0/24', 'documentation (TEST-NET-3)'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
  ['255.255.255.255/32', 'limited broadcast'],
]);

/**
 * IPv6: IANA special-purpose registry, not globally reachable, plus translators to IPv4
 * (NAT64, 6to4), multicast, and whatever lies outside global unicast 2000::/3. The
 * IPv4-mapped block is not here: its addresses are judged as the IPv4 address they carry.
 */
export const REFUSED_IPV6: readonly NamedRange[] = named([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::ffff:0:0:0/96', 'IPv4-translated'],
  ['64:ff9b::/96', 'NAT64 (IPv4 behind a translator)'],
  ['64:ff9b:1::/48', 'local-use NAT64 (IPv4 behind a translator)'],
  ['100::/64', 'discard-only'],
  ['100:0:0:1::/64', 'dummy prefix'],
  ['2001::/32', 'Teredo (IPv4 tunnel)'],
  ['2001::/23', 'IETF protocol assignments'],
  ['2001:db8::/32', 'documentation'],
  ['2002::/16', '6to4 (IPv4 tunnel)'],
  ['3fff::/20', 'documentation'],
  ['5f00::/16', 'segment routing (SRv6) SIDs'],
  ['fc00::/7', 'unique local (private)'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'deprecated site-local'],
  ['ff00::/8', 'multicast'],
]);

/** Inside 2001::/23, what IANA marks globally reachable (anycast services, AMT, AS112, ORCHIDv2, DETs). */
const GLOBAL_IN_IETF_ASSIGNMENTS = ['2001:1::1/128', '2001:1::2/128', '2001:1::3/128', '2001:3::/32', '2001:4:112::/48', '2001:20::/28', '2001:30::/28'].map(cidr);
const GLOBAL_UNICAST = cidr('2000::/3');
const OUTSIDE_GLOBAL_UNICAST: NamedRange = Object.freeze({ range: cidr('::/0'), name: 'reserved (outside global unicast 2000::/3)' });

/**
 * The refused range an address lies in (its CIDR and what it is), or undefined when the
 * address is globally reachable. Mapped IPv4 is judged as IPv4.
 */
export function refusedRangeOf(address: IpAddress | string): NamedRange | undefined {
  const parsed = typeof address === 'string' ? parseAddress(address) : address;
  if (!parsed) throw new TypeError(`not an IP address: "${String(address)}"`);
  const plain = unmapped(parsed);
  if (plain.family === 4) return REFUSED_IPV4.find(({ range }) => isInRange(plain, range));
  const listed = REFUSED_IPV6.find(({ range }) => isInRange(plain, range));
  if (listed && listed.range.text === '2001::/23' && GLOBAL_IN_IETF_ASSIGNMENTS.some((range) => isInRange(plain, range))) {
    return undefined;
  }
  if (listed) return listed;
  if (!isInRange(plain, GLOBAL_UNICAST)) return OUTSIDE_GLOBAL_UNICAST;
  return undefined;
}
