/**
 * The egress guard's address ranges (server/src/egress/address-ranges.ts): parsing, range
 * membership, and which addresses are refused by default, IPv4 and IPv6, at the edges of
 * each range, and in the forms that hide an IPv4 address inside IPv6.
 */
import { describe, expect, it } from '@jest/globals';
import { formatAddress, isInRange, parseAddress, parseCidr, refusedRangeOf } from '../../server/src/egress/address-ranges.js';

describe('parseCidr', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['10.1.2.3/8', '10.0.0.0/8'],
    [' 192.168.1.0/24 ', '192.168.1.0/24'],
    ['127.0.0.1', '127.0.0.1/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['fd00::/8', 'fd00::/8'],
    ['FE80:0:0:0::/10', 'fe80::/10'],
    ['::1', '::1/128'],
    ['::/0', '::/0'],
    ['::ffff:127.0.0.1/104', '::ffff:7f00:0/104'],
    ['2001:db8::1/32', '2001:db8::/32'],
  ])('%s is %s', (text, canonical) => {
    expect(parseCidr(text)?.text).toBe(canonical);
  });

  it.each(['', '10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/08', '10.0.0/8', '127.1', '10.0.0.0/8/8', 'example.com/8', 'fe80::1%eth0/64', '1.2.3.4/-1', '10.0.0.0 /8', ':::/8'])(
    '%j is not a CIDR',
    (text) => {
      expect(parseCidr(text)).toBeUndefined();
    },
  );
});

describe('parseAddress and formatAddress', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::ffff:127.0.0.1', '::ffff:7f00:1'],
    ['::ffff:7f00:1', '::ffff:7f00:1'],
    ['2001:DB8:0:0:1::1', '2001:db8::1:0:0:1'],
    ['64:ff9b::10.0.0.1', '64:ff9b::a00:1'],
  ])('%s reads back as %s', (text, canonical) => {
    expect(formatAddress(parseAddress(text)!)).toBe(canonical);
  });

  it.each(['', 'localhost', '127.1', '0x7f.0.0.1', '1.2.3.256', '[::1]', '::g'])('%j is not an address', (text) => {
    expect(parseAddress(text)).toBeUndefined();
  });
});

describe('isInRange', () => {
  it.each([
    ['10.0.0.0', '10.0.0.0/8', true],
    ['10.255.255.255', '10.0.0.0/8', true],
    ['11.0.0.0', '10.0.0.0/8', false],
    ['9.255.255.255', '10.0.0.0/8', false],
    ['172.31.255.255', '172.16.0.0/12', true],
    ['172.32.0.0', '172.16.0.0/12', false],
    ['1.2.3.4', '0.0.0.0/0', true],
    ['1.2.3.4', '1.2.3.4/32', true],
    ['1.2.3.5', '1.2.3.4/32', false],
    ['::1', '::1/128', true],
    ['::2', '::1/128', false],
    ['fe80::1', 'fe80::/10', true],
    ['febf:ffff::1', 'fe80::/10', true],
    ['fec0::1', 'fe80::/10', false],
    ['2001:db8:ffff::1', '2001:db8::/32', true],
    ['2001:db9::1', '2001:db8::/32', false],
    // IPv4-mapped IPv6 is in the IPv4 ranges of the address it carries, both spellings.
    ['::ffff:127.0.0.1', '127.0.0.0/8', true],
    ['::ffff:7f00:1', '127.0.0.0/8', true],
    ['::ffff:7f00:1', '::ffff:0:0/96', true],
    ['::ffff:8.8.8.8', '127.0.0.0/8', false],
    // …but an IPv4 address is not in an IPv6 range, nor IPv6 in IPv4, nor a bad address anywhere.
    ['127.0.0.1', '::/0', false],
    ['::1', '0.0.0.0/0', false],
    ['64:ff9b::7f00:1', '127.0.0.0/8', false],
    ['not-an-address', '0.0.0.0/0', false],
  ])('%s in %s: %s', (address, range, expected) => {
    expect(isInRange(address, range)).toBe(expected);
  });
});

describe('refusedRangeOf: the addresses refused unless allowed', () => {
  const refused: Array<[string, string]> = [
    // IPv4, each range at both ends.
    ['0.0.0.0', '0.0.0.0/8'],
    ['0.255.255.255', '0.0.0.0/8'],
    ['10.0.0.0', '10.0.0.0/8'],
    ['10.255.255.255', '10.0.0.0/8'],
    ['100.64.0.0', '100.64.0.0/10'],
    ['100.127.255.255', '100.64.0.0/10'],
    ['127.0.0.1', '127.0.0.0/8'],
    ['127.255.255.255', '127.0.0.0/8'],
    ['169.254.169.254', '169.254.0.0/16'],
    ['172.16.0.0', '172.16.0.0/12'],
    ['172.31.255.255', '172.16.0.0/12'],
    ['192.0.0.0', '192.0.0.0/24'],
    ['192.0.0.255', '192.0.0.0/24'],
    ['192.0.2.1', '192.0.2.0/24'],
    ['192.88.99.1', '192.88.99.0/24'],
    ['192.168.0.0', '192.168.0.0/16'],
    ['192.168.255.255', '192.168.0.0/16'],
    ['198.18.0.0', '198.18.0.0/15'],
    ['198.19.255.255', '198.18.0.0/15'],
    ['198.51.100.7', '198.51.100.0/24'],
    ['203.0.113.9', '203.0.113.0/24'],
    ['224.0.0.1', '224.0.0.0/4'],
    ['239.255.255.255', '224.0.0.0/4'],
    ['240.0.0.0', '240.0.0.0/4'],
    ['255.255.255.254', '240.0.0.0/4'],
    ['255.255.255.255', '240.0.0.0/4'],
    // IPv6.
    ['::', '::/128'],
    ['::1', '::1/128'],
    ['0:0:0:0:0:0:0:1', '::1/128'],
    ['::ffff:0:7f00:1', '::ffff:0:0:0/96'],
    ['64:ff9b::8.8.8.8', '64:ff9b::/96'],
    ['64:ff9b::7f00:1', '64:ff9b::/96'],
    ['64:ff9b:1::1', '64:ff9b:1::/48'],
    ['100::1', '100::/64'],
    ['2001::1', '2001::/32'],
    ['2001:0:ffff::1', '2001::/32'],
    ['2001:2::1', '2001::/23'],
    ['2001:10::1', '2001::/23'],
    ['2001:1ff:ffff::1', '2001::/23'],
    ['2001:db8::1', '2001:db8::/32'],
    ['2002::1', '2002::/16'],
    ['2002:7f00:1::1', '2002::/16'],
    ['2002:808:808::1', '2002::/16'],
    ['3fff::1', '3fff::/20'],
    ['5f00::1', '5f00::/16'],
    ['fc00::1', 'fc00::/7'],
    ['fdff:ffff::1', 'fc00::/7'],
    ['fe80::1', 'fe80::/10'],
    ['fe80::1%eth0', 'fe80::/10'],
    ['febf::1', 'fe80::/10'],
    ['fec0::1', 'fec0::/10'],
    ['ff02::1', 'ff00::/8'],
    // Outside global unicast 2000::/3: reserved (IPv4-compatible ::a.b.c.d among them).
    ['::7f00:1', '::/0'],
    ['::8.8.8.8', '::/0'],
    ['1::1', '::/0'],
    ['4000::1', '::/0'],
    ['e000::1', '::/0'],
    // IPv4-mapped: the IPv4 address inside is what counts, in either spelling.
    ['::ffff:127.0.0.1', '127.0.0.0/8'],
    ['::ffff:7f00:1', '127.0.0.0/8'],
    ['0:0:0:0:0:ffff:7f00:1', '127.0.0.0/8'],
    ['::ffff:10.1.2.3', '10.0.0.0/8'],
    ['::ffff:a9fe:a9fe', '169.254.0.0/16'],
    ['::ffff:0.0.0.0', '0.0.0.0/8'],
  ];
  it.each(refused)('%s is refused as in %s', (address, range) => {
    expect(refusedRangeOf(address)?.range.text).toBe(range);
  });

  it.each([
    '1.1.1.1',
    '8.8.8.8',
    '9.255.255.255',
    '11.0.0.0',
    '100.63.255.255',
    '100.128.0.0',
    '126.255.255.255',
    '128.0.0.0',
    '169.253.255.255',
    '169.255.0.0',
    '172.15.255.255',
    '172.32.0.0',
    '192.0.1.0',
    '192.0.3.0',
    '192.88.98.255',
    '192.88.100.0',
    '192.167.255.255',
    '192.169.0.0',
    '198.17.255.255',
    '198.20.0.0',
    '223.255.255.255',
    '140.82.112.3',
    '::ffff:8.8.8.8',
    '::ffff:808:808',
    '2000::1',
    '2001:200::1',
    '2001:1::1',
    '2001:1::2',
    '2001:1::3',
    '2001:3::1',
    '2001:4:112::1',
    '2001:20::1',
    '2001:30::1',
    '2001:4860:4860::8888',
    '2606:4700:4700::1111',
    '2a00:1450:4001:81c::200e',
    '3ffe::1',
    '3fff:1000::1',
    '2003::1',
  ])('%s is globally reachable: not refused', (address) => {
    expect(refusedRangeOf(address)).toBeUndefined();
  });

  it('names what a refused range is', () => {
    expect(refusedRangeOf('127.0.0.1')?.name).toBe('loopback');
    expect(refusedRangeOf('::ffff:10.0.0.1')?.name).toBe('private');
    expect(refusedRangeOf('fe80::1')?.name).toBe('link-local');
    expect(refusedRangeOf('100.64.0.1')?.name).toMatch(/shared/);
  });

  it('throws on something that is not an address', () => {
    expect(() => refusedRangeOf('localhost')).toThrow(TypeError);
  });
});
