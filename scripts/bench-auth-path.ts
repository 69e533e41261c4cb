// The cost of etcd authentication on one member's request path, in one process: a single-member
// Lichen cluster (raft, WAL, lmdb, the gRPC server) started here from a build, with the user of
// scripts/bench-auth.ts (1,000 roles of 10 key ranges each, 10,000 disjoint ranges after merging),
// driven over loopback by a minimal HTTP/2 client written for this script: its requests are
// encoded once, and its header blocks are what etcd's Go client (grpc-go) sends: every field added
// to HPACK's dynamic table on a connection's first request, then indexed (the `token` field too).
// So the client costs little and the same in both modes, and what changes between auth off and on
// is the member's work: reading the token, finding its user, the permission check, and whatever
// else the authenticated path does. Auth is switched on and off on the same member (as
// bench-auth.ts does on its cluster), rounds alternate off-on and on-off (ABBA), and each round
// reports the process's CPU time per request (process.cpuUsage: time spent waiting for a core
// does not count), the median latency and the GC pause time per request. Prints one JSON object.
//
//   npm run build && node --import tsx scripts/bench-auth-path.ts [--builds dist[,<other>/dist]]
//     [--op range|put] [--modes off,user[,root]] [--seconds 2] [--rounds 6] [--clients 64] [--conns 8] [--profile true]
//
// --modes: off (auth disabled, no token), user (the 1,000-role user's token: identification and
// the search of its 10,000 ranges), root (root's token: identification, no range search).
// --builds: the dist/ folders of the builds to measure (e.g. another checkout's, to compare two
// builds): each gets its own member in this process, and the rounds go over every build and mode.
// --profile true: the process is sampled (node:inspector, every 100 µs) during each measured
// round; printed per build (stderr): the inclusive time per request of auth's functions and the
// request path around them, and the functions whose self time per request differs most between
// auth off and each other mode. The samples are wall-clock time of the thread: on a loaded
// machine they include time it waited for a core, so compare modes and builds of one run only.
import { Session } from 'node:inspector';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { Client, ServiceError } from '@grpc/grpc-js';
import { median, ScriptFlags } from './go-bench.js';

type Mode = 'off' | 'user' | 'root';
type Op = 'range' | 'put';

const ROLES = 1000;
const RANGES_PER_ROLE = 10;
const KEYS = ROLES * RANGES_PER_ROLE;
const USER = 'bench';
const USER_PASSWORD = 'bench-user';
const ROOT_PASSWORD = 'bench-root';
const VALUE_BYTES = 256;
/** Set-up calls in flight at once. */
const SETUP_CONCURRENCY = 32;
/** Seconds of unmeasured requests after each switch of mode (the first check rebuilds the merged ranges). */
const SETTLE_SECONDS = 0.5;
/** The profile's sampling interval. */
const PROFILE_INTERVAL_US = 100;
/** The functions whose inclusive time the profile report prints: auth's, and the request path around it. */
const INCLUSIVE_PATTERN = /^(callerOf|credentialsOf|identify|verify|use|checkRead|checkKeys|hasKey|authInfo|range|respond|unary|handle|finishHeaderBlock|decode|requestHeaders|runUnary) /;

const keyOf = (n: number): string => `k${String(n).padStart(7, '0')}`;
const roleOf = (r: number): string => `role${String(r).padStart(4, '0')}`;

// ------------------------------------------------------------------------------ the HTTP/2 client

const FRAME_DATA = 0x0;
const FRAME_HEADERS = 0x1;
const FRAME_RST_STREAM = 0x3;
const FRAME_SETTINGS = 0x4;
const FRAME_PING = 0x6;
const FRAME_GOAWAY = 0x7;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const WINDOW_MAX = 2 ** 31 - 1;
/** HPACK: the dynamic table's first index (RFC 7541 §2.3.3). */
const FIRST_DYNAMIC_INDEX = 62;
/** Response bytes received before the client gives the connection's window back. */
const WINDOW_RETURN_BYTES = 1 << 20;

function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const out = Buffer.allocUnsafe(9);
  out.writeUIntBE(length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(streamId, 5);
  return out;
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  if (bytes.length < 127) return Buffer.concat([Buffer.of(bytes.length), bytes]);
  const length: number[] = [127];
  for (let rest = bytes.length - 127; ; rest >>= 7) {
    if (rest < 128) {
      length.push(rest);
      break;
    }
    length.push((rest & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from(length), bytes]);
}

/** One connection carrying unary calls; a call resolves with whether it ended with status OK. */
class RawGrpcConnection {
  private readonly socket: Socket;
  private nextStreamId = 1;
  private headersIndexed = false;
  private readonly pending = new Map<number, { resolve: (ok: boolean) => void; data: boolean }>();
  private input = Buffer.alloc(0);
  private received = 0;
  failure: string | undefined;

  private constructor(socket: Socket, private readonly fields: Array<[string, string]>) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => this.fail(error.message));
    socket.on('close', () => this.fail('connection closed'));
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(0x2, 0); // ENABLE_PUSH 0
    settings.writeUInt16BE(0x4, 6); // INITIAL_WINDOW_SIZE
    settings.writeUInt32BE(WINDOW_MAX, 8);
    const windowUpdate = Buffer.alloc(4);
    windowUpdate.writeUInt32BE(WINDOW_MAX - 65_535, 0);
    socket.write(
      Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
        frameHeader(12, FRAME_SETTINGS, 0, 0),
        settings,
        frameHeader(4, 0x8 /* WINDOW_UPDATE */, 0, 0),
        windowUpdate,
      ]),
    );
  }

  static open(port: number, fields: Array<[string, string]>): Promise<RawGrpcConnection> {
    return new Promise((resolveOpen, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolveOpen(new RawGrpcConnection(socket, fields)));
      socket.once('error', reject);
    });
  }

  /**
   * The header block: on the first call every field as a literal with incremental indexing (as
   * grpc-go's encoder sends a field it has not sent before), afterwards all of them indexed.
   */
  private headerBlock(): Buffer {
    if (this.headersIndexed) {
      const n = this.fields.length;
      return Buffer.from(this.fields.map((_f, i) => 0x80 | (FIRST_DYNAMIC_INDEX + n - 1 - i)));
    }
    this.headersIndexed = true;
    return Buffer.concat(this.fields.map(([name, value]) => Buffer.concat([Buffer.of(0x40), hpackString(name), hpackString(value)])));
  }

  /** Sends one unary call with the framed message `body` (the gRPC prefix and the protobuf). */
  call(body: Buffer): Promise<boolean> {
    if (this.failure) return Promise.reject(new Error(this.failure));
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const block = this.headerBlock();
    this.socket.write(
      Buffer.concat([frameHeader(block.length, FRAME_HEADERS, FLAG_END_HEADERS, id), block, frameHeader(body.length, FRAME_DATA, FLAG_END_STREAM, id), body]),
    );
    return new Promise((resolveCall) => this.pending.set(id, { resolve: resolveCall, data: false }));
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    let at = 0;
    while (this.input.length - at >= 9) {
      const length = this.input.readUIntBE(at, 3);
      if (this.input.length - at < 9 + length) break;
      const type = this.input[at + 3]!;
      const flags = this.input[at + 4]!;
      const streamId = this.input.readUInt32BE(at + 5) & 0x7fff_ffff;
      const payload = this.input.subarray(at + 9, at + 9 + length);
      at += 9 + length;
      this.onFrame(type, flags, streamId, payload);
    }
    this.input = at === this.input.length ? Buffer.alloc(0) : this.input.subarray(at);
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    switch (type) {
      case FRAME_SETTINGS:
        if ((flags & FLAG_ACK) === 0) this.socket.write(frameHeader(0, FRAME_SETTINGS, FLAG_ACK, 0));
        return;
      case FRAME_PING:
        if ((flags & FLAG_ACK) === 0) this.socket.write(Buffer.concat([frameHeader(8, FRAME_PING, FLAG_ACK, 0), payload]));
        return;
      case FRAME_GOAWAY:
        return this.fail(`GOAWAY ${payload.subarray(8).toString('latin1')}`);
      case FRAME_RST_STREAM: {
        const call = this.pending.get(streamId);
        this.pending.delete(streamId);
        call?.resolve(false);
        return;
      }
      case FRAME_DATA: {
        // The connection window is given back a MiB at a time (a call's response is a few hundred bytes).
        this.received += payload.length;
        if (this.received >= WINDOW_RETURN_BYTES) {
          const update = Buffer.allocUnsafe(4);
          update.writeUInt32BE(this.received, 0);
          this.received = 0;
          this.socket.write(Buffer.concat([frameHeader(4, 0x8, 0, 0), update]));
        }
        const call = this.pending.get(streamId);
        if (call) call.data = true;
        return;
      }
      case FRAME_HEADERS: {
        if ((flags & FLAG_END_STREAM) === 0) return;
        const call = this.pending.get(streamId);
        this.pending.delete(streamId);
        // Trailers after a message carry status OK (the server's one pre-encoded block); a
        // trailers-only response is an error status.
        call?.resolve(call.data && !payload.includes('grpc-message'));
        return;
      }
      default:
        return;
    }
  }

  private fail(reason: string): void {
    this.failure ??= reason;
    for (const call of this.pending.values()) call.resolve(false);
    this.pending.clear();
  }
}

/** A framed RangeRequest of one key (linearizable), or a PutRequest of one key and a 256-byte value. */
function requestBody(op: Op, key: string): Buffer {
  const keyBytes = Buffer.from(key, 'latin1');
  const message =
    op === 'range'
      ? Buffer.concat([Buffer.of(0x0a, keyBytes.length), keyBytes])
      : Buffer.concat([Buffer.of(0x0a, keyBytes.length), keyBytes, Buffer.of(0x12, VALUE_BYTES & 0x7f | 0x80, VALUE_BYTES >> 7), Buffer.alloc(VALUE_BYTES, 118)]);
  const framed = Buffer.allocUnsafe(5 + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  message.copy(framed, 5);
  return framed;
}

// ------------------------------------------------------------------------------ one member per build

interface Member {
  dist: string;
  port: number;
  authEnabled: boolean;
  call<T = unknown>(service: 'Auth' | 'KV', method: string, request: object, token?: string): Promise<T>;
  close(): Promise<void>;
}

async function startMember(dist: string): Promise<Member> {
  const url = (path: string): string => pathToFileURL(join(resolve(dist), path)).href;
  const server = (await import(url('server/index.js'))) as typeof import('../src/server/index.js');
  const log = (await import(url('log.js'))) as typeof import('../src/log.js');
  const proto = (await import(url('api/grpc/proto.js'))) as typeof import('../src/api/grpc/proto.js');
  const grpc = await import('@grpc/grpc-js');
  const dataDir = mkdtempSync(join(tmpdir(), 'lichen-bench-auth-path-'));
  const node = await server.startNode(
    server.defaultNodeConfig({ name: 'solo', dataDir, listenClient: '127.0.0.1:0', listenPeer: '127.0.0.1:0', listenHttp: '', logLevel: 'error', bcryptCost: 4 }),
    log.createSilentLogger(),
  );
  const port = Number(node.addresses.client.split(':').pop());
  const constructors = proto.etcdClientConstructors();
  const clients = new Map<string, Client>();
  return {
    dist,
    port,
    authEnabled: false,
    call<T>(service: 'Auth' | 'KV', method: string, request: object, token?: string): Promise<T> {
      let client = clients.get(service);
      if (!client) clients.set(service, (client = new constructors[service](node.addresses.client, grpc.credentials.createInsecure())));
      const metadata = new grpc.Metadata();
      if (token !== undefined) metadata.set('token', token);
      const methods = client as unknown as Record<string, Function>;
      return new Promise<T>((resolveCall, reject) =>
        methods[method]!.call(client, request, metadata, (error: ServiceError | null, response: T) => (error ? reject(error) : resolveCall(response))),
      );
    },
    async close() {
      for (const client of clients.values()) client.close();
      await node.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function inParallel(calls: readonly (() => Promise<unknown>)[]): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < calls.length) await calls[next++]!();
  };
  await Promise.all(Array.from({ length: SETUP_CONCURRENCY }, worker));
}

/** Root, the 1,000 roles with their ranges (as bench-auth.ts: role r's range j covers key j*1000+r), the user holding them all, the keys. */
async function setUp(member: Member): Promise<void> {
  await member.call('Auth', 'UserAdd', { name: 'root', password: ROOT_PASSWORD });
  await member.call('Auth', 'UserGrantRole', { user: 'root', role: 'root' });
  await member.call('Auth', 'UserAdd', { name: USER, password: USER_PASSWORD });
  const roles = Array.from({ length: ROLES }, (_u, r) => r);
  await inParallel(roles.map((r) => () => member.call('Auth', 'RoleAdd', { name: roleOf(r) })));
  await inParallel(
    roles.flatMap((r) =>
      Array.from({ length: RANGES_PER_ROLE }, (_u, j) => () => {
        const key = Buffer.from(keyOf(j * ROLES + r), 'latin1');
        return member.call('Auth', 'RoleGrantPermission', { name: roleOf(r), perm: { permType: 2, key, range_end: Buffer.concat([key, Buffer.of(0xff)]) } });
      }),
    ),
  );
  await inParallel(roles.map((r) => () => member.call('Auth', 'UserGrantRole', { user: USER, role: roleOf(r) })));
  const value = Buffer.alloc(VALUE_BYTES, 118);
  await inParallel(Array.from({ length: KEYS }, (_u, n) => () => member.call('KV', 'Put', { key: Buffer.from(keyOf(n)), value })));
}

/** Switches auth; with it on, returns the user's token. */
async function setMode(member: Member, mode: Mode): Promise<string | undefined> {
  if (mode === 'off') {
    if (member.authEnabled) {
      const { token } = await member.call<{ token: string }>('Auth', 'Authenticate', { name: 'root', password: ROOT_PASSWORD });
      await member.call('Auth', 'AuthDisable', {}, token);
      member.authEnabled = false;
    }
    return undefined;
  }
  if (!member.authEnabled) {
    await member.call('Auth', 'AuthEnable', {});
    member.authEnabled = true;
  }
  const login = mode === 'user' ? { name: USER, password: USER_PASSWORD } : { name: 'root', password: ROOT_PASSWORD };
  return (await member.call<{ token: string }>('Auth', 'Authenticate', login)).token;
}

// ------------------------------------------------------------------------------ measuring

interface Flags {
  builds: string[];
  op: Op;
  seconds: number;
  rounds: number;
  clients: number;
  conns: number;
  modes: Mode[];
  profile: boolean;
}

interface RoundResult {
  requests: number;
  errors: number;
  cpuMicrosPerRequest: number;
  gcMicrosPerRequest: number;
  p50Ms: number;
  requestsPerSecond: number;
}

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration;
}).observe({ entryTypes: ['gc'] });

/** Runs `clients` callers over `conns` connections of the raw client for `seconds` with `token` (none: no token header). */
async function drive(member: Member, flags: Flags, token: string | undefined, seconds: number): Promise<RoundResult> {
  const fields: Array<[string, string]> = [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', flags.op === 'range' ? '/etcdserverpb.KV/Range' : '/etcdserverpb.KV/Put'],
    [':authority', `127.0.0.1:${member.port}`],
    ['content-type', 'application/grpc'],
    ['user-agent', 'grpc-go/1.26.0'],
    ['te', 'trailers'],
    ...(token === undefined ? [] : ([['token', token]] as Array<[string, string]>)),
  ];
  const connections = await Promise.all(Array.from({ length: flags.conns }, () => RawGrpcConnection.open(member.port, fields)));
  const bodies = Array.from({ length: KEYS }, (_u, n) => requestBody(flags.op, keyOf(n)));
  const latencies: number[] = [];
  let requests = 0;
  let errors = 0;
  const startCpu = process.cpuUsage();
  const startGcMs = gcMs;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let seed = 12345;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fff_ffff;
    return seed;
  };
  await Promise.all(
    Array.from({ length: flags.clients }, async (_u, c) => {
      const connection = connections[c % connections.length]!;
      while (performance.now() < deadline) {
        const sent = performance.now();
        const ok = await connection.call(bodies[random() % KEYS]!);
        latencies.push(performance.now() - sent);
        if (ok) requests++;
        else errors++;
        if (connection.failure) throw new Error(connection.failure);
      }
    }),
  );
  const elapsedMs = performance.now() - start;
  const cpu = process.cpuUsage(startCpu);
  const result: RoundResult = {
    requests,
    errors,
    cpuMicrosPerRequest: (cpu.user + cpu.system) / Math.max(1, requests + errors),
    gcMicrosPerRequest: ((gcMs - startGcMs) * 1000) / Math.max(1, requests + errors),
    p50Ms: median(latencies),
    requestsPerSecond: ((requests + errors) * 1000) / elapsedMs,
  };
  for (const connection of connections) connection.close();
  return result;
}

class Profiles {
  private readonly session = new Session();
  /** Self time in µs by function, per build and mode; requests per build and mode. */
  readonly self = new Map<string, Map<string, number>>();
  readonly requests = new Map<string, number>();
  private readonly inclusive = new Map<string, Map<string, number>>();

  constructor() {
    this.session.connect();
  }

  private post(method: string, params?: object): Promise<any> {
    return new Promise((resolvePost, reject) => this.session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolvePost(result))));
  }

  async start(): Promise<void> {
    await this.post('Profiler.enable');
    await this.post('Profiler.setSamplingInterval', { interval: PROFILE_INTERVAL_US });
    await this.post('Profiler.start');
  }

  /** Stops sampling and adds the samples to `label`'s table (undefined: a warm-up round, not kept). */
  async stop(label: string | undefined, requests: number): Promise<void> {
    const { profile } = await this.post('Profiler.stop');
    if (label === undefined) return;
    const byId = new Map<number, { callFrame: { functionName: string; url: string; lineNumber: number } }>(profile.nodes.map((n: any) => [n.id, n]));
    const table = this.self.get(label) ?? new Map<string, number>();
    this.self.set(label, table);
    this.requests.set(label, (this.requests.get(label) ?? 0) + requests);
    const inclusive = this.inclusive.get(label) ?? new Map<string, number>();
    this.inclusive.set(label, inclusive);
    const parentOf = new Map<number, number>();
    for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
    const keyOf = (id: number): string => {
      const frame = byId.get(id)!.callFrame;
      return `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
    };
    const samples: number[] = profile.samples;
    const deltas: number[] = profile.timeDeltas;
    for (let i = 0; i < samples.length; i++) {
      const micros = deltas[i + 1] ?? deltas[i] ?? 0;
      const key = keyOf(samples[i]!);
      table.set(key, (table.get(key) ?? 0) + micros);
      // Inclusive time: every function on the sample's stack, once.
      const seen = new Set<string>();
      for (let id: number | undefined = samples[i]; id !== undefined; id = parentOf.get(id)) {
        const k = keyOf(id);
        if (seen.has(k)) continue;
        seen.add(k);
        inclusive.set(k, (inclusive.get(k) ?? 0) + micros);
      }
    }
  }

  /** Inclusive time per request of the functions whose names match `pattern`, per build and mode. */
  inclusiveReport(pattern: RegExp): string {
    const lines: string[] = ['inclusive µs per request:'];
    for (const [label, table] of this.inclusive) {
      const requests = this.requests.get(label) ?? 1;
      const rows = [...table].filter(([k]) => pattern.test(k)).sort((a, b) => b[1] - a[1]);
      for (const [k, v] of rows) lines.push(`${label.padEnd(30)} ${(v / requests).toFixed(2).padStart(8)}  ${k}`);
    }
    return lines.join('\n');
  }

  /** The functions whose self time per request differs most between auth off and `mode`, for one build. */
  report(dist: string, mode: Mode, top: number): string {
    const off = this.self.get(`${dist} off`) ?? new Map<string, number>();
    const user = this.self.get(`${dist} ${mode}`) ?? new Map<string, number>();
    const offRequests = this.requests.get(`${dist} off`) ?? 1;
    const userRequests = this.requests.get(`${dist} ${mode}`) ?? 1;
    const busy = (table: Map<string, number>, n: number): number => [...table].reduce((a, [k, v]) => a + (k.startsWith('(idle)') ? 0 : v), 0) / n;
    const rows = [...new Set([...off.keys(), ...user.keys()])]
      .filter((k) => !k.startsWith('(idle)'))
      .map((k) => ({ k, off: (off.get(k) ?? 0) / offRequests, user: (user.get(k) ?? 0) / userRequests }))
      .sort((a, b) => Math.abs(b.user - b.off) - Math.abs(a.user - a.off))
      .slice(0, top);
    const lines = [`${dist}: busy µs per request off ${busy(off, offRequests).toFixed(2)}, ${mode} ${busy(user, userRequests).toFixed(2)}; self µs per request off, ${mode}, difference:`];
    for (const r of rows) lines.push(`${r.off.toFixed(2).padStart(8)} ${r.user.toFixed(2).padStart(8)} ${(r.user - r.off).toFixed(2).padStart(8)}  ${r.k}`);
    return lines.join('\n');
  }
}

async function main(): Promise<void> {
  const args = new ScriptFlags(process.argv.slice(2), 'scripts/bench-auth-path.ts');
  const flags: Flags = {
    builds: (args.get('builds') ?? 'dist').split(','),
    op: args.list<Op>('op', 'range', ['range', 'put'])[0]!,
    seconds: args.number('seconds', 2),
    rounds: args.number('rounds', 6),
    clients: args.number('clients', 64),
    conns: args.number('conns', 8),
    modes: args.list<Mode>('modes', 'off,user', ['off', 'user', 'root']),
    profile: args.get('profile') === 'true',
  };
  const loadBefore = loadavg()[0]!;
  const startedAt = new Date().toISOString();
  const members: Member[] = [];
  for (const dist of flags.builds) {
    process.stderr.write(`${dist}: starting a member and setting up ${ROLES} roles × ${RANGES_PER_ROLE} ranges…\n`);
    const member = await startMember(dist);
    members.push(member);
    await setUp(member);
  }
  const profiles = flags.profile ? new Profiles() : undefined;
  const samples: Array<{ round: number; dist: string; mode: Mode } & RoundResult> = [];
  const modes = flags.modes;
  // Round -1 warms up every member and mode and is not counted.
  for (let round = -1; round < flags.rounds; round++) {
    const order = members.flatMap((member) => modes.map((mode) => ({ member, mode })));
    for (const { member, mode } of round % 2 === 0 ? order : order.reverse()) {
      const token = await setMode(member, mode);
      await drive(member, flags, token, SETTLE_SECONDS);
      await profiles?.start();
      const result = await drive(member, flags, token, flags.seconds);
      await profiles?.stop(round >= 0 ? `${member.dist} ${mode}` : undefined, result.requests + result.errors);
      if (round < 0) continue;
      samples.push({ round, dist: member.dist, mode, ...result });
      process.stderr.write(
        `round ${round} ${member.dist} ${mode.padEnd(4)} ${result.cpuMicrosPerRequest.toFixed(1)} µs CPU/req, p50 ${result.p50Ms.toFixed(2)} ms, ` +
          `${Math.round(result.requestsPerSecond)} req/s, GC ${result.gcMicrosPerRequest.toFixed(1)} µs/req${result.errors ? `, ${result.errors} errors` : ''}\n`,
      );
    }
  }
  // Per build and mode: medians of the rounds, and the medians of each round's own ratio to auth off.
  const summary = flags.builds.map((dist) => {
    const of = (mode: Mode, field: keyof RoundResult): number[] => samples.filter((s) => s.dist === dist && s.mode === mode).map((s) => s[field]);
    const round2 = (x: number): number => Number(x.toFixed(2));
    const pairedPercent = (mode: Mode, field: keyof RoundResult): number => {
      const off = of('off', field);
      return Number((100 * (median(of(mode, field).map((v, i) => v / off[i]!)) - 1)).toFixed(1));
    };
    const modesSummary = flags.modes.map((mode) => ({
      mode,
      cpuMicrosPerRequest: round2(median(of(mode, 'cpuMicrosPerRequest'))),
      p50Ms: round2(median(of(mode, 'p50Ms'))),
      gcMicrosPerRequest: round2(median(of(mode, 'gcMicrosPerRequest'))),
      ...(mode === 'off' || !flags.modes.includes('off')
        ? {}
        : {
            cpuCostMicros: round2(median(of(mode, 'cpuMicrosPerRequest')) - median(of('off', 'cpuMicrosPerRequest'))),
            pairedCpuCostPercent: pairedPercent(mode, 'cpuMicrosPerRequest'),
            pairedP50CostPercent: pairedPercent(mode, 'p50Ms'),
          }),
    }));
    return { dist, modes: modesSummary };
  });
  if (profiles) process.stderr.write(`${profiles.inclusiveReport(INCLUSIVE_PATTERN)}\n`);
  if (profiles) for (const dist of flags.builds) for (const mode of flags.modes.filter((m) => m !== 'off')) process.stderr.write(`${profiles.report(dist, mode, 30)}\n`);
  for (const member of members) await member.close();
  console.log(JSON.stringify({ startedAt, loadAverage: [loadBefore, loadavg()[0]], ...flags, node: process.version, summary, samples }, null, 1));
}

await main();
