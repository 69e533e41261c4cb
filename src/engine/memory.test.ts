import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEngine } from './memory.js';

const b = (s: string): Uint8Array => Buffer.from(s);
const str = (u: Uint8Array): string => Buffer.from(u).toString();

test('range returns keys in byte order within [start, end), honouring reverse and limit', () => {
  const engine = new MemoryEngine();
  engine.write(['c', 'a', 'b', 'd'].map((k) => ({ type: 'put', key: b(k), value: b(k.toUpperCase()) })));
  const keys = (opts: Parameters<MemoryEngine['range']>[0]) => [...engine.range(opts)].map(([k]) => str(k));
  assert.deepEqual(keys({ start: b('b'), end: b('d') }), ['b', 'c']);
  assert.deepEqual(keys({ start: b('a'), reverse: true, limit: 2 }), ['d', 'c']);
  assert.equal(str(engine.get(b('c'))!), 'C');
});

test('a snapshot does not see later writes', () => {
  const engine = new MemoryEngine();
  engine.write([{ type: 'put', key: b('k'), value: b('1') }]);
  const view = engine.snapshot();
  engine.write([{ type: 'put', key: b('k'), value: b('2') }, { type: 'del', key: b('k') }]);
  assert.equal(str(view.get(b('k'))!), '1');
  assert.equal(engine.get(b('k')), undefined);
});

test('export then import reproduces the key space exactly', () => {
  const source = new MemoryEngine();
  source.write(Array.from({ length: 100 }, (_, i) => ({ type: 'put' as const, key: b(`key${i}`), value: b(`v${i}`) })));
  const target = new MemoryEngine();
  target.write([{ type: 'put', key: b('stale'), value: b('x') }]);
  target.import(source.export(64));
  assert.deepEqual([...target.range({ start: b('') })], [...source.range({ start: b('') })]);
});
