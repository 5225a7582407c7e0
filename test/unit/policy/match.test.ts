import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrContains, compileGlob, compilePathPattern, compileStringPattern, parseCidr, parseIp } from '../../../src/policy/match.js';

test('Istio string patterns: exact, prefix, suffix, presence', () => {
  assert.equal(compileStringPattern('/a')('/a'), true);
  assert.equal(compileStringPattern('/a')('/a/'), false);
  assert.equal(compileStringPattern('/a*')('/abc'), true);
  assert.equal(compileStringPattern('*.example.com', true)('API.Example.com'), true);
  assert.equal(compileStringPattern('*')(''), true);
  assert.throws(() => compileStringPattern('a*b'), RangeError);
  assert.throws(() => compileStringPattern('**'), RangeError);
});

test('path templates: {*} is one segment, {**} the rest', () => {
  const m = compilePathPattern('/v1/{*}/items/{**}');
  assert.equal(m('/v1/s/items/a/b'), true);
  assert.equal(m('/v1/s/t/items/a'), false);
  assert.equal(m('/v1//items/a'), false);
  assert.equal(compilePathPattern('/a.b/{*}')('/aXb/c'), false, 'literals are escaped');
  assert.throws(() => compilePathPattern('/a/{**}/b/{**}'), RangeError);
  assert.throws(() => compilePathPattern('/a/x{*}'), RangeError);
  assert.throws(() => compilePathPattern('a/{*}'), RangeError);
});

test('globs: * within a segment, ** across, ? one character', () => {
  assert.equal(compileGlob('/usr/bin/*')('/usr/bin/curl'), true);
  assert.equal(compileGlob('/usr/bin/*')('/usr/bin/x/curl'), false);
  assert.equal(compileGlob('/usr/**')('/usr/lib/x/y.so'), true);
  assert.equal(compileGlob('/bin/s?')('/bin/sh'), true);
  assert.equal(compileGlob('/bin/s?')('/bin/s/'), false);
  assert.throws(() => compileGlob('bin/*'), RangeError);
  assert.throws(() => compileGlob('/*/*/*/*/*/*/*/*/*'), RangeError);
});

test('IP parsing is strict and CIDRs match across IPv4 and IPv6', () => {
  assert.ok(parseIp('10.0.0.1'));
  assert.ok(parseIp('::1'));
  assert.ok(parseIp('2001:db8::8a2e:370:7334'));
  assert.ok(parseIp('::ffff:10.0.0.1'));
  for (const bad of ['010.0.0.1', '1.2.3', '1.2.3.256', '1::2::3', 'fe80::1%eth0', '', '1.2.3.4 ', ':::']) assert.equal(parseIp(bad), undefined, bad);
  const net = parseCidr('10.1.0.0/16');
  assert.equal(cidrContains(net, parseIp('10.1.200.3')!), true);
  assert.equal(cidrContains(net, parseIp('10.2.0.1')!), false);
  assert.equal(cidrContains(net, parseIp('::ffff:10.1.0.9')!), true);
  assert.equal(cidrContains(parseCidr('2001:db8::/32'), parseIp('2001:db8:1::1')!), true);
  assert.equal(cidrContains(parseCidr('0.0.0.0/0'), parseIp('2001:db8::1')!), false, 'an IPv4 /0 does not cover IPv6');
  assert.equal(cidrContains(parseCidr('10.0.0.7'), parseIp('10.0.0.7')!), true);
  assert.throws(() => parseCidr('10.0.0.1/8'), /host bits/);
  assert.throws(() => parseCidr('10.0.0.0/33'), RangeError);
});
