// MvccStore behaviour tables, written from the etcd v3 API docs (rpc.proto comments, "KV API
// guarantees", "Interacting with etcd") and run on every available engine.
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine } from '../engine/types.js';
import { LichenError, type EtcdErrorName } from '../errors.js';
import type { MvccCommand as Command } from './command.js';
import {
  MvccStore,
  isReadOnlyTxn,
  isSerializableTxn,
  leaseIdFromIndex,
} from './store.js';
import { PREFIX_REVISION } from './layout.js';
import { RecordCache } from './record-cache.js';
import { Harness, b, engineFactories, randomCommands, s, show } from './testkit.js';
import {
  AlarmType,
  CompareResult,
  CompareTarget,
  SortOrder,
  SortTarget,
  type Compare,
  type KeyValue,
  type KeyValueSink,
  type RangeRequest,
  type RequestOp,
  type TxnResponse,
} from './types.js';

const ZERO = Uint8Array.of(0);
/** Engines opened for each test before it runs. */
const ENGINES_PER_TEST_MAX = 3;

/** The refusal has the code and names etcd's error (whose words src/api sends). */
function expectError(result: ReturnType<Harness['apply']>, code: string, etcdError: EtcdErrorName): LichenError {
  assert.ok('error' in result, `expected ${code}, got a response`);
  assert.equal(result.error.code, code);
  assert.equal(result.error.details.etcdError, etcdError);
  return result.error;
}

function throwsLichen(fn: () => unknown, code: string, etcdError: EtcdErrorName): LichenError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof LichenError, String(error));
    assert.equal(error.code, code);
    assert.equal(error.details.etcdError, etcdError);
    return error;
  }
  assert.fail(`expected ${code}`);
}

for (const factory of engineFactories()) {
  describe(`MvccStore on the ${factory.kind} engine`, () => {
    // Engines open asynchronously, and the tests are synchronous: each test takes its engines
    // from ones opened before it.
    type Opened = Awaited<ReturnType<typeof factory.create>>;
    const ready: Opened[] = [];
    const used: Opened[] = [];
    beforeEach(async () => {
      while (ready.length < ENGINES_PER_TEST_MAX) ready.push(await factory.create());
    });
    afterEach(async () => {
      for (const { cleanup } of used.splice(0)) await cleanup();
    });
    after(async () => {
      for (const { cleanup } of ready.splice(0)) await cleanup();
    });
    const freshEngine = (): Engine => {
      const opened = ready.pop();
      assert.ok(opened, `a test uses at most ${ENGINES_PER_TEST_MAX} engines`);
      used.push(opened);
      return opened.engine;
    };
    const fresh = (options?: Parameters<typeof Harness.open>[1]): Harness => Harness.open(freshEngine(), options);

    /** The fixture of the range table (revision after each write in the comment). */
    const rangeFixture = (): Harness => {
      const h = fresh();
      h.put('a', '1'); // 2
      h.put('b', '2'); // 3
      h.put('c', '3'); // 4
      h.put('a', '4'); // 5
      h.del('b'); // 6
      h.put('b', '5'); // 7
      h.put('foo', 'x'); // 8
      h.put('foo/1', 'y'); // 9
      h.put('fop', 'z'); // 10
      return h;
    };

    it('starts an empty store at revision 1 with nothing applied', () => {
      const h = fresh();
      assert.equal(h.store.currentRevision, 1);
      assert.equal(h.store.compactRevision, 0);
      assert.equal(h.store.appliedIndex, 0);
      assert.deepEqual(h.store.range({ key: ZERO, rangeEnd: ZERO }), { kvs: [], more: false, count: 0 });
    });

    describe('range', () => {
      const A = 'a=4@2/5/v2';
      const B = 'b=5@7/7/v1';
      const C = 'c=3@4/4/v1';
      const FOO = 'foo=x@8/8/v1';
      const FOO1 = 'foo/1=y@9/9/v1';
      const FOP = 'fop=z@10/10/v1';
      const cases: { name: string; request: Partial<RangeRequest> & { key: Uint8Array }; kvs: string[]; more?: boolean; count: number }[] = [
        { name: 'a single key (rangeEnd empty)', request: { key: b('a') }, kvs: [A], count: 1 },
        { name: 'a missing key', request: { key: b('zz') }, kvs: [], count: 0 },
        { name: '[key, rangeEnd)', request: { key: b('a'), rangeEnd: b('c') }, kvs: [A, B], count: 2 },
        { name: 'a prefix (rangeEnd = prefix + 1)', request: { key: b('foo'), rangeEnd: b('fop') }, kvs: [FOO, FOO1], count: 2 },
        { name: "every key >= key (rangeEnd '\\0')", request: { key: b('c'), rangeEnd: ZERO }, kvs: [C, FOO, FOO1, FOP], count: 4 },
        { name: "all keys (key and rangeEnd '\\0')", request: { key: ZERO, rangeEnd: ZERO }, kvs: [A, B, C, FOO, FOO1, FOP], count: 6 },
        { name: 'rangeEnd before key is empty', request: { key: b('c'), rangeEnd: b('a') }, kvs: [], count: 0 },
        { name: 'limit cuts short and sets more; count is the whole range', request: { key: ZERO, rangeEnd: ZERO, limit: 2 }, kvs: [A, B], more: true, count: 6 },
        { name: 'limit equal to the size: more is false', request: { key: ZERO, rangeEnd: ZERO, limit: 6 }, kvs: [A, B, C, FOO, FOO1, FOP], count: 6 },
        { name: 'historical revision 4', request: { key: ZERO, rangeEnd: ZERO, revision: 4 }, kvs: ['a=1@2/2/v1', 'b=2@3/3/v1', C], count: 3 },
        { name: 'historical revision 6 hides the deleted key', request: { key: ZERO, rangeEnd: ZERO, revision: 6 }, kvs: [A, C], count: 2 },
        { name: 'revision 1 (before any write) is empty', request: { key: ZERO, rangeEnd: ZERO, revision: 1 }, kvs: [], count: 0 },
        { name: 'countOnly returns no kvs', request: { key: ZERO, rangeEnd: ZERO, countOnly: true }, kvs: [], count: 6 },
        { name: 'keysOnly drops values', request: { key: b('a'), rangeEnd: b('c'), keysOnly: true }, kvs: ['a=@2/5/v2', 'b=@7/7/v1'], count: 2 },
        { name: 'sort by key descending', request: { key: ZERO, rangeEnd: ZERO, sortOrder: SortOrder.DESCEND }, kvs: [FOP, FOO1, FOO, C, B, A], count: 6 },
        { name: 'sort order NONE with target MOD sorts ascending', request: { key: ZERO, rangeEnd: ZERO, sortTarget: SortTarget.MOD }, kvs: [C, A, B, FOO, FOO1, FOP], count: 6 },
        { name: 'sort by create revision descending', request: { key: ZERO, rangeEnd: ZERO, sortTarget: SortTarget.CREATE, sortOrder: SortOrder.DESCEND }, kvs: [FOP, FOO1, FOO, B, C, A], count: 6 },
        { name: 'sort by value descending', request: { key: ZERO, rangeEnd: ZERO, sortTarget: SortTarget.VALUE, sortOrder: SortOrder.DESCEND }, kvs: [FOP, FOO1, FOO, B, A, C], count: 6 },
        { name: 'sort by version ascending, with limit', request: { key: ZERO, rangeEnd: ZERO, sortTarget: SortTarget.VERSION, sortOrder: SortOrder.ASCEND, limit: 5 }, kvs: [B, C, FOO, FOO1, FOP], more: true, count: 6 },
        // etcd only fetches everything when sortOrder != NONE, so here it sorts the first limit+1 keys.
        { name: 'target VERSION with order NONE and a limit sorts the first limit+1 keys', request: { key: ZERO, rangeEnd: ZERO, sortTarget: SortTarget.VERSION, limit: 2 }, kvs: [B, C], more: true, count: 6 },
        { name: 'minModRevision filters; count stays the whole range', request: { key: ZERO, rangeEnd: ZERO, minModRevision: 7 }, kvs: [B, FOO, FOO1, FOP], count: 6 },
        { name: 'maxModRevision filters', request: { key: ZERO, rangeEnd: ZERO, maxModRevision: 5 }, kvs: [A, C], count: 6 },
        { name: 'create revision window', request: { key: ZERO, rangeEnd: ZERO, minCreateRevision: 3, maxCreateRevision: 8 }, kvs: [B, C, FOO], count: 6 },
        { name: 'filter then limit', request: { key: ZERO, rangeEnd: ZERO, minModRevision: 5, limit: 2 }, kvs: [A, B], more: true, count: 6 },
        { name: 'bytesMax stops reading once keys and values pass it, and sets more', request: { key: ZERO, rangeEnd: ZERO, bytesMax: 3 }, kvs: [A], more: true, count: 6 },
        { name: 'bytesMax keeps the first key-value even when it alone passes it', request: { key: ZERO, rangeEnd: ZERO, bytesMax: 1 }, kvs: [A], more: true, count: 6 },
        { name: 'bytesMax and limit: the limit first', request: { key: ZERO, rangeEnd: ZERO, bytesMax: 100, limit: 3 }, kvs: [A, B, C], more: true, count: 6 },
      ];
      for (const c of cases) {
        it(c.name, () => {
          const h = rangeFixture();
          const response = h.store.range(c.request);
          assert.deepEqual(response.kvs.map(show), c.kvs);
          assert.equal(response.more, c.more ?? false);
          assert.equal(response.count, c.count);
        });
        it(`${c.name}, into a sink`, () => {
          const h = rangeFixture();
          const sunk: KeyValue[] = [];
          const sink: KeyValueSink = {
            add: (record, keyStart, keyEnd, valueEnd, createRevision, modRevision, version, lease) =>
              sunk.push({ key: record.slice(keyStart, keyEnd), value: record.slice(keyEnd, valueEnd), createRevision, modRevision, version, lease }),
          };
          const response = h.store.range(c.request, sink);
          assert.ok(sunk.length === 0 || response.kvs.length === 0, 'key-values go to the sink or into the answer, not both');
          assert.deepEqual([...sunk, ...response.kvs].map(show), c.kvs);
          assert.equal(response.more, c.more ?? false);
          assert.equal(response.count, c.count);
        });
        it(`${c.name}, read again (from the record cache)`, () => {
          const h = rangeFixture();
          h.store.range({ key: ZERO, rangeEnd: ZERO }); // caches every key's newest record
          h.store.range({ key: ZERO, rangeEnd: ZERO, revision: 4 }); // and older ones
          const response = h.store.range(c.request);
          assert.deepEqual(response.kvs.map(show), c.kvs);
          assert.equal(response.more, c.more ?? false);
          assert.equal(response.count, c.count);
        });
      }

      it('ranges that read the same records again read them from the record cache, within its budget', () => {
        const cache = new RecordCache(1024 * 1024);
        const part = cache.part();
        const h = fresh({ recordCache: part });
        for (let i = 0; i < 1_000; i++) h.put(`k${String(i).padStart(4, '0')}`, 'v'.repeat(400 + (i % 200)));
        const everything = { key: ZERO, rangeEnd: ZERO };
        const first = h.store.range(everything);
        // One range admits a quarter of the budget: 256 KiB of 1,000 records of about 580 B charged each.
        assert.ok(part.size > 300 && part.size < 600, `${part.size} records cached`);
        assert.ok(cache.chargedBytes <= cache.bytesMax);
        assert.deepEqual(h.store.range(everything), first);
        assert.deepEqual(h.store.range({ ...everything, limit: 10 }), { ...first, kvs: first.kvs.slice(0, 10), more: true });
        // The engine's reused read buffer was copied, not kept: records read after it are intact.
        const sunk: string[] = [];
        h.store.range(everything, {
          add: (record, keyStart, keyEnd, valueEnd, createRevision, modRevision, version, lease) =>
            sunk.push(show({ key: record.slice(keyStart, keyEnd), value: record.slice(keyEnd, valueEnd), createRevision, modRevision, version, lease })),
        });
        assert.deepEqual(sunk, first.kvs.map(show));
      });

      it('a store that installs a snapshot forgets the records it cached (the same revisions may hold others)', () => {
        const source = fresh();
        source.put('k', 'theirs'); // revision 2
        const target = fresh();
        target.put('k', 'ours'); // revision 2 too
        assert.deepEqual(target.all(), ['k=ours@2/2/v1']);
        target.store.install(source.store.export());
        assert.deepEqual(target.all(), ['k=theirs@2/2/v1']);
      });

      it('a range into a sink hands over each record as the engine read it, leases included', () => {
        const h = fresh();
        h.ok({ type: 'leaseGrant', request: { TTL: 10, ID: 7 } });
        h.put('a', '', { lease: 7 });
        h.put('b', 'x'.repeat(20_000));
        h.put('a', 'again', { lease: 7 });
        const sunk: string[] = [];
        const response = h.store.range({ key: ZERO, rangeEnd: ZERO }, {
          add: (record, keyStart, keyEnd, valueEnd, createRevision, modRevision, version, lease) =>
            sunk.push(show({ key: record.slice(keyStart, keyEnd), value: record.slice(keyEnd, valueEnd), createRevision, modRevision, version, lease })),
        });
        assert.deepEqual(response, { kvs: [], more: false, count: 2 });
        assert.deepEqual(sunk, h.all());
        assert.deepEqual(sunk[0], 'a=again@2/4/v2/l7');
      });

      it('rejects a future revision', () => {
        const h = rangeFixture();
        const error = throwsLichen(() => h.store.range({ key: b('a'), revision: 11 }), 'FutureRevision', 'futureRevision');
        assert.equal(error.code, 'FutureRevision');
      });

      it('rejects a compacted revision with the compact revision in details, and reads at it', () => {
        const h = rangeFixture();
        h.ok({ type: 'compact', request: { revision: 5 } });
        const error = throwsLichen(() => h.store.range({ key: b('a'), revision: 4 }), 'Compacted', 'compacted');
        assert.equal(error.details.compactRevision, 5);
        assert.deepEqual(h.all(5), ['a=4@2/5/v2', 'b=2@3/3/v1', 'c=3@4/4/v1']);
      });
    });

    describe('put', () => {
      it('creates a key with create = mod = the new revision and version 1', () => {
        const h = fresh();
        const result = h.put('k', 'v', { prevKv: true });
        assert.equal(result.revision, 2);
        assert.deepEqual(result.response, {});
        assert.deepEqual(h.all(), ['k=v@2/2/v1']);
      });

      it('updates keep the create revision, bump version, and return prevKv when asked', () => {
        const h = fresh();
        h.put('k', 'v1');
        const result = h.put('k', 'v2', { prevKv: true });
        assert.equal(result.revision, 3);
        assert.equal(show((result.response as { prevKv: never }).prevKv), 'k=v1@2/2/v1');
        assert.deepEqual(h.all(), ['k=v2@2/3/v2']);
        assert.deepEqual(h.put('k', 'v2').response, {}, 'no prevKv unless asked');
      });

      it('putting the same value again still takes a revision', () => {
        const h = fresh();
        h.put('k', 'v');
        assert.equal(h.put('k', 'v').revision, 3);
      });

      it('a delete resets version and create revision (new generation)', () => {
        const h = fresh();
        h.put('k', 'v1');
        h.put('k', 'v2');
        h.del('k');
        h.put('k', 'v3');
        assert.deepEqual(h.all(), ['k=v3@5/5/v1']);
      });

      it('ignoreValue keeps the value and ignoreLease keeps the lease', () => {
        const h = fresh();
        h.ok({ type: 'leaseGrant', request: { ID: 7, TTL: 60 } });
        h.put('k', 'v', { lease: 7 });
        h.ok({ type: 'put', request: { key: b('k'), ignoreValue: true, lease: 0 } });
        assert.deepEqual(h.all(), ['k=v@2/3/v2']);
        h.put('k', 'w', { lease: 7 });
        h.ok({ type: 'put', request: { key: b('k'), value: b('x'), ignoreLease: true } });
        assert.deepEqual(h.all(), ['k=x@2/5/v4/l7']);
      });

      const errorCases: { name: string; request: Command; code: string; etcdError: EtcdErrorName }[] = [
        { name: 'ignoreValue on a missing key', request: { type: 'put', request: { key: b('nope'), ignoreValue: true } }, code: 'InvalidArgument', etcdError: 'keyNotFound' },
        { name: 'ignoreLease on a missing key', request: { type: 'put', request: { key: b('nope'), value: b('v'), ignoreLease: true } }, code: 'InvalidArgument', etcdError: 'keyNotFound' },
        { name: 'ignoreValue with a value', request: { type: 'put', request: { key: b('k'), value: b('v'), ignoreValue: true } }, code: 'InvalidArgument', etcdError: 'valueProvided' },
        { name: 'ignoreLease with a lease', request: { type: 'put', request: { key: b('k'), value: b('v'), lease: 5, ignoreLease: true } }, code: 'InvalidArgument', etcdError: 'leaseProvided' },
        { name: 'a lease that does not exist', request: { type: 'put', request: { key: b('k'), value: b('v'), lease: 99 } }, code: 'LeaseNotFound', etcdError: 'leaseNotFound' },
      ];
      for (const c of errorCases) {
        it(`fails without a new revision: ${c.name}`, () => {
          const h = fresh();
          h.put('k', 'v');
          const result = h.apply(c.request);
          expectError(result, c.code, c.etcdError);
          assert.equal(result.revision, 2);
          assert.equal(h.store.currentRevision, 2);
          assert.equal(h.store.appliedIndex, h.index, 'an error still advances the applied index');
          assert.deepEqual(h.all(), ['k=v@2/2/v1']);
        });
      }

      it('emits a PUT event with the previous value', () => {
        const h = fresh();
        h.put('k', 'v1');
        const { events } = h.put('k', 'v2');
        assert.equal(events.length, 1);
        assert.equal(events[0]!.type, 0);
        assert.equal(show(events[0]!.kv), 'k=v2@2/3/v2');
        assert.equal(show(events[0]!.prevKv), 'k=v1@2/2/v1');
      });
    });

    describe('deleteRange', () => {
      it('deletes one key at a new revision', () => {
        const h = fresh();
        h.put('a', '1');
        const result = h.del('a');
        assert.equal(result.revision, 3);
        assert.deepEqual(result.response, { deleted: 1, prevKvs: [] });
        assert.deepEqual(h.all(), []);
        assert.deepEqual(h.all(2), ['a=1@2/2/v1']);
      });

      it('deleting nothing does not take a revision', () => {
        const h = fresh();
        h.put('a', '1');
        const result = h.del('b');
        assert.equal(result.revision, 2);
        assert.deepEqual(result.response, { deleted: 0, prevKvs: [] });
        assert.deepEqual(result.events, []);
        assert.equal(h.store.currentRevision, 2);
      });

      it('deletes a range at ONE revision with prevKvs and DELETE events', () => {
        const h = fresh();
        for (const key of ['p/1', 'p/2', 'p/3', 'q']) h.put(key, key);
        const result = h.ok({ type: 'deleteRange', request: { key: b('p/'), rangeEnd: b('p0'), prevKv: true } });
        assert.equal(result.revision, 6);
        const response = result.response as { deleted: number; prevKvs: never[] };
        assert.equal(response.deleted, 3);
        assert.deepEqual(response.prevKvs.map(show), ['p/1=p/1@2/2/v1', 'p/2=p/2@3/3/v1', 'p/3=p/3@4/4/v1']);
        assert.deepEqual(
          result.events.map((e) => [e.type, s(e.kv.key), e.kv.modRevision, e.kv.version, show(e.prevKv)]),
          [
            [1, 'p/1', 6, 0, 'p/1=p/1@2/2/v1'],
            [1, 'p/2', 6, 0, 'p/2=p/2@3/3/v1'],
            [1, 'p/3', 6, 0, 'p/3=p/3@4/4/v1'],
          ],
        );
        assert.deepEqual(h.all(), ['q=q@5/5/v1']);
      });

      /**
       * Distinct keys of 3 to 300 bytes (both widths of a tombstone's key-length varint) with
       * bytes above 0x7f: more than one engine write of tombstones.
       */
      const manyKeys = (count: number): Uint8Array[] =>
        Array.from({ length: count }, (_, i) => {
          const key = new Uint8Array(3 + ((i * 131) % 298));
          for (let j = 3; j < key.length; j++) key[j] = (i * 7 + j * 13) & 0xff;
          key.set([0x70, (i >> 8) & 0xff, i & 0xff]); // 'p', then the number
          return key;
        });

      /** The engine with a count of the top-level batches and of the writes made outside one. */
      const watched = (engine: Engine): { engine: Engine; seen: { batches: number; writesOutside: number } } => {
        const seen = { batches: 0, writesOutside: 0 };
        let depth = 0;
        const proxy = new Proxy(engine, {
          get(target, property) {
            if (property === 'batch') {
              return <T>(fn: () => T, options?: Parameters<Engine['batch']>[1]): T => {
                if (depth++ === 0) seen.batches++;
                try {
                  return target.batch(fn, options);
                } finally {
                  depth--;
                }
              };
            }
            if (property === 'write') {
              return (ops: Parameters<Engine['write']>[0]) => {
                if (depth === 0) seen.writesOutside++;
                target.write(ops);
              };
            }
            const value = Reflect.get(target, property, target) as unknown;
            return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
          },
        });
        return { engine: proxy, seen };
      };

      it('a delete of more keys than one engine write takes is one engine batch, and reopening rebuilds what it left', () => {
        const { engine, seen } = watched(freshEngine());
        const h = Harness.open(engine);
        h.ok({ type: 'leaseGrant', request: { ID: 5, TTL: 60 } });
        const keys = manyKeys(2500);
        keys.forEach((key, i) => h.ok({ type: 'put', request: { key, value: b(`v${i}`), lease: i % 3 === 0 ? 5 : 0 } }));
        h.put('q', 'outside');
        const before = h.store.range({ key: b('p'), rangeEnd: b('q') });
        assert.equal(before.count, keys.length);
        seen.batches = 0;
        seen.writesOutside = 0;
        const result = h.ok({ type: 'deleteRange', request: { key: b('p'), rangeEnd: b('q'), prevKv: true } });
        assert.equal(seen.batches + seen.writesOutside, 1, 'the command is one engine write or one batch, so a crash keeps all of it or none');
        const revision = h.store.currentRevision;
        assert.equal(result.revision, revision);
        assert.deepEqual(result.response, { deleted: keys.length, prevKvs: before.kvs });
        assert.deepEqual(
          result.events.map((e) => [e.type, s(e.kv.key), e.kv.modRevision, e.kv.createRevision, e.kv.version, e.kv.lease, e.kv.value.length, show(e.prevKv)]),
          before.kvs.map((kv) => [1, s(kv.key), revision, 0, 0, 0, 0, show(kv)]),
        );
        assert.ok(result.events.every((e) => e.kv.key instanceof Uint8Array && !Buffer.isBuffer(e.kv.key)), 'event keys are plain byte arrays');
        assert.deepEqual(h.all(), ['q=outside@2502/2502/v1']);
        assert.deepEqual(h.store.lease(5)?.keys, [], 'the deleted keys left their lease');
        const reopened = MvccStore.open(engine);
        assert.deepEqual(reopened.hashKV(), h.store.hashKV());
        assert.deepEqual(reopened.lease(5), h.store.lease(5));
        for (const at of [revision - 1, revision]) {
          assert.deepEqual(reopened.range({ key: ZERO, rangeEnd: ZERO, revision: at }), h.store.range({ key: ZERO, rangeEnd: ZERO, revision: at }));
        }
        // The index holds the tombstones: a put after the delete is a new key's first version.
        const again = h.ok({ type: 'put', request: { key: keys[7]!, value: b('back') } });
        assert.deepEqual(h.store.range({ key: keys[7]! }).kvs.map((kv) => [kv.createRevision, kv.version]), [[again.revision, 1]]);
      });

      it('a lease revoke of many keys writes what a delete of them writes, with prevKv in events while a watcher wants it', () => {
        const revoked = fresh();
        const deleted = fresh();
        revoked.store.countPrevKvWatchers(1);
        deleted.store.countPrevKvWatchers(1);
        const keys = manyKeys(1500);
        for (const h of [revoked, deleted]) {
          h.ok({ type: 'leaseGrant', request: { ID: 8, TTL: 60 } });
          keys.forEach((key, i) => h.ok({ type: 'put', request: { key, value: b(`v${i}`), lease: 8 } }));
        }
        assert.equal(revoked.store.hasLease(8), true);
        const byRevoke = revoked.ok({ type: 'leaseRevoke', id: 8 });
        const byDelete = deleted.ok({ type: 'deleteRange', request: { key: b('p'), rangeEnd: b('q') } });
        deleted.ok({ type: 'leaseRevoke', id: 8 });
        assert.equal(byRevoke.events.length, keys.length);
        assert.deepEqual(byRevoke.events.map((e) => [s(e.kv.key), e.kv.modRevision, show(e.prevKv)]), byDelete.events.map((e) => [s(e.kv.key), e.kv.modRevision, show(e.prevKv)]));
        assert.ok(byRevoke.events.every((e) => e.prevKv !== undefined && e.prevKv.lease === 8));
        assert.deepEqual(revoked.store.hashKV(), deleted.store.hashKV());
        assert.equal(revoked.store.lease(8), undefined);
        assert.equal(revoked.store.hasLease(8), false);
      });

      it("deletes every key from key on with rangeEnd '\\0'", () => {
        const h = fresh();
        for (const key of ['a', 'b', 'c']) h.put(key, key);
        assert.deepEqual((h.del('b', '\0').response as { deleted: number }).deleted, 2);
        assert.deepEqual(h.all(), ['a=a@2/2/v1']);
      });
    });

    describe('txn', () => {
      const cmp = (key: string, target: CompareTarget, result: CompareResult, value: number | string, rangeEnd?: string): Compare => {
        const compare: Compare = { key: b(key), target, result, rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd) };
        if (target === CompareTarget.VALUE) compare.value = b(value as string);
        else if (target === CompareTarget.VERSION) compare.version = value as number;
        else if (target === CompareTarget.CREATE) compare.createRevision = value as number;
        else if (target === CompareTarget.MOD) compare.modRevision = value as number;
        else compare.lease = value as number;
        return compare;
      };
      const put = (key: string, value: string): RequestOp => ({ requestPut: { key: b(key), value: b(value) } });
      const del = (key: string, rangeEnd?: string): RequestOp => ({ requestDeleteRange: { key: b(key), rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd) } });
      const get = (key: string): RequestOp => ({ requestRange: { key: b(key) } });
      const { EQUAL, GREATER, LESS, NOT_EQUAL } = CompareResult;
      const { VERSION, CREATE, MOD, VALUE, LEASE } = CompareTarget;

      /** Fixture: a=1 (create 2, mod 4, version 2, lease 5), b=2 (create 3, mod 3). */
      const txnFixture = (): Harness => {
        const h = fresh();
        h.ok({ type: 'leaseGrant', request: { ID: 5, TTL: 60 } });
        h.put('a', '0');
        h.put('b', '2');
        h.put('a', '1', { lease: 5 });
        return h;
      };
      const compareCases: { name: string; compare: Compare[]; succeeded: boolean }[] = [
        { name: 'version equal', compare: [cmp('a', VERSION, EQUAL, 2)], succeeded: true },
        { name: 'version greater (false)', compare: [cmp('a', VERSION, GREATER, 2)], succeeded: false },
        { name: 'create less', compare: [cmp('a', CREATE, LESS, 3)], succeeded: true },
        { name: 'mod not equal', compare: [cmp('a', MOD, NOT_EQUAL, 4)], succeeded: false },
        { name: 'value equal', compare: [cmp('b', VALUE, EQUAL, '2')], succeeded: true },
        { name: 'value greater (byte order)', compare: [cmp('b', VALUE, GREATER, '10')], succeeded: true },
        { name: 'lease equal', compare: [cmp('a', LEASE, EQUAL, 5)], succeeded: true },
        { name: 'a missing key has version 0', compare: [cmp('zz', VERSION, EQUAL, 0)], succeeded: true },
        { name: 'a missing key has create revision 0', compare: [cmp('zz', CREATE, EQUAL, 0)], succeeded: true },
        { name: 'a value compare on a missing key fails', compare: [cmp('zz', VALUE, NOT_EQUAL, 'x')], succeeded: false },
        { name: 'all compares must hold', compare: [cmp('a', VERSION, EQUAL, 2), cmp('b', VERSION, EQUAL, 2)], succeeded: false },
        { name: 'a range compare holds for every key', compare: [cmp('a', VERSION, GREATER, 0, 'c')], succeeded: true },
        { name: 'a range compare fails if one key fails', compare: [cmp('a', MOD, LESS, 4, 'c')], succeeded: false },
        { name: 'a range compare over no keys compares a zero kv', compare: [cmp('x', CREATE, EQUAL, 0, 'y')], succeeded: true },
        { name: 'no compares succeed', compare: [], succeeded: true },
      ];
      for (const c of compareCases) {
        it(`compare: ${c.name}`, () => {
          const h = txnFixture();
          const result = h.ok({ type: 'txn', request: { compare: c.compare, success: [get('a')], failure: [get('b')] } });
          const response = result.response as TxnResponse;
          assert.equal(response.succeeded, c.succeeded);
          const ranged = response.responses[0]!;
          assert.ok('responseRange' in ranged);
          assert.equal(s(ranged.responseRange.kvs[0]!.key), c.succeeded ? 'a' : 'b');
          assert.equal(result.revision, 4, 'a read-only txn keeps the revision');
        });
      }

      it('writes every op of a txn at ONE revision with sub revisions, and reads its own writes', () => {
        const h = txnFixture();
        const result = h.ok({
          type: 'txn',
          request: { compare: [], success: [put('x', '1'), put('y', '2'), del('b'), get('x')], failure: [] },
        });
        assert.equal(result.revision, 5);
        assert.deepEqual(result.events.map((e) => `${e.type}:${s(e.kv.key)}@${e.kv.modRevision}`), ['0:x@5', '0:y@5', '1:b@5']);
        const responses = (result.response as TxnResponse).responses;
        const last = responses[3]!;
        assert.ok('responseRange' in last);
        assert.deepEqual(last.responseRange.kvs.map(show), ['x=1@5/5/v1']);
        assert.deepEqual(h.all(), ['a=1@2/4/v2/l5', 'x=1@5/5/v1', 'y=2@5/5/v1']);
        assert.deepEqual(h.all(4), ['a=1@2/4/v2/l5', 'b=2@3/3/v1']);
      });

      it('runs the failure branch when a compare fails', () => {
        const h = txnFixture();
        const result = h.ok({ type: 'txn', request: { compare: [cmp('a', VALUE, EQUAL, 'nope')], success: [put('s', '1')], failure: [put('f', '1')] } });
        assert.equal((result.response as TxnResponse).succeeded, false);
        assert.deepEqual(h.all().map((kv) => kv.split('=')[0]), ['a', 'b', 'f']);
      });

      it('nested txns run inside the same revision and evaluate compares before the txn writes', () => {
        const h = txnFixture();
        // etcd evaluates every compare on the path against the state before the txn, so the
        // nested compare sees k as missing even though the outer txn put it first.
        const result = h.ok({
          type: 'txn',
          request: {
            compare: [],
            success: [
              put('k', '1'),
              { requestTxn: { compare: [cmp('k', VERSION, EQUAL, 0)], success: [put('nested', 'then')], failure: [put('nested', 'else')] } },
            ],
            failure: [],
          },
        });
        const response = result.response as TxnResponse;
        const nested = response.responses[1]!;
        assert.ok('responseTxn' in nested);
        assert.equal(nested.responseTxn.succeeded, true);
        assert.equal(result.revision, 5);
        assert.deepEqual(h.all(), ['a=1@2/4/v2/l5', 'b=2@3/3/v1', 'k=1@5/5/v1', 'nested=then@5/5/v1']);
      });

      const duplicateCases: { name: string; ops: RequestOp[]; duplicate: boolean }[] = [
        { name: 'one key put twice', ops: [put('k', '1'), put('k', '2')], duplicate: true },
        { name: 'a put inside a deleted range', ops: [del('a', 'z'), put('k', '2')], duplicate: true },
        { name: 'a put of a deleted key', ops: [put('k', '1'), del('k')], duplicate: true },
        { name: 'a nested put of an outer key', ops: [put('k', '1'), { requestTxn: { compare: [], success: [put('k', '2')], failure: [] } }], duplicate: true },
        { name: 'then and else putting one key (only one runs)', ops: [{ requestTxn: { compare: [], success: [put('k', '1')], failure: [put('k', '2')] } }], duplicate: false },
        { name: 'two overlapping deletes', ops: [del('a', 'z'), del('k')], duplicate: false },
        { name: 'different keys', ops: [put('k', '1'), put('l', '2'), del('m')], duplicate: false },
      ];
      for (const c of duplicateCases) {
        it(`duplicate keys: ${c.name} ${c.duplicate ? 'is rejected' : 'is allowed'}`, () => {
          const h = txnFixture();
          const result = h.apply({ type: 'txn', request: { compare: [], success: c.ops, failure: [] } });
          if (c.duplicate) {
            expectError(result, 'DuplicateKey', 'duplicateKey');
            assert.equal(h.store.currentRevision, 4);
          } else {
            assert.ok(!('error' in result));
          }
        });
      }

      it('checks put leases only on the branch that runs', () => {
        const h = txnFixture();
        const bad: RequestOp = { requestPut: { key: b('k'), value: b('v'), lease: 404 } };
        const ok = h.apply({ type: 'txn', request: { compare: [cmp('a', VERSION, EQUAL, 2)], success: [put('s', '1')], failure: [bad] } });
        assert.ok(!('error' in ok));
        const failed = h.apply({ type: 'txn', request: { compare: [], success: [put('x', '1'), bad], failure: [] } });
        expectError(failed, 'LeaseNotFound', 'leaseNotFound');
        assert.deepEqual(h.store.range({ key: b('x') }).kvs, [], 'nothing of the failed txn applied');
      });

      it('a txn whose only write deletes nothing keeps the revision', () => {
        const h = txnFixture();
        const result = h.ok({ type: 'txn', request: { compare: [], success: [del('nothing'), get('a')], failure: [] } });
        assert.equal(result.revision, 4);
        assert.equal(h.store.currentRevision, 4);
      });

      it('a read-only txn (ranges only, nested too) answers exactly as the applied txn would, without an apply', () => {
        const requests = [
          { compare: [cmp('a', VERSION, EQUAL, 2)], success: [get('a'), get('b')], failure: [get('zzz')] },
          { compare: [cmp('a', VALUE, EQUAL, 'nope')], success: [get('a')], failure: [{ requestTxn: { compare: [cmp('b', MOD, EQUAL, 3)], success: [get('b')], failure: [] } }] },
          { compare: [], success: [{ requestRange: { key: b('a'), rangeEnd: Uint8Array.of(0), revision: 2 } }], failure: [] },
        ];
        for (const request of requests) {
          const h = txnFixture();
          const appliedBefore = h.store.appliedIndex;
          const read = h.store.readTxn(request);
          assert.equal(h.store.appliedIndex, appliedBefore);
          assert.equal(h.store.currentRevision, 4);
          const applied = h.ok({ type: 'txn', request });
          assert.deepEqual(read, applied.response);
        }
      });

      it('isReadOnlyTxn accepts only txns whose every op, in both branches and nested txns, is a range', () => {
        assert.equal(isReadOnlyTxn({ compare: [], success: [get('a')], failure: [get('b')] }), true);
        assert.equal(isReadOnlyTxn({ compare: [], success: [], failure: [] }), true);
        assert.equal(isReadOnlyTxn({ compare: [], success: [get('a')], failure: [put('b', '1')] }), false);
        assert.equal(isReadOnlyTxn({ compare: [], success: [{ requestTxn: { compare: [], success: [del('x')], failure: [] } }], failure: [] }), false);
        assert.equal(isReadOnlyTxn({ compare: [], success: [{ requestTxn: { compare: [], success: [get('x')], failure: [] } }], failure: [] }), true);
        const serializableGet: RequestOp = { requestRange: { key: b('a'), serializable: true } };
        assert.equal(isSerializableTxn({ compare: [], success: [serializableGet], failure: [] }), true);
        assert.equal(isSerializableTxn({ compare: [], success: [serializableGet], failure: [get('b')] }), false);
        assert.throws(() => fresh().store.readTxn({ compare: [], success: [put('a', '1')], failure: [] }));
      });
    });

    describe('compact', () => {
      it('removes old versions physically, keeps the newest of each key, and keeps reads at or after it', () => {
        const h = fresh();
        h.put('a', '1'); // 2
        h.put('a', '2'); // 3
        h.put('b', '1'); // 4
        h.del('b'); // 5
        h.put('c', '1'); // 6
        h.put('a', '3'); // 7
        const before = [...h.engine.range({ start: b('r'), end: b('s') })].length;
        h.ok({ type: 'compact', request: { revision: 5 } });
        const after = [...h.engine.range({ start: b('r'), end: b('s') })].length;
        // Dropped: a@2 (a@3 is newest at 5), b@4 and b's tombstone @5.
        assert.equal(before - after, 3);
        assert.equal(h.store.compactRevision, 5);
        assert.deepEqual(h.all(5), ['a=2@2/3/v2']);
        assert.deepEqual(h.all(6), ['a=2@2/3/v2', 'c=1@6/6/v1']);
        assert.deepEqual(h.all(), ['a=3@2/7/v3', 'c=1@6/6/v1']);
        assert.equal(h.store.keyCount, 2, 'a key deleted at or before the compact revision leaves the index');
        h.put('b', 'again');
        assert.deepEqual(h.store.range({ key: b('b') }).kvs.map(show), ['b=again@8/8/v1']);
      });

      const errorCases = [
        { name: 'at the compact revision', revision: 3, code: 'Compacted', etcdError: 'compacted' },
        { name: 'below the compact revision', revision: 2, code: 'Compacted', etcdError: 'compacted' },
        { name: 'above the current revision', revision: 6, code: 'FutureRevision', etcdError: 'futureRevision' },
      ] as const;
      for (const c of errorCases) {
        it(`refuses to compact ${c.name}`, () => {
          const h = fresh();
          for (let i = 0; i < 4; i++) h.put('k', `${i}`);
          h.ok({ type: 'compact', request: { revision: 3 } });
          const error = expectError(h.apply({ type: 'compact', request: { revision: c.revision } }), c.code, c.etcdError);
          if (c.code === 'Compacted') assert.equal(error.details.compactRevision, 3);
        });
      }

      it('history reads, hashes and event scans below the compact revision fail with Compacted', () => {
        const h = fresh();
        for (let i = 0; i < 4; i++) h.put('k', `${i}`);
        h.ok({ type: 'compact', request: { revision: 4 } });
        throwsLichen(() => h.store.hashKV(3), 'Compacted', 'compacted');
        throwsLichen(() => h.store.eventsSince(3, b('k')), 'Compacted', 'compacted');
        assert.deepEqual(h.store.eventsSince(4, b('k')).map((e) => e.kv.modRevision), [4, 5]);
      });
    });

    describe('what the key index keeps of each key (create revision, version, lease)', () => {
      /** The engine, counting reads of revision records. */
      const countingRecordReads = (engine: Engine): { engine: Engine; reads: () => number } => {
        let reads = 0;
        const counting = new Proxy(engine, {
          get(target, property) {
            if (property === 'get') {
              return (key: Uint8Array) => {
                if (key[0] === PREFIX_REVISION) reads++;
                return target.get(key);
              };
            }
            const value = Reflect.get(target, property) as unknown;
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
        return { engine: counting, reads: () => reads };
      };

      it('a put reads no record of the previous version unless prevKv, ignore_value or a prevKv watcher needs it', () => {
        const counted = countingRecordReads(freshEngine());
        const h = Harness.open(counted.engine);
        h.store.countPrevKvWatchers(0); // as a watch hub does: no watcher wants prevKv
        h.ok({ type: 'leaseGrant', request: { ID: 7, TTL: 60 } });
        h.put('k', 'v1'); // 2
        h.put('k', 'v2', { lease: 7 }); // 3
        h.ok({ type: 'put', request: { key: b('k'), value: b('v3'), ignoreLease: true } }); // 4
        const { events } = h.put('k', 'v4'); // 5: detaches the lease
        assert.equal(counted.reads(), 0);
        assert.equal(events[0]!.prevKv, undefined, 'no prevKv in events while no watcher wants it');
        assert.deepEqual(h.store.lease(7)?.keys, []);
        assert.equal(show(h.store.range({ key: b('k'), keysOnly: true }).kvs[0]), 'k=@2/5/v4');
        assert.equal(counted.reads(), 0, 'a keys-only range of the newest versions reads no record');

        assert.equal(show((h.put('k', 'v5', { prevKv: true }).response as { prevKv: never }).prevKv), 'k=v4@2/5/v4');
        assert.equal(counted.reads(), 1);
        h.ok({ type: 'put', request: { key: b('k'), ignoreValue: true } });
        assert.equal(counted.reads(), 2);
        h.store.countPrevKvWatchers(1);
        assert.equal(show(h.put('k', 'v6').events[0]!.prevKv), 'k=v5@2/7/v6');
        assert.equal(counted.reads(), 3);
        h.store.countPrevKvWatchers(-1);
        assert.equal(h.put('k', 'v7').events[0]!.prevKv, undefined);
        assert.equal(counted.reads(), 3);
        assert.deepEqual(h.all(), ['k=v7@2/9/v8']);
      });

      it('a delete range and a lease revoke read no record unless prevKv or a prevKv watcher needs it', () => {
        const counted = countingRecordReads(freshEngine());
        const h = Harness.open(counted.engine);
        h.store.countPrevKvWatchers(0);
        h.ok({ type: 'leaseGrant', request: { ID: 7, TTL: 60 } });
        for (const name of ['a1', 'a2', 'a3', 'b1', 'b2']) h.put(name, `v-${name}`, { lease: name.startsWith('b') ? 7 : 0 });
        const deleted = h.ok({ type: 'deleteRange', request: { key: b('a'), rangeEnd: b('b') } });
        assert.equal((deleted.response as { deleted: number }).deleted, 3);
        assert.deepEqual(deleted.events.map((e) => [s(e.kv.key), e.type, e.prevKv]), [['a1', 1, undefined], ['a2', 1, undefined], ['a3', 1, undefined]]);
        const revoked = h.ok({ type: 'leaseRevoke', id: 7 });
        assert.deepEqual(revoked.events.map((e) => s(e.kv.key)), ['b1', 'b2']);
        assert.equal(counted.reads(), 0);
        assert.deepEqual(h.all(), []);

        for (const name of ['c1', 'c2']) h.put(name, `v-${name}`);
        const withPrevKv = h.ok({ type: 'deleteRange', request: { key: b('c1'), prevKv: true } });
        assert.deepEqual((withPrevKv.response as { prevKvs: never[] }).prevKvs.map(show), ['c1=v-c1@9/9/v1']);
        assert.equal(counted.reads(), 1);
        h.store.countPrevKvWatchers(1);
        const watched = h.ok({ type: 'deleteRange', request: { key: b('c2') } });
        assert.equal(show(watched.events[0]!.prevKv!), 'c2=v-c2@10/10/v1');
        assert.equal(counted.reads(), 2);
      });

      it('versions and create revisions go on across compaction, and a delete starts them again', () => {
        const h = fresh();
        h.ok({ type: 'leaseGrant', request: { ID: 7, TTL: 60 } });
        h.put('k', 'v1', { lease: 7 }); // 2
        h.put('k', 'v2', { lease: 7 }); // 3
        h.put('k', 'v3', { lease: 7 }); // 4
        h.ok({ type: 'compact', request: { revision: 4 } });
        h.ok({ type: 'put', request: { key: b('k'), value: b('v4'), ignoreLease: true } }); // 5
        assert.deepEqual(h.all(), ['k=v4@2/5/v4/l7']);
        const reopened = new Harness(MvccStore.open(h.engine), h.engine);
        reopened.index = h.index;
        reopened.put('k', 'v5'); // 6: detaches the lease
        assert.deepEqual(reopened.all(), ['k=v5@2/6/v5']);
        assert.deepEqual(reopened.store.lease(7)?.keys, []);
        reopened.del('k'); // 7
        reopened.put('k', 'v6'); // 8
        assert.deepEqual(reopened.all(), ['k=v6@8/8/v1']);
      });

      it('answers keys-only ranges and compares exactly as the records do, live and after a reopen (random commands)', () => {
        const commands = randomCommands(3, 600);
        const live = fresh();
        const reopenedEngine = freshEngine();
        let reopened = Harness.open(reopenedEngine);
        for (const [i, command] of commands.entries()) {
          live.apply(command);
          reopened.apply(command);
          if (i === 300) {
            // The index rebuilt from the records must give the next puts the same versions.
            const index = reopened.index;
            reopened = Harness.open(reopenedEngine);
            assert.equal(reopened.index, index);
          }
        }
        assert.deepEqual(reopened.store.hashKV(), live.store.hashKV(), 'seed 3');
        for (const h of [live, reopened]) {
          const everything = { key: ZERO, rangeEnd: ZERO };
          for (let revision = h.store.compactRevision; revision <= h.store.currentRevision; revision++) {
            const full = h.store.range({ ...everything, revision }).kvs.map((kv) => show({ ...kv, value: new Uint8Array(0) }));
            assert.deepEqual(h.store.range({ ...everything, revision, keysOnly: true }).kvs.map(show), full, `revision ${revision}`);
          }
          for (const kv of h.store.range(everything).kvs) {
            const holds = (target: CompareTarget, field: Partial<Compare>, result: CompareResult = CompareResult.EQUAL): boolean =>
              h.store.readTxn({ compare: [{ key: kv.key, target, result, ...field }], success: [], failure: [] }).succeeded;
            assert.ok(holds(CompareTarget.CREATE, { createRevision: kv.createRevision }), show(kv));
            assert.ok(holds(CompareTarget.MOD, { modRevision: kv.modRevision }), show(kv));
            assert.ok(holds(CompareTarget.VERSION, { version: kv.version }), show(kv));
            assert.ok(holds(CompareTarget.LEASE, { lease: kv.lease }), show(kv));
            assert.ok(!holds(CompareTarget.VERSION, { version: kv.version }, CompareResult.NOT_EQUAL), show(kv));
            assert.ok(holds(CompareTarget.VALUE, { value: kv.value }), show(kv));
          }
        }
      });
    });

    describe('leases', () => {
      it('grants with a given id, refuses it twice, and lists leases', () => {
        const h = fresh();
        assert.deepEqual(h.ok({ type: 'leaseGrant', request: { ID: 42, TTL: 30 } }).response, { ID: 42, TTL: 30 });
        expectError(h.apply({ type: 'leaseGrant', request: { ID: 42, TTL: 30 } }), 'LeaseExists', 'leaseExists');
        assert.equal(h.store.currentRevision, 1, 'granting does not change the revision');
        assert.deepEqual(h.store.leases(), [{ ID: 42, grantedTTL: 30 }]);
      });

      it('picks the id for ID 0 from the raft index, identically on every replica', () => {
        const one = fresh();
        const two = fresh();
        const first = one.ok({ type: 'leaseGrant', request: { TTL: 10 } }).response as { ID: number };
        const second = two.ok({ type: 'leaseGrant', request: { TTL: 10, ID: 0 } }).response as { ID: number };
        assert.equal(first.ID, leaseIdFromIndex(1));
        assert.equal(first.ID, second.ID);
        assert.ok(first.ID > 0 && Number.isSafeInteger(first.ID));
        assert.notEqual(leaseIdFromIndex(2), leaseIdFromIndex(1));
      });

      it('applies the minimum TTL', () => {
        const h = fresh({ minLeaseTtlSeconds: 5 });
        assert.deepEqual(h.ok({ type: 'leaseGrant', request: { ID: 1, TTL: 1 } }).response, { ID: 1, TTL: 5 });
        const plain = fresh();
        assert.deepEqual(plain.ok({ type: 'leaseGrant', request: { ID: 2, TTL: 0 } }).response, { ID: 2, TTL: 1 }, 'at least one second');
      });

      it('attaches keys, detaches keys re-put without the lease, and revokes the rest at ONE revision', () => {
        const h = fresh();
        h.ok({ type: 'leaseGrant', request: { ID: 9, TTL: 60 } });
        h.put('x', '1', { lease: 9 });
        h.put('y', '1', { lease: 9 });
        h.put('z', '1', { lease: 9 });
        h.put('y', '2'); // detaches y
        assert.deepEqual(h.store.lease(9)?.keys.map(s), ['x', 'z']);
        const result = h.ok({ type: 'leaseRevoke', id: 9 });
        assert.equal(result.revision, 6);
        assert.deepEqual(result.events.map((e) => `${e.type}:${s(e.kv.key)}@${e.kv.modRevision}`), ['1:x@6', '1:z@6']);
        assert.deepEqual(h.all(), ['y=2@3/5/v2']);
        assert.equal(h.store.lease(9), undefined);
        expectError(h.apply({ type: 'leaseRevoke', id: 9 }), 'LeaseNotFound', 'leaseNotFound');
      });

      it('revoking a lease without keys keeps the revision', () => {
        const h = fresh();
        h.ok({ type: 'leaseGrant', request: { ID: 3, TTL: 60 } });
        assert.equal(h.ok({ type: 'leaseRevoke', id: 3 }).revision, 1);
      });

      it('a deleted key leaves its lease', () => {
        const h = fresh();
        h.ok({ type: 'leaseGrant', request: { ID: 3, TTL: 60 } });
        h.put('x', '1', { lease: 3 });
        h.del('x');
        assert.deepEqual(h.store.lease(3)?.keys, []);
      });
    });

    describe('alarms', () => {
      const NOSPACE = AlarmType.NOSPACE;
      const CORRUPT = AlarmType.CORRUPT;
      const activate = (h: Harness, memberId: number, alarm: AlarmType) => h.ok({ type: 'alarmActivate', memberId, alarm }).response;
      const deactivate = (h: Harness, memberId: number, alarm: AlarmType) => h.ok({ type: 'alarmDeactivate', memberId, alarm }).response;

      it('keys alarms by member and type, lists them by type then member, and clears one at a time (as etcd)', () => {
        const h = fresh();
        assert.deepEqual(activate(h, 7, CORRUPT), { alarms: [{ memberId: 7, alarm: CORRUPT }] });
        assert.deepEqual(activate(h, 9, NOSPACE), { alarms: [{ memberId: 9, alarm: NOSPACE }] });
        assert.deepEqual(activate(h, 0, NOSPACE), { alarms: [{ memberId: 0, alarm: NOSPACE }] });
        assert.deepEqual(activate(h, 9, NOSPACE), { alarms: [{ memberId: 9, alarm: NOSPACE }] }, 'raising twice answers the alarm again');
        assert.deepEqual(activate(h, 9, AlarmType.NONE), { alarms: [] }, 'NONE is not an alarm (etcd 3.5 ignores it)');
        assert.deepEqual(h.store.alarms(), [
          { memberId: 0, alarm: NOSPACE },
          { memberId: 9, alarm: NOSPACE },
          { memberId: 7, alarm: CORRUPT },
        ]);
        assert.deepEqual(h.store.alarms(CORRUPT), [{ memberId: 7, alarm: CORRUPT }]);
        assert.deepEqual(deactivate(h, 0, CORRUPT), { alarms: [] }, 'member 0 is a key of its own, not "every member"');
        assert.deepEqual(deactivate(h, 9, NOSPACE), { alarms: [{ memberId: 9, alarm: NOSPACE }] });
        assert.deepEqual(deactivate(h, 9, NOSPACE), { alarms: [] });
        assert.equal(h.store.currentRevision, 1, 'alarms do not move the revision');
      });

      it('NOSPACE refuses puts, txns with a put (nested too) and lease grants; reads, deletes, compaction and revokes go on', () => {
        const h = fresh();
        h.put('a', '1');
        const { response } = h.ok({ type: 'leaseGrant', request: { TTL: 60, ID: 5 } });
        assert.deepEqual(response, { ID: 5, TTL: 60 });
        activate(h, 3, NOSPACE);
        expectError(h.apply({ type: 'put', request: { key: b('b'), value: b('2') } }), 'NoSpace', 'noSpace');
        expectError(h.apply({ type: 'leaseGrant', request: { TTL: 60 } }), 'NoSpace', 'noSpace');
        const nested: RequestOp = { requestTxn: { compare: [], success: [], failure: [{ requestPut: { key: b('c'), value: b('3') } }] } };
        expectError(h.apply({ type: 'txn', request: { compare: [], success: [nested], failure: [] } }), 'NoSpace', 'noSpace');
        const deleting = h.ok({ type: 'txn', request: { compare: [], success: [{ requestDeleteRange: { key: b('a') } }], failure: [] } });
        assert.equal((deleting.response as TxnResponse).succeeded, true);
        h.ok({ type: 'compact', request: { revision: h.store.currentRevision } });
        h.ok({ type: 'leaseRevoke', id: 5 });
        assert.deepEqual(h.all(), []);
        deactivate(h, 3, NOSPACE);
        h.put('b', '2');
        assert.deepEqual(h.all(), ['b=2@4/4/v1']);
      });

      it('CORRUPT refuses every write, compaction and lease call, but not reads nor the alarm commands', () => {
        const h = fresh();
        h.put('a', '1');
        activate(h, 4, CORRUPT);
        const refused: Command[] = [
          { type: 'put', request: { key: b('b'), value: b('2') } },
          { type: 'deleteRange', request: { key: b('a') } },
          { type: 'txn', request: { compare: [], success: [{ requestDeleteRange: { key: b('a') } }], failure: [] } },
          { type: 'compact', request: { revision: 2 } },
          { type: 'leaseGrant', request: { TTL: 60 } },
          { type: 'leaseRevoke', id: 1 },
        ];
        for (const command of refused) expectError(h.apply(command), 'Corrupt', 'corrupt');
        assert.deepEqual(h.all(), ['a=1@2/2/v1']);
        activate(h, 4, NOSPACE);
        deactivate(h, 4, CORRUPT);
        expectError(h.apply(refused[0]!), 'NoSpace', 'noSpace');
        h.del('a');
      });

      it('alarms survive a reopen and travel in snapshots', () => {
        const engine = freshEngine();
        const h = Harness.open(engine);
        activate(h, 2 ** 52, NOSPACE);
        activate(h, 0, CORRUPT);
        assert.deepEqual(MvccStore.open(engine).alarms(), h.store.alarms());
        const target = fresh();
        activate(target, 1, NOSPACE); // replaced by the install
        target.store.install(h.store.export());
        assert.deepEqual(target.store.alarms(), [{ memberId: 2 ** 52, alarm: NOSPACE }, { memberId: 0, alarm: CORRUPT }]);
      });
    });

    describe('durability, replay and snapshots', () => {
      it('skips an index it already applied (idempotent replay)', () => {
        const h = fresh();
        const command: Command = { type: 'put', request: { key: b('k'), value: b('v') } };
        assert.equal(h.store.apply(1, command).revision, 2);
        const again = h.store.apply(1, command);
        assert.deepEqual(again, { revision: 2, response: {}, events: [] });
        assert.equal(h.store.apply(0, command).revision, 2);
        assert.deepEqual(h.all(), ['k=v@2/2/v1']);
        assert.equal(h.store.appliedIndex, 1);
      });

      it('reopening rebuilds the same state from the engine (index, leases, meta)', () => {
        const engine = freshEngine();
        const h = Harness.open(engine);
        for (const command of randomCommands(7, 200)) h.apply(command);
        const reopened = MvccStore.open(engine);
        assert.equal(reopened.appliedIndex, h.store.appliedIndex);
        assert.equal(reopened.currentRevision, h.store.currentRevision);
        assert.equal(reopened.compactRevision, h.store.compactRevision);
        assert.deepEqual(reopened.hashKV(), h.store.hashKV());
        assert.deepEqual(reopened.leases(), h.store.leases());
        for (const lease of h.store.leases()) assert.deepEqual(reopened.lease(lease.ID), h.store.lease(lease.ID));
        const everything = { key: ZERO, rangeEnd: ZERO };
        assert.deepEqual(reopened.range(everything), h.store.range(everything));
        for (let rev = h.store.compactRevision; rev <= h.store.currentRevision; rev++) {
          assert.deepEqual(reopened.range({ ...everything, revision: rev }), h.store.range({ ...everything, revision: rev }));
        }
      });

      it('two stores fed the same commands have equal hashes at every step; different commands differ', () => {
        const one = fresh();
        const two = fresh();
        for (const command of randomCommands(11, 300)) {
          const x = one.apply(command);
          const y = two.apply(command);
          assert.deepEqual('error' in x ? x.error.code : x.revision, 'error' in y ? y.error.code : y.revision);
          assert.deepEqual(one.store.hashKV(), two.store.hashKV());
        }
        const before = one.store.hashKV();
        one.put('extra', 'value');
        assert.notEqual(one.store.hashKV().hash, before.hash);
        assert.deepEqual(one.store.hashKV(before.hashRevision), before, 'a historical hash ignores later writes');
      });

      it('export then install into a fresh store gives equal hashes, ranges, leases and meta', () => {
        const source = fresh();
        for (const command of randomCommands(23, 300)) source.apply(command);
        const target = fresh();
        target.put('stale', 'state'); // replaced by the install
        target.store.install(source.store.export(256));
        assert.equal(target.store.appliedIndex, source.store.appliedIndex);
        assert.equal(target.store.currentRevision, source.store.currentRevision);
        assert.equal(target.store.compactRevision, source.store.compactRevision);
        assert.deepEqual(target.store.hashKV(), source.store.hashKV());
        assert.deepEqual(target.store.leases(), source.store.leases());
        const everything = { key: ZERO, rangeEnd: ZERO };
        assert.deepEqual(target.store.range(everything), source.store.range(everything));
        // Both continue identically.
        target.index = source.index;
        for (const command of randomCommands(24, 50)) {
          source.apply(command);
          target.apply(command);
        }
        assert.deepEqual(target.store.hashKV(), source.store.hashKV());
      });
    });

    describe('history (eventsSince)', () => {
      it('returns puts and deletes in revision order with prevKv, bounded by a limit at revision boundaries', () => {
        const h = fresh();
        h.put('k', '1'); // 2
        h.put('other', '1'); // 3
        h.put('k', '2'); // 4
        h.del('k'); // 5
        const events = h.store.eventsSince(2, b('k'));
        assert.deepEqual(
          events.map((e) => `${e.type}:${show(e.kv)} prev ${show(e.prevKv)}`),
          ['0:k=1@2/2/v1 prev <none>', '0:k=2@2/4/v2 prev k=1@2/2/v1', '1:k=@0/5/v0 prev k=2@2/4/v2'],
        );
        assert.equal(h.store.eventsSince(2, b('k'), undefined, 2).length, 2);
        assert.deepEqual(h.store.eventsSince(1, ZERO, ZERO).map((e) => e.kv.modRevision), [2, 3, 4, 5]);
      });
    });
  });
}
