import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex, appendTombstone, lastAtOrBelow, latestOf, mainAt, previousOf, subAt, visibleAt, type KeyRevisions, type KeyVersion, type Revision } from './keyindex.js';

const put = (createRevision: number, version: number, lease = 0): KeyVersion => ({ tombstone: false, createRevision, version, lease });
const TOMBSTONE: KeyVersion = { tombstone: true, createRevision: 0, version: 0, lease: 0 };

describe('KeyIndex', () => {
  it('keeps a key written once in one number, and the newest version of a key written more in three more', () => {
    const index = new KeyIndex();
    index.append('once', 2, 0, put(2, 1));
    assert.equal(index.get('once'), 2);
    assert.deepEqual(index.latest('once'), { main: 2, sub: 0, createRevision: 2, version: 1, lease: 0 });
    index.append('k', 3, 0, put(3, 1));
    assert.equal(index.get('k'), 3);
    index.append('k', 4, 1, put(3, 2, 9));
    assert.deepEqual(index.get('k'), [3, 0, 4, 1, 3, 2, 9]);
    assert.deepEqual(index.latest('k'), { main: 4, sub: 1, createRevision: 3, version: 2, lease: 9 });
    index.append('k', 5, 0, put(3, 3));
    assert.deepEqual(index.get('k'), [3, 0, 4, 1, 5, 0, 3, 3, 0]);
    index.append('k', 6, 0, TOMBSTONE);
    assert.deepEqual(index.get('k'), [3, 0, 4, 1, 5, 0, 6, -1]);
    assert.equal(index.latest('k'), undefined);
    index.append('k', 7, 0, put(7, 1));
    assert.deepEqual(index.latest('k'), { main: 7, sub: 0, createRevision: 7, version: 1, lease: 0 });
    assert.equal(index.latest('missing'), undefined);
  });

  it('a first version with a lease keeps its numbers too', () => {
    const index = new KeyIndex();
    index.append('k', 2, 0, put(2, 1, 5));
    assert.deepEqual(index.latest('k'), { main: 2, sub: 0, createRevision: 2, version: 1, lease: 5 });
  });

  it('compaction drops old pairs and keeps what the newest version says', () => {
    const index = new KeyIndex();
    for (let v = 1; v <= 4; v++) index.append('k', v + 1, 0, put(2, v, 8));
    const dropped: { main: number; sub: number }[] = [];
    index.compact(4, dropped);
    assert.deepEqual(dropped, [{ main: 2, sub: 0 }, { main: 3, sub: 0 }]);
    assert.deepEqual(index.get('k'), [4, 0, 5, 0, 2, 4, 8]);
    assert.deepEqual(latestOf(index.get('k')), { main: 5, sub: 0, createRevision: 2, version: 4, lease: 8 });
  });

  it('a bulk load gives the same arrays as appending one by one', () => {
    const appended = new KeyIndex();
    const loaded = new KeyIndex();
    const writes: [string, number, number, KeyVersion][] = [
      ['a', 2, 0, put(2, 1)], ['b', 3, 0, put(3, 1, 4)], ['a', 4, 0, put(2, 2)], ['b', 5, 0, TOMBSTONE], ['c', 5, 1, put(5, 1)], ['a', 6, 0, put(2, 3)],
    ];
    for (const [key, main, sub, version] of writes) {
      appended.append(key, main, sub, version);
      loaded.appendUnsorted(key, main, sub, version);
    }
    loaded.finishLoad();
    for (const key of ['a', 'b', 'c']) assert.deepEqual(loaded.get(key), appended.get(key));
    const scanned: string[] = [];
    loaded.scan('a', undefined, (key) => void scanned.push(key));
    assert.deepEqual(scanned, ['a', 'b', 'c']);
  });

  it('a key goes from one number to an array on its second version, and stays one through a tombstone, compaction and a re-put', () => {
    const index = new KeyIndex();
    index.append('k', 10, 0, put(10, 1));
    assert.equal(typeof index.get('k'), 'number');
    assert.deepEqual(visibleAt(index.get('k'), 9), undefined);
    assert.deepEqual(visibleAt(index.get('k'), 10), { main: 10, sub: 0 });
    index.append('k', 11, 0, put(10, 2));
    assert.deepEqual(index.get('k'), [10, 0, 11, 0, 10, 2, 0]);
    index.append('k', 12, 0, TOMBSTONE);
    assert.deepEqual(index.get('k'), [10, 0, 11, 0, 12, -1]);
    const dropped: Revision[] = [];
    index.compact(11, dropped);
    assert.deepEqual(dropped, [{ main: 10, sub: 0 }]);
    assert.deepEqual(index.get('k'), [11, 0, 12, -1]);
    index.append('k', 13, 0, put(13, 1));
    assert.deepEqual(index.get('k'), [11, 0, 12, -1, 13, 0]);
    assert.deepEqual(index.latest('k'), { main: 13, sub: 0, createRevision: 13, version: 1, lease: 0 });
    assert.deepEqual(previousOf(index.get('k')!, 13, 0), { main: 12, sub: 0, tombstone: true });
    index.compact(13, dropped);
    assert.deepEqual(dropped, [{ main: 10, sub: 0 }, { main: 11, sub: 0 }, { main: 12, sub: 0 }]);
    assert.equal(index.get('k'), 13);
    // A key deleted then compacted away comes back as one number.
    index.append('k', 14, 0, TOMBSTONE);
    index.compact(14, dropped);
    assert.equal(index.get('k'), undefined);
    assert.equal(index.keyCount, 0);
    index.append('k', 15, 0, put(15, 1));
    assert.equal(index.get('k'), 15);
    const scanned: [string, KeyRevisions][] = [];
    index.scan('', undefined, (key, revs) => void scanned.push([key, revs]));
    assert.deepEqual(scanned, [['k', 15]]);
  });

  it('compaction keeps a number form whatever the revision', () => {
    const index = new KeyIndex();
    index.append('a', 5, 0, put(5, 1));
    index.append('b', 6, 2, put(6, 1));
    const dropped: Revision[] = [];
    index.compact(4, dropped);
    index.compact(100, dropped);
    assert.deepEqual(dropped, []);
    assert.deepEqual(index.latest('a'), { main: 5, sub: 0, createRevision: 5, version: 1, lease: 0 });
    assert.deepEqual(index.latest('b'), { main: 6, sub: 2, createRevision: 6, version: 1, lease: 0 });
  });

  it('a key written once with a lease is an array, and its second version too', () => {
    const index = new KeyIndex();
    index.append('k', 2, 0, put(2, 1, 7));
    assert.deepEqual(index.get('k'), [2, 0, 2, 1, 7]);
    index.append('k', 3, 0, put(2, 2));
    assert.deepEqual(index.latest('k'), { main: 3, sub: 0, createRevision: 2, version: 2, lease: 0 });
    // A number form that gets a lease on its second version.
    index.append('n', 4, 0, put(4, 1));
    index.append('n', 5, 0, put(4, 2, 8));
    assert.deepEqual(index.get('n'), [4, 0, 5, 0, 4, 2, 8]);
    assert.deepEqual(index.latest('n'), { main: 5, sub: 0, createRevision: 4, version: 2, lease: 8 });
    // A number form deleted: the array holds the put and the tombstone.
    index.append('d', 6, 3, put(6, 1));
    index.append('d', 7, 0, TOMBSTONE);
    assert.deepEqual(index.get('d'), [6, 3, 7, -1]);
  });

  it('a put in a txn (sub above 0) keeps its sub in the number form, up to the largest sub it holds', () => {
    const index = new KeyIndex();
    index.append('a', 9, 1, put(9, 1));
    index.append('b', 9, 1023, put(9, 1));
    index.append('c', 9, 1024, put(9, 1));
    assert.equal(typeof index.get('a'), 'number');
    assert.equal(typeof index.get('b'), 'number');
    assert.deepEqual(index.get('c'), [9, 1024]);
    for (const [key, sub] of [['a', 1], ['b', 1023], ['c', 1024]] as const) {
      const revs = index.get(key)!;
      assert.deepEqual(index.latest(key), { main: 9, sub, createRevision: 9, version: 1, lease: 0 });
      assert.deepEqual(visibleAt(revs, 9), { main: 9, sub });
      const at = lastAtOrBelow(revs, 9);
      assert.deepEqual([mainAt(revs, at), subAt(revs, at)], [9, sub]);
      assert.equal(previousOf(revs, 9, sub), undefined);
      assert.deepEqual(previousOf(revs, 9, sub + 1), { main: 9, sub, tombstone: false });
      assert.deepEqual(previousOf(revs, 10, 0), { main: 9, sub, tombstone: false });
    }
    index.append('a', 10, 4, put(9, 2));
    assert.deepEqual(index.get('a'), [9, 1, 10, 4, 9, 2, 0]);
  });

  it('revisions above 2^31 (no small integer) and up to the largest safe integer keep their values', () => {
    const cases: [number, number][] = [
      [2 ** 31 - 1, 0], [2 ** 31, 0], [2 ** 31 + 5, 3], [2 ** 40, 1023], [2 ** 43 - 2, 1], [2 ** 43 + 1, 1], [Number.MAX_SAFE_INTEGER - 1, 0], [Number.MAX_SAFE_INTEGER - 1, 7],
    ];
    for (const [main, sub] of cases) {
      const index = new KeyIndex();
      index.append('k', main, sub, put(main, 1));
      const revs = index.get('k')!;
      const label = `${main}/${sub}`;
      assert.deepEqual(index.latest('k'), { main, sub, createRevision: main, version: 1, lease: 0 }, label);
      assert.deepEqual(visibleAt(revs, main), { main, sub }, label);
      assert.equal(visibleAt(revs, main - 1), undefined, label);
      assert.equal(lastAtOrBelow(revs, main - 1) < 0, true, label);
      index.append('k', main + 1, 0, put(main, 2));
      assert.deepEqual(index.get('k'), [main, sub, main + 1, 0, main, 2, 0], label);
    }
  });

  it('keys across many chunks keep their revisions in the sorted list as in the map through each form', () => {
    const index = new KeyIndex();
    const random = randomOf(7);
    const keys = Array.from({ length: 5000 }, (_, i) => `key${String(i).padStart(5, '0')}`);
    const shuffled = [...keys].sort(() => random(3) - 1);
    let revision = 1;
    for (const key of shuffled) index.append(key, ++revision, 0, put(revision, 1));
    for (const key of shuffled.slice(0, 2500)) index.append(key, ++revision, 0, put(index.latest(key)!.createRevision, 2));
    const dropped: Revision[] = [];
    for (const key of shuffled.slice(0, 1000)) index.append(key, ++revision, 0, TOMBSTONE);
    for (const key of shuffled.slice(0, 500)) index.append(key, ++revision, 0, put(revision, 1));
    index.compact(revision, dropped);
    assert.equal(index.keyCount, 4500);
    const scanned: string[] = [];
    index.scan('', undefined, (key, revs) => {
      scanned.push(key);
      assert.equal(revs, index.get(key));
    });
    assert.deepEqual(scanned, keys.filter((key) => index.get(key) !== undefined));
    for (const key of shuffled.slice(0, 500)) assert.equal(typeof index.get(key), 'number');
    for (const key of shuffled.slice(1000, 2500)) assert.equal(Array.isArray(index.get(key)), true);
    for (const key of shuffled.slice(2500)) assert.equal(typeof index.get(key), 'number');
    // Every chunk boundary still finds its keys: a scan from each key (kept or removed) starts at
    // the first kept key at or after it, and removed keys come back in their places.
    for (const key of keys) {
      let first: string | undefined;
      index.scan(key, undefined, (found) => {
        first = found;
        return false;
      });
      assert.equal(first, scanned.find((kept) => kept >= key));
    }
    for (const key of shuffled.slice(500, 1000)) index.append(key, ++revision, 0, put(revision, 1));
    for (const key of shuffled) index.append(key, ++revision, 0, put(index.latest(key)!.createRevision, index.latest(key)!.version + 1));
    const all: string[] = [];
    index.scan('', undefined, (key, revs) => {
      all.push(key);
      assert.equal(revs, index.get(key));
      assert.equal(Array.isArray(revs), true);
    });
    assert.deepEqual(all, keys);
  });

  it('a delete in one pass (update with appendTombstone) grows number forms in their slots, and the map and sorted list agree', () => {
    const index = new KeyIndex();
    const keys = Array.from({ length: 3000 }, (_, i) => `key${String(i).padStart(5, '0')}`);
    let revision = 1;
    for (const key of keys) index.append(key, ++revision, 0, put(revision, 1));
    index.append(keys[5]!, ++revision, 0, put(7, 2));
    const deleteAt = ++revision;
    let sub = 0;
    index.update(keys[1]!, keys[2999]!, (_key, revs) => appendTombstone(revs, deleteAt, sub++));
    assert.equal(sub, 2998);
    assert.deepEqual(index.get(keys[1]!), [3, 0, deleteAt, -1]);
    assert.deepEqual(index.get(keys[5]!), [7, 0, 3002, 0, deleteAt, -(4 + 1)]);
    assert.equal(index.get(keys[0]!), 2);
    assert.equal(index.get(keys[2999]!), 3001);
    index.scan('', undefined, (key, revs) => assert.equal(revs, index.get(key), key));
    for (const key of keys.slice(1, 2999)) assert.equal(index.latest(key), undefined, key);
    // A single key: its number form replaced through replace(), found again by scan.
    const single = appendTombstone(index.get(keys[0]!)!, ++revision, 0);
    index.replace(keys[0]!, single);
    let scanned: KeyRevisions | undefined;
    index.scan(keys[0]!, keys[1]!, (_key, revs) => void (scanned = revs));
    assert.equal(scanned, single);
    assert.equal(index.latest(keys[0]!), undefined);
  });

  it('agrees with a plain list of versions per key over random puts, deletes, txns, compactions and reloads', () => {
    for (const base of [1, 2 ** 31 - 40, 2 ** 43 - 60]) {
      for (let seed = 1; seed <= 20; seed++) checkAgainstModel(seed, base);
    }
  });
});

/** What the model keeps of one write. */
interface ModelVersion extends KeyVersion {
  main: number;
  sub: number;
}

/** A small deterministic generator (xorshift32), so a failing seed replays. */
function randomOf(seed: number): (below: number) => number {
  let x = seed * 2654435761 >>> 0 || 1;
  return (below) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % below;
  };
}

function checkAgainstModel(seed: number, base: number): void {
  const random = randomOf(seed);
  const index = new KeyIndex();
  const model = new Map<string, ModelVersion[]>();
  const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
  const label = `seed ${seed} base ${base}`;
  let revision = base;
  let compacted = base;
  const write = (key: string, main: number, sub: number, version: KeyVersion): void => {
    index.append(key, main, sub, version);
    const versions = model.get(key) ?? [];
    versions.push({ ...version, main, sub });
    model.set(key, versions);
  };
  const newest = (key: string): ModelVersion | undefined => {
    const last = model.get(key)?.at(-1);
    return last === undefined || last.tombstone ? undefined : last;
  };
  for (let step = 0; step < 300; step++) {
    const kind = random(10);
    if (kind < 8) {
      // One revision of 1-3 writes to distinct keys (a txn when more than one).
      revision++;
      const writes = 1 + (random(4) === 0 ? random(3) : 0);
      const chosen = new Set<string>();
      while (chosen.size < writes) chosen.add(keys[random(keys.length)]!);
      let sub = random(5) === 0 ? 1020 : 0;
      for (const key of chosen) {
        const latest = newest(key);
        if (random(4) === 0) {
          if (latest !== undefined) write(key, revision, sub++, TOMBSTONE);
        } else {
          const lease = random(5) === 0 ? 1 + random(3) : 0;
          write(key, revision, sub++, put(latest?.createRevision ?? revision, (latest?.version ?? 0) + 1, lease));
        }
      }
    } else if (kind === 8 && revision > compacted) {
      compacted = compacted + 1 + random(revision - compacted);
      const dropped: Revision[] = [];
      index.compact(compacted, dropped);
      const expected: Revision[] = [];
      for (const [key, versions] of model) {
        let at = -1;
        for (let i = 0; i < versions.length; i++) if (versions[i]!.main <= compacted) at = i;
        if (at < 0) continue;
        const keepFrom = versions[at]!.tombstone ? at + 1 : at;
        for (const v of versions.slice(0, keepFrom)) expected.push({ main: v.main, sub: v.sub });
        if (keepFrom === versions.length) model.delete(key);
        else model.set(key, versions.slice(keepFrom));
      }
      const order = (a: Revision, b: Revision): number => a.main - b.main || a.sub - b.sub;
      assert.deepEqual(dropped.sort(order), expected.sort(order), `${label}: dropped at ${compacted}`);
    } else {
      // A reload: the records in revision order into a fresh index.
      const records = [...model].flatMap(([key, versions]) => versions.map((v) => ({ key, v })));
      records.sort((a, b) => a.v.main - b.v.main || a.v.sub - b.v.sub);
      const reloaded = new KeyIndex();
      for (const { key, v } of records) reloaded.appendUnsorted(key, v.main, v.sub, v);
      reloaded.finishLoad();
      for (const key of keys) assert.deepEqual(reloaded.get(key), index.get(key), `${label}: ${key} after a reload`);
    }
    compareWithModel(index, model, keys, revision, compacted, label);
  }
}

function compareWithModel(index: KeyIndex, model: Map<string, ModelVersion[]>, keys: string[], revision: number, compacted: number, label: string): void {
  assert.equal(index.keyCount, model.size, label);
  const scanned: string[] = [];
  index.scan('', undefined, (key, revs) => {
    scanned.push(key);
    assert.deepEqual(revs, index.get(key), `${label}: the sorted list and the map agree on ${key}`);
  });
  assert.deepEqual(scanned, [...model.keys()].sort(), `${label}: scan`);
  const part: string[] = [];
  index.scan('k1', 'k3', (key) => void part.push(key));
  assert.deepEqual(part, scanned.filter((key) => key >= 'k1' && key < 'k3'), `${label}: scan [k1, k3)`);
  for (const key of keys) {
    const versions = model.get(key);
    const revs = index.get(key);
    assert.equal(revs === undefined, versions === undefined, `${label}: ${key} present`);
    if (versions === undefined || revs === undefined) continue;
    const last = versions.at(-1)!;
    const latest = last.tombstone ? undefined : { main: last.main, sub: last.sub, createRevision: last.createRevision, version: last.version, lease: last.lease };
    assert.deepEqual(index.latest(key), latest, `${label}: latest of ${key}`);
    for (let at = compacted - 1; at <= revision + 1; at++) {
      const holder: ModelVersion | undefined = versions.filter((v) => v.main <= at).at(-1);
      const expected: Revision | undefined = holder === undefined || holder.tombstone ? undefined : { main: holder.main, sub: holder.sub };
      assert.deepEqual(visibleAt(revs, at), expected, `${label}: ${key} at ${at}`);
      const position = lastAtOrBelow(revs, at);
      assert.equal(position < 0, holder === undefined, `${label}: ${key} position at ${at}`);
      if (holder !== undefined) {
        assert.equal(mainAt(revs, position), holder.main);
        assert.equal(subAt(revs, position), holder.tombstone ? -(holder.sub + 1) : holder.sub);
      }
    }
    for (const v of versions) {
      const before = versions.filter((w) => w.main < v.main || (w.main === v.main && w.sub < v.sub)).at(-1);
      assert.deepEqual(previousOf(revs, v.main, v.sub), before && { main: before.main, sub: before.sub, tombstone: before.tombstone }, `${label}: before ${key} ${v.main}`);
    }
  }
}
