// A large range's cost in one process (no raft, no network): an MvccStore on a group-scoped lmdb
// engine (as a member opens it) holding --keys keys of 256 B, read whole by the gRPC API's Range
// handler (over a backend that reads the store as a member's does) and serialized into the bytes
// the server writes (the gRPC prefix and the RangeResponse). Prints the CPU time per range
// (process.cpuUsage, so time waiting for a core does not count) as one JSON object.
//
//   npm run build && node --import tsx scripts/bench-range.ts [--builds dist[,<other>/dist]]
//     [--keys 10000] [--ranges 20] [--rounds 6]
//
// --builds: the dist/ folders of the builds to measure, e.g. another checkout's, to compare two
// builds: each gets its own store, and the rounds alternate between them (ABBA), so drift in the
// machine's load falls on both alike.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Engine } from '../src/engine/types.js';
import type { MvccCommand } from '../src/mvcc/command.js';
import type { MvccStore } from '../src/mvcc/store.js';
import type { KeyValueSink, RangeRequest, ResponseHeader } from '../src/mvcc/types.js';
import { median, ScriptFlags } from './go-bench.js';

const VALUE_BYTES = 256;
const PUTS_PER_BATCH = 16;
/** The benchmark tools' key names: k0000000 and on. */
const keyOf = (n: number): string => `k${String(n).padStart(7, '0')}`;
const header: ResponseHeader = { clusterId: 0x1234_5678_9abc, memberId: 0x2345_6789_abcd, revision: 10_001, raftTerm: 2 };

interface Subject {
  dist: string;
  /** One range of every key, through the Range handler and the serializer: the bytes the server writes. */
  range(): Promise<Buffer | readonly Buffer[]>;
  close(): void;
}

async function open(dist: string, keys: number): Promise<Subject> {
  const url = (path: string): string => pathToFileURL(join(resolve(dist), path)).href;
  const mvcc = (await import(url('mvcc/store.js'))) as typeof import('../src/mvcc/store.js');
  const engines = (await import(url('engine/index.js'))) as typeof import('../src/engine/index.js');
  const codec = (await import(url('api/grpc/kv-codec.js'))) as typeof import('../src/api/grpc/kv-codec.js');
  const kv = (await import(url('api/grpc/kv.js'))) as typeof import('../src/api/grpc/kv.js');
  const method = codec.servedServiceDefinition('etcdserverpb.KV')['Range']! as {
    responseSerialize(m: unknown): Buffer;
    responseSerializeFramed?(m: unknown): Buffer | readonly Buffer[];
  };
  // What the server's frameMessage does: the serializer's framed form, or the message copied behind the prefix.
  const frame = (message: unknown): Buffer | readonly Buffer[] => {
    if (method.responseSerializeFramed) return method.responseSerializeFramed(message);
    const body = method.responseSerialize(message);
    const framed = Buffer.allocUnsafe(5 + body.length);
    body.copy(framed, 5);
    return framed;
  };

  const dir = mkdtempSync(join(tmpdir(), 'lichen-bench-range-'));
  const engine = new engines.ScopedEngine(await engines.openEngine('lmdb', join(dir, 'data')), 1);
  const store: MvccStore = mvcc.MvccStore.open(engine);
  store.countPrevKvWatchers(0);
  const value = new Uint8Array(VALUE_BYTES).fill(118);
  let index = 0;
  for (let from = 0; from < keys; from += PUTS_PER_BATCH) {
    engine.batch(() => {
      for (let i = from; i < Math.min(keys, from + PUTS_PER_BATCH); i++) {
        const command: MvccCommand = { type: 'put', request: { key: Buffer.from(keyOf(i), 'latin1'), value } };
        store.apply(++index, command);
      }
    });
  }
  engine.commit(); // as a member's engine between Readies: the data in LMDB, no overlay
  const request: RangeRequest = { key: Buffer.from(keyOf(0), 'latin1'), rangeEnd: Buffer.from(keyOf(keys), 'latin1') };
  // A member's backend.range, less the read barrier: the store read at once.
  const backend = { range: async (_r: unknown, _caller: unknown, into?: KeyValueSink) => ({ header, ...store.range(request, into) }) };
  const handler = kv.kvService({ backend: backend as never, maxRequestBytes: Infinity, sizeOf: () => 0 })['Range'] as (
    call: object,
    callback: (error: unknown, response: unknown) => void,
  ) => void;
  const call = { request: { key: request.key, range_end: request.rangeEnd }, metadata: { get: () => [] } };
  return {
    dist,
    range: () =>
      new Promise<Buffer | readonly Buffer[]>((done, fail) => handler(call, (error, response) => (error ? fail(error as Error) : done(frame(response))))),
    close: () => {
      engine.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** CPU µs per range over `ranges` ranges, and the framed response's size. */
async function round(subject: Subject, ranges: number): Promise<{ us: number; bytes: number }> {
  let bytes = 0;
  const started = cpuMicros();
  for (let i = 0; i < ranges; i++) {
    const framed = await subject.range();
    bytes = Buffer.isBuffer(framed) ? framed.length : framed.reduce((sum, piece) => sum + piece.length, 0);
  }
  return { us: (cpuMicros() - started) / ranges, bytes };
}

async function main(): Promise<void> {
  const args = new ScriptFlags(process.argv.slice(2), 'scripts/bench-range.ts');
  const dists = (args.get('builds') ?? 'dist').split(',');
  const keys = args.number('keys', 10_000);
  const ranges = args.number('ranges', 20);
  const rounds = args.number('rounds', 6);
  const loadBefore = loadavg().map((l) => Number(l.toFixed(2)));
  const subjects: Subject[] = [];
  for (const dist of dists) subjects.push(await open(dist, keys));
  const samples = subjects.map(() => [] as { us: number; bytes: number }[]);
  try {
    for (const subject of subjects) await round(subject, 3); // warm-up
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [...subjects.keys()] : [...subjects.keys()].reverse();
      for (const s of order) samples[s]!.push(await round(subjects[s]!, ranges));
    }
  } finally {
    for (const subject of subjects) subject.close();
  }
  const results = subjects.map((subject, s) => ({
    build: resolve(subject.dist),
    cpuMsPerRange: Number((median(samples[s]!.map((x) => x.us)) / 1000).toFixed(2)),
    roundsMs: samples[s]!.map((x) => Number((x.us / 1000).toFixed(2))),
    framedBytes: samples[s]![0]!.bytes,
  }));
  const first = results[0]!.cpuMsPerRange;
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      loadavgBefore: loadBefore,
      loadavgAfter: loadavg().map((l) => Number(l.toFixed(2))),
      keys,
      ranges,
      rounds,
      results: results.map((r) => ({ ...r, ofFirst: Number((r.cpuMsPerRange / first).toFixed(3)) })),
    }),
  );
}

await main();
