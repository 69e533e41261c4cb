import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StoreBackend } from '../api/http/test-backend.js';
import { TrafficRecorder } from '../traffic/index.js';
import { recordTraffic } from './traffic.js';

const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text));

test('every KV call through the wrapped backend is counted as a read or a write under its key prefix, with its latency', async () => {
  const clock = { wallMs: 0, monotonicMs: 0 };
  const traffic = new TrafficRecorder({ nowMs: () => clock.wallMs });
  const inner = new StoreBackend();
  const backend = recordTraffic(inner, traffic, () => (clock.monotonicMs += 2));
  await backend.put({ key: bytes('/app/a/1'), value: bytes('v') });
  await backend.range({ key: bytes('/app/a/1') });
  await backend.txn({ compare: [], success: [{ requestRange: { key: bytes('/app/b/1') } }], failure: [] });
  await backend.txn({ compare: [], success: [{ requestPut: { key: bytes('/app/b/2'), value: bytes('v') } }], failure: [] });
  await backend.deleteRange({ key: bytes('/app/a/1') });
  await assert.rejects(backend.range({ key: bytes('/app/a/1'), revision: 1_000 }), /revision/);
  assert.equal(backend.leaderId(), inner.leaderId(), 'other methods pass through');
  assert.equal(backend.identify, backend.identify, 'bound once, not on every call');
  clock.wallMs = 1000;
  const samples = traffic.samplesSince(-1);
  assert.deepEqual([samples.reads, samples.writes], [[3], [3]], 'the failed read counts too');
  assert.ok(samples.writeP50[0]! > 1.8 && samples.writeP50[0]! < 2.2, `latency ${samples.writeP50[0]}`);
  assert.deepEqual(traffic.heatSince(-1)[0]!.cells, [
    ['/app/a/', 2, 2],
    ['/app/b/', 1, 1],
  ]);
});
