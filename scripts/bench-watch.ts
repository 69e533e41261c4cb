// A watch fan-out's cost in one process (no raft): a WatchHub over an MvccStore on a group-scoped
// lmdb engine (as a member opens it), served by the real gRPC server (Watch service, codec, HTTP/2
// layer) on loopback to --streams raw HTTP/2 clients holding --watchers watchers in all on one
// prefix, as bench:compare's watch-1000 does. Each put is applied to the store and handed to the
// hub as a member's apply does, and the event loop turns between puts so responses leave. Prints
// the CPU time per put (process.cpuUsage of the whole process, the clients' reading included, so
// time waiting for a core does not count) as one JSON object.
//
//   npm run build && node --import tsx scripts/bench-watch.ts [--builds dist[,<other>/dist]]
//     [--watchers 1000] [--streams 10] [--puts 200] [--rounds 6] [--window 2147483647]
//
// --window: each client's stream window, given back as it reads half of it. The default never
// holds the server back, so every watcher stays synced (the live path alone); a window of 65535
// (HTTP/2's default) holds each stream to what the client has read, so watchers fall behind and
// catch up from history, as the fan-out's watchers do behind grpc-js clients (the catch-up path).
//
// --builds: the dist/ folders of the builds to measure, e.g. another checkout's: each gets its own
// store, hub, server and clients, and the rounds alternate between them (ABBA), so drift in the
// machine's load falls on both alike. The first round of each build (not counted) decodes every
// response with protobufjs and checks that every watcher got every event once, in order.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MvccStore } from '../src/mvcc/store.js';
import type { Engine } from '../src/engine/types.js';
import { median, ScriptFlags } from './go-bench.js';

const VALUE_BYTES = 256;
const KEYS = 1000;
/** bench:compare's keys: 8 digits. */
const keyOf = (n: number): Buffer => Buffer.from(String(n % KEYS).padStart(8, '0'), 'latin1');
const PREFIX = Buffer.from('0');
const PREFIX_END = Buffer.from('1');
const WINDOW_MAX = 2 ** 31 - 1;
/** The client gives window back in steps of at most this many bytes. */
const WINDOW_STEP = 16 << 20;

// HTTP/2 frame types and flags (RFC 9113 §6) the client needs.
const DATA = 0;
const HEADERS = 1;
const SETTINGS = 4;
const PING = 6;
const WINDOW_UPDATE = 8;
const ACK = 1;
const END_HEADERS = 4;
const SETTINGS_INITIAL_WINDOW_SIZE = 4;

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(9 + payload.length);
  out.writeUIntBE(payload.length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(stream, 5);
  payload.copy(out, 9);
  return out;
}

function windowUpdate(stream: number, increment: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(increment, 0);
  return frame(WINDOW_UPDATE, 0, stream, payload);
}

/** A gRPC-framed WatchRequest{create_request{key, range_end}}, encoded by hand. */
function createRequest(key: Buffer, rangeEnd: Buffer): Buffer {
  const inner = Buffer.concat([Buffer.from([0x0a, key.length]), key, Buffer.from([0x12, rangeEnd.length]), rangeEnd]);
  const message = Buffer.concat([Buffer.from([0x0a, inner.length]), inner]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/**
 * One connection with one Watch stream: answers SETTINGS and PING, keeps the windows open, and
 * counts the gRPC messages and their bytes; while `check` is set it also decodes them.
 */
class Client {
  bytes = 0;
  messages = 0;
  check: ((message: Buffer) => void) | undefined;
  private pending = Buffer.alloc(0);
  private unacknowledged = 0;
  /** gRPC message reassembly across DATA frames: the message being read and how much of it is left. */
  private message: Buffer[] = [];
  private head = Buffer.alloc(0);
  private left = 0;

  private readonly step: number;

  private constructor(
    private readonly socket: net.Socket,
    window: number,
  ) {
    this.step = Math.min(WINDOW_STEP, Math.floor(window / 2));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
  }

  static async open(port: number, headerBlock: Buffer, watchers: number, window: number): Promise<Client> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((done, fail) => socket.once('connect', done).once('error', fail));
    socket.setNoDelay(true);
    const client = new Client(socket, window);
    const settings = Buffer.alloc(6);
    settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 0);
    settings.writeUInt32BE(window, 2);
    const creates = Buffer.concat(Array.from({ length: watchers }, () => createRequest(PREFIX, PREFIX_END)));
    socket.write(
      Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
        frame(SETTINGS, 0, 0, settings),
        windowUpdate(0, WINDOW_MAX - 65_535),
        frame(HEADERS, END_HEADERS, 1, headerBlock),
        frame(DATA, 0, 1, creates),
      ]),
    );
    return client;
  }

  private receive(chunk: Buffer): void {
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (data.length - at >= 9) {
      const length = data.readUIntBE(at, 3);
      if (data.length - at < 9 + length) break;
      const type = data[at + 3]!;
      const flags = data[at + 4]!;
      const payload = data.subarray(at + 9, at + 9 + length);
      at += 9 + length;
      if (type === DATA) this.onData(payload);
      else if (type === SETTINGS && (flags & ACK) === 0) this.socket.write(frame(SETTINGS, ACK, 0));
      else if (type === PING && (flags & ACK) === 0) this.socket.write(frame(PING, ACK, 0, Buffer.from(payload)));
    }
    this.pending = at === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(at));
    data = Buffer.alloc(0);
  }

  private onData(payload: Buffer): void {
    this.unacknowledged += payload.length;
    if (this.unacknowledged >= this.step) {
      this.socket.write(Buffer.concat([windowUpdate(0, this.unacknowledged), windowUpdate(1, this.unacknowledged)]));
      this.unacknowledged = 0;
    }
    let at = 0;
    while (at < payload.length) {
      if (this.left === 0) {
        // The 5-byte prefix, perhaps split across frames.
        const need = 5 - this.head.length;
        const take = payload.subarray(at, at + need);
        this.head = this.head.length === 0 ? take : Buffer.concat([this.head, take]);
        at += take.length;
        if (this.head.length < 5) return;
        this.left = this.head.readUInt32BE(1);
        this.head = Buffer.alloc(0);
        this.bytes += this.left;
        if (this.left === 0) this.done();
        continue;
      }
      const take = payload.subarray(at, at + this.left);
      at += take.length;
      this.left -= take.length;
      if (this.check) this.message.push(take);
      if (this.left === 0) this.done();
    }
  }

  private done(): void {
    this.messages++;
    if (this.check) this.check(Buffer.concat(this.message));
    this.message = [];
  }

  close(): void {
    this.socket.destroy();
  }
}

interface Subject {
  dist: string;
  store: MvccStore;
  put(): void;
  /** A member's tick: one catch-up step. */
  tick(): void;
  idle(): boolean;
  clients: Client[];
  close(): Promise<void>;
}

async function open(dist: string, watchers: number, streams: number, window: number): Promise<Subject> {
  const url = (path: string): string => pathToFileURL(join(resolve(dist), path)).href;
  const mvcc = (await import(url('mvcc/index.js'))) as typeof import('../src/mvcc/index.js');
  const engines = (await import(url('engine/index.js'))) as typeof import('../src/engine/index.js');
  const grpc = (await import(url('api/grpc/server.js'))) as typeof import('../src/api/grpc/server.js');
  const serverWatch = (await import(url('server/watch.js'))) as typeof import('../src/server/watch.js');
  const hpack = (await import(url('api/grpc/h2/hpack.js'))) as typeof import('../src/api/grpc/h2/hpack.js');

  const dir = mkdtempSync(join(tmpdir(), 'lichen-bench-watch-'));
  const engine: Engine = new engines.ScopedEngine(await engines.openEngine('lmdb', join(dir, 'data')), 1);
  const store = mvcc.MvccStore.open(engine);
  const hub = new mvcc.WatchHub(store);
  // What src/server/watch.ts asks of a member: its hub, whether it stopped.
  const node = { hub, stopped: false };
  const backend = {
    watch: (request: never, sink: never) => serverWatch.watchStore(node as never, request, sink, 3_600_000, 3_600_000),
    header: (revision?: number) => ({ clusterId: 0x1234_5678_9abc, memberId: 0x2345_6789_abcd, revision: revision ?? store.currentRevision, raftTerm: 2 }),
    leaderId: () => 0x2345_6789_abcd,
    identify: () => undefined,
  };
  const server = await grpc.startGrpcServer({ backend: backend as never, port: 0 });
  const block = hpack.encodeHeaders([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', '/etcdserverpb.Watch/Watch'],
    [':authority', 'localhost'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
  ]);
  const clients: Client[] = [];
  for (let s = 0; s < streams; s++) clients.push(await Client.open(server.port, block, Math.round(((s + 1) * watchers) / streams) - Math.round((s * watchers) / streams), window));
  const value = new Uint8Array(VALUE_BYTES).fill(118);
  let index = 0;
  let ticks = 0;
  return {
    dist,
    store,
    clients,
    put() {
      index++;
      const result = engine.batch(() => store.apply(index, { type: 'put', request: { key: keyOf(index), value } }));
      engine.commit();
      if (!('error' in result) && result.events.length > 0) hub.notify(result.events, result.revision);
      // A member's tick steps the catch-up too (every 10 puts here, at 1,000 puts/s a 10 ms tick).
      if (++ticks % 10 === 0) hub.syncUnsynced();
    },
    tick: () => hub.syncUnsynced(),
    idle: () => hub.unsyncedCount === 0,
    async close() {
      for (const client of clients) client.close();
      await server.close(0);
      engine.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

const turn = (): Promise<void> => new Promise((done) => setImmediate(done));
const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** Waits until every watcher is synced and the clients have received nothing for a while, ticking as a member does. */
async function settle(subject: Subject): Promise<void> {
  let last = -1;
  for (;;) {
    await sleep(10);
    subject.tick();
    const received = subject.clients.reduce((sum, c) => sum + c.bytes, 0);
    if (subject.idle() && received === last) return;
    last = received;
  }
}

interface Sample {
  us: number;
  responses: number;
  bytes: number;
}

/** CPU µs per put over `puts` puts, one put per turn of the event loop, until every event is delivered. */
async function round(subject: Subject, puts: number): Promise<Sample> {
  const before = subject.clients.map((c) => [c.messages, c.bytes] as const);
  const started = cpuMicros();
  for (let i = 0; i < puts; i++) {
    subject.put();
    await turn();
  }
  await settle(subject);
  const us = (cpuMicros() - started) / puts;
  let responses = 0;
  let bytes = 0;
  subject.clients.forEach((c, i) => {
    responses += c.messages - before[i]![0];
    bytes += c.bytes - before[i]![1];
  });
  return { us, responses, bytes };
}

/** A round with every response decoded by protobufjs: each watcher must see each put's event once, in revision order. */
async function checkedRound(subject: Subject, puts: number, decode: (bytes: Buffer) => WatchResponse, watchers: number): Promise<void> {
  await settle(subject);
  const from = subject.store.currentRevision + 1;
  const seen = new Map<string, number[]>();
  subject.clients.forEach((client, c) => {
    client.check = (bytes) => {
      const response = decode(bytes);
      for (const event of response.events ?? []) {
        const id = `${c}/${response.watch_id}`;
        let list = seen.get(id);
        if (list === undefined) seen.set(id, (list = []));
        list.push(Number(event.kv.mod_revision));
      }
    };
  });
  await round(subject, puts);
  for (const client of subject.clients) client.check = undefined;
  const expected = Array.from({ length: puts }, (_, i) => from + i);
  if (seen.size !== watchers) throw new Error(`${subject.dist}: ${seen.size} watchers got events, not ${watchers}`);
  for (const [id, revisions] of seen) {
    if (revisions.join() !== expected.join()) throw new Error(`${subject.dist}: watcher ${id} got revisions ${revisions.slice(0, 5).join()}..., not ${from}..${from + puts - 1}`);
  }
}

interface WatchResponse {
  watch_id: number;
  events?: { kv: { mod_revision: number | string } }[];
}

async function main(): Promise<void> {
  const args = new ScriptFlags(process.argv.slice(2), 'scripts/bench-watch.ts');
  const dists = (args.get('builds') ?? 'dist').split(',');
  const watchers = args.number('watchers', 1000);
  const streams = args.number('streams', 10);
  const puts = args.number('puts', 200);
  const rounds = args.number('rounds', 6);
  const window = args.number('window', WINDOW_MAX);
  const loadBefore = loadavg().map((l) => Number(l.toFixed(2)));
  const proto = (await import(pathToFileURL(join(resolve(dists[0]!), 'api/grpc/proto.js')).href)) as typeof import('../src/api/grpc/proto.js');
  const method = proto.serviceDefinition('etcdserverpb.Watch')['Watch']! as unknown as { responseDeserialize(bytes: Buffer): WatchResponse };
  const subjects: Subject[] = [];
  for (const dist of dists) subjects.push(await open(dist, watchers, streams, window));
  const samples = subjects.map(() => [] as Sample[]);
  try {
    for (const subject of subjects) await checkedRound(subject, Math.min(puts, 50), (bytes) => method.responseDeserialize(bytes), watchers);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [...subjects.keys()] : [...subjects.keys()].reverse();
      for (const s of order) samples[s]!.push(await round(subjects[s]!, puts));
    }
  } finally {
    for (const subject of subjects) await subject.close();
  }
  const results = subjects.map((subject, s) => ({
    build: resolve(subject.dist),
    cpuUsPerPut: Math.round(median(samples[s]!.map((x) => x.us))),
    roundsUs: samples[s]!.map((x) => Math.round(x.us)),
    responsesPerPut: Number((median(samples[s]!.map((x) => x.responses)) / puts).toFixed(1)),
    bytesPerPut: Math.round(median(samples[s]!.map((x) => x.bytes)) / puts),
  }));
  const first = results[0]!.cpuUsPerPut;
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      loadavgBefore: loadBefore,
      loadavgAfter: loadavg().map((l) => Number(l.toFixed(2))),
      watchers,
      streams,
      puts,
      rounds,
      window,
      results: results.map((r) => ({ ...r, ofFirst: Number((r.cpuUsPerPut / first).toFixed(3)) })),
    }),
  );
}

await main();
