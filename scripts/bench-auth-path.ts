// The cost of etcd authentication on one member's request path: a single-member Lichen cluster
// (raft, WAL, lmdb, the gRPC server) started in this process from a build, with the user of
// scripts/bench-auth.ts (1,000 roles of 10 key ranges each, 10,000 disjoint ranges after merging),
// driven over loopback by a minimal HTTP/2 client written for this script, in a process of its
// own (so this process's CPU time is the member's alone; --client-core puts it on another core):
// its requests are encoded once, and its header blocks are what etcd's Go client (grpc-go) sends:
// every field added to HPACK's dynamic table on a connection's first request, then indexed (the
// `token` field too). So the client costs little and the same in both modes, and what changes
// between auth off and on is the member's work: reading the token, finding its user, the
// permission check (at the API for a range, at apply for a put), and whatever else the
// authenticated path does. Auth is switched on and off on the same member (as bench-auth.ts does
// on its cluster). Each round runs every scenario in both modes, one window right after the other,
// the order alternating (ABBA); a window reports the member's CPU time per request
// (process.cpuUsage: all of its threads; time spent waiting for a core does not count), the
// median latency and the GC pause time per request. Per scenario the figure is the median of the
// rounds' own ratios (user / off) with a distribution-free 95% interval of that median (order
// statistics) and the quartiles: the interval says whether the run can decide a 5% target.
// Prints one JSON object.
//
//   npm run build && taskset -c 0 node --expose-gc --import tsx scripts/bench-auth-path.ts --client-core 1
//     [--builds dist[,<other>/dist]] [--scenarios put-1,put-64,range-1,range-64] [--modes off,user[,root]]
//     [--rounds 20] [--seconds 1] [--settle 0.3] [--twin true] [--profile true]
//
// --scenarios: op-callers; put (a 256-byte value) or linearizable range of one key of 10,000, by N
// callers on min(N, 8) connections. --modes: off (auth disabled, no token), user (the 1,000-role
// user's token: identification and the search of its 10,000 ranges), root (root's token:
// identification, no range search). --settle: seconds of unmeasured requests after each switch of
// mode (the first check after it rebuilds the merged ranges: 7–17 ms). --builds: the dist/
// folders of the builds to measure (inside a checkout, so their packages resolve): each gets its
// own member in this process, and the rounds go over every build and mode.
// --twin true: two members of one build in this process, auth off on one and on on the other;
// windows alternate between them with no switch in between (so they can be short, e.g.
// --seconds 0.2, and many: the machine's load changes less between two of them), and halfway the
// two swap modes (each half starts with a warm-up round), so a difference between the members
// counts for both modes alike. On a shared machine this is the steadier figure.
// With --expose-gc, a minor collection runs before each window (not counted), so that each
// window starts with an empty young generation.
// --profile true: this process is sampled (node:inspector, every 100 µs) during each measured
// window; printed per build (stderr): the inclusive time per request of auth's functions and the
// request path around them, and the functions whose self time per request differs most between
// auth off and each other mode. The samples are wall-clock time of the thread: on a loaded
// machine they include time it waited for a core, so compare modes and builds of one run only.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector';
import { connect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
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
/** Connections a scenario's callers share at most (bench-auth.ts: 64 clients on 8 connections). */
const CONNECTIONS_MAX = 8;
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

// ------------------------------------------------------------------------------ the client process

interface DriveCommand {
  port: number;
  op: Op;
  clients: number;
  conns: number;
  token: string | undefined;
  seconds: number;
}

interface DriveResult {
  requests: number;
  errors: number;
  p50Ms: number;
  elapsedMs: number;
}

/**
 * The client side (`--client true`): reads one DriveCommand per line on stdin, opens its
 * connections, writes {"started":true}, runs the callers for the command's seconds and writes a
 * DriveResult. It runs in a process of its own so that the member's process CPU time is the
 * member's alone (and can be on another core: --client-core).
 */
async function clientMain(): Promise<void> {
  const bodies = new Map<Op, Buffer[]>();
  const open = new Map<string, RawGrpcConnection[]>();
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const command = JSON.parse(line) as DriveCommand;
    const fields: Array<[string, string]> = [
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', command.op === 'range' ? '/etcdserverpb.KV/Range' : '/etcdserverpb.KV/Put'],
      [':authority', `127.0.0.1:${command.port}`],
      ['content-type', 'application/grpc'],
      ['user-agent', 'grpc-go/1.26.0'],
      ['te', 'trailers'],
      ...(command.token === undefined ? [] : ([['token', command.token]] as Array<[string, string]>)),
    ];
    // Connections are kept for the next window to the same member with the same token (with
    // --twin, windows alternate between two members many times a second).
    const reuse = `${command.port} ${command.token} ${command.op} ${command.conns}`;
    let connections = open.get(reuse);
    if (!connections || connections.some((c) => c.failure !== undefined)) {
      for (const connection of connections ?? []) connection.close();
      connections = await Promise.all(Array.from({ length: command.conns }, () => RawGrpcConnection.open(command.port, fields)));
      // Every connection's first call carries its literal header fields: made before the window.
      await Promise.all(connections.map((connection) => connection.call(requestBody(command.op, keyOf(0)))));
      open.set(reuse, connections);
    }
    let opBodies = bodies.get(command.op);
    if (!opBodies) bodies.set(command.op, (opBodies = Array.from({ length: KEYS }, (_u, n) => requestBody(command.op, keyOf(n)))));
    const latencies: number[] = [];
    let requests = 0;
    let errors = 0;
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fff_ffff;
      return seed;
    };
    process.stdout.write('{"started":true}\n');
    const start = performance.now();
    const deadline = start + command.seconds * 1000;
    await Promise.all(
      Array.from({ length: command.clients }, async (_u, c) => {
        const connection = connections[c % connections.length]!;
        while (performance.now() < deadline) {
          const sent = performance.now();
          const ok = await connection.call(opBodies[random() % KEYS]!);
          latencies.push(performance.now() - sent);
          if (ok) requests++;
          else errors++;
          if (connection.failure) throw new Error(connection.failure);
        }
      }),
    );
    const result: DriveResult = { requests, errors, p50Ms: median(latencies), elapsedMs: performance.now() - start };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  for (const connections of open.values()) for (const connection of connections) connection.close();
}

/** The client process, seen from the member's: one drive at a time. */
class ClientProcess {
  private readonly child: ChildProcess;
  private readonly messages: string[] = [];
  private waiting: ((line: string) => void) | undefined;
  private exited: Error | undefined;
  private failWaiting: ((error: Error) => void) | undefined;

  constructor(core: string | undefined) {
    const args = [...process.execArgv, fileURLToPath(import.meta.url), '--client', 'true'];
    const [command, ...rest] = core === undefined ? [process.execPath, ...args] : ['taskset', '-c', core, process.execPath, ...args];
    this.child = spawn(command!, rest, { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const waiting = this.waiting;
      this.waiting = undefined;
      if (waiting) waiting(line);
      else this.messages.push(line);
    });
    this.child.once('exit', (code) => {
      this.exited = new Error(`the client process exited (${code})`);
      this.failWaiting?.(this.exited);
    });
  }

  private next(): Promise<string> {
    const line = this.messages.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolveLine, reject) => {
      this.waiting = resolveLine;
      this.failWaiting = reject;
    });
  }

  /** Runs one drive; `onStarted` is called when the client's measured window opens. */
  async drive(command: DriveCommand, onStarted: () => void): Promise<DriveResult> {
    this.child.stdin!.write(`${JSON.stringify(command)}\n`);
    await this.next();
    onStarted();
    return JSON.parse(await this.next()) as DriveResult;
  }

  close(): void {
    this.child.stdin!.end();
  }
}

// ------------------------------------------------------------------------------ measuring

interface Scenario {
  name: string;
  op: Op;
  clients: number;
  conns: number;
}

/** "range-64": 64 callers of range on 8 connections (as bench-auth.ts); "put-1": one caller on one connection. */
function scenarioOf(name: string): Scenario {
  const match = /^(range|put)-(\d+)$/.exec(name);
  if (!match) throw new Error(`--scenarios: "${name}" is not range-N or put-N`);
  const clients = Number(match[2]);
  return { name, op: match[1] as Op, clients, conns: Math.min(clients, CONNECTIONS_MAX) };
}

interface Flags {
  builds: string[];
  scenarios: Scenario[];
  seconds: number;
  settleSeconds: number;
  rounds: number;
  modes: Mode[];
  profile: boolean;
  clientCore: string | undefined;
  twin: boolean;
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

/** One window of `seconds` with `token` (none: no token header); the CPU time is this process's: the member's. */
async function drive(client: ClientProcess, member: Member, scenario: Scenario, token: string | undefined, seconds: number): Promise<RoundResult> {
  // With --expose-gc, every window starts with an empty young generation: how many scavenges
  // fall into a short window then depends on what it allocates, not on where the last one left off.
  (globalThis as { gc?: (options: { type: 'minor' }) => void }).gc?.({ type: 'minor' });
  let startCpu = process.cpuUsage();
  let startGcMs = gcMs;
  const result = await client.drive({ port: member.port, op: scenario.op, clients: scenario.clients, conns: scenario.conns, token, seconds }, () => {
    startCpu = process.cpuUsage();
    startGcMs = gcMs;
  });
  const cpu = process.cpuUsage(startCpu);
  const calls = Math.max(1, result.requests + result.errors);
  return {
    requests: result.requests,
    errors: result.errors,
    cpuMicrosPerRequest: (cpu.user + cpu.system) / calls,
    gcMicrosPerRequest: ((gcMs - startGcMs) * 1000) / calls,
    p50Ms: result.p50Ms,
    requestsPerSecond: ((result.requests + result.errors) * 1000) / result.elapsedMs,
  };
}

/**
 * The median of `values` with a distribution-free confidence interval of at least 95% (order
 * statistics: the interval [x(k), x(n+1-k)] holds the true median unless at least n+1-k values
 * fall on one side of it, a binomial tail), and the quartiles. Undefined bounds below 6 values.
 */
function medianWithInterval(values: readonly number[]): { median: number; low?: number; high?: number; confidence?: number; q1: number; q3: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const quantile = (q: number): number => {
    const at = q * (n - 1);
    const below = Math.floor(at);
    return sorted[below]! + (sorted[Math.min(n - 1, below + 1)]! - sorted[below]!) * (at - below);
  };
  // P(B <= j) for B ~ Binomial(n, 1/2), summed in logs so large n does not overflow.
  const logChoose = (j: number): number => {
    let sum = 0;
    for (let i = 1; i <= j; i++) sum += Math.log((n - j + i) / i);
    return sum;
  };
  let tail = 0;
  let k = 0;
  for (let j = 0; j < n; j++) {
    const next = tail + Math.exp(logChoose(j) - n * Math.LN2);
    if (next > 0.025) break;
    tail = next;
    k = j + 1;
  }
  const base = { median: quantile(0.5), q1: quantile(0.25), q3: quantile(0.75) };
  if (k === 0) return base;
  return { ...base, low: sorted[k - 1]!, high: sorted[n - k]!, confidence: 1 - 2 * tail };
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
  if (args.get('client') === 'true') return clientMain();
  const flags: Flags = {
    builds: (args.get('builds') ?? 'dist').split(','),
    scenarios: (args.get('scenarios') ?? 'range-64').split(',').map(scenarioOf),
    seconds: args.number('seconds', 1),
    settleSeconds: args.number('settle', 0.3),
    rounds: args.number('rounds', 20),
    modes: args.list<Mode>('modes', 'off,user', ['off', 'user', 'root']),
    profile: args.get('profile') === 'true',
    clientCore: args.get('client-core'),
    twin: args.get('twin') === 'true',
  };
  if (flags.twin && (flags.builds.length !== 1 || flags.modes.length !== 2 || flags.modes[0] !== 'off')) throw new Error('--twin true takes one build and --modes off,user (or off,root)');
  const loadBefore = loadavg()[0]!;
  const startedAt = new Date().toISOString();
  const members: Member[] = [];
  for (const dist of flags.twin ? [flags.builds[0]!, flags.builds[0]!] : flags.builds) {
    process.stderr.write(`${dist}: starting a member and setting up ${ROLES} roles × ${RANGES_PER_ROLE} ranges…\n`);
    const member = await startMember(dist);
    members.push(member);
    await setUp(member);
  }
  const client = new ClientProcess(flags.clientCore);
  const profiles = flags.profile ? new Profiles() : undefined;
  const samples: Array<{ round: number; dist: string; member: number; scenario: string; mode: Mode } & RoundResult> = [];
  /** One measured window (a warm-up one when round < 0: shorter, not kept). */
  const measure = async (round: number, member: Member, scenario: Scenario, mode: Mode, token: string | undefined): Promise<void> => {
    if (round < 0) {
      await drive(client, member, scenario, token, flags.settleSeconds);
      return;
    }
    await profiles?.start();
    const result = await drive(client, member, scenario, token, flags.seconds);
    const label = `${member.dist} ${scenario.name} ${mode}`;
    await profiles?.stop(label, result.requests + result.errors);
    samples.push({ round, dist: member.dist, member: members.indexOf(member), scenario: scenario.name, mode, ...result });
    process.stderr.write(
      `round ${round} ${label.padEnd(20)} ${result.cpuMicrosPerRequest.toFixed(1)} µs CPU/req, p50 ${result.p50Ms.toFixed(3)} ms, ` +
        `${Math.round(result.requestsPerSecond)} req/s, GC ${result.gcMicrosPerRequest.toFixed(1)} µs/req${result.errors ? `, ${result.errors} errors` : ''}\n`,
    );
  };
  // The order of modes alternates from one scenario to the next and from one round to the next
  // (ABBA), so that neither mode always comes first.
  let reverse = false;
  const nextOrder = <T>(order: T[]): T[] => {
    if (reverse) order.reverse();
    reverse = !reverse;
    return order;
  };
  if (flags.twin) {
    // Two members of one build, one with auth off and one with it on: windows alternate between
    // them with no switch in between, so they can be short and many (the machine's load changes
    // less between two of them). Halfway the members swap modes, so that whatever differs
    // between the two members counts for both modes alike. Each half starts with a warm-up round.
    const on = flags.modes.find((mode) => mode !== 'off') ?? 'user';
    const half = Math.ceil(flags.rounds / 2);
    for (let phase = 0; phase < 2; phase++) {
      const offMember = members[phase]!;
      const onMember = members[1 - phase]!;
      await setMode(offMember, 'off');
      const token = await setMode(onMember, on);
      for (let round = -1; round < half; round++) {
        for (const scenario of flags.scenarios) {
          for (const [member, mode, t] of nextOrder<[Member, Mode, string | undefined]>([[offMember, 'off', undefined], [onMember, on, token]])) {
            await measure(round < 0 ? round : phase * half + round, member, scenario, mode, t);
          }
        }
        if (flags.scenarios.length % 2 === 0) reverse = !reverse;
      }
    }
  } else {
    // Within a round every scenario runs every build and mode, auth switched on the member before
    // each window (a mode is switched once per scenario). Round -1 warms up and is not counted.
    for (let round = -1; round < flags.rounds; round++) {
      for (const scenario of flags.scenarios) {
        for (const { member, mode } of nextOrder(members.flatMap((member) => flags.modes.map((mode) => ({ member, mode }))))) {
          const token = await setMode(member, mode);
          await drive(client, member, scenario, token, flags.settleSeconds);
          await measure(round, member, scenario, mode, token);
        }
      }
      // With an even number of scenarios a round ends where it started: flip once more.
      if (flags.scenarios.length % 2 === 0) reverse = !reverse;
    }
  }
  client.close();
  // Per build, scenario and mode: medians of the rounds, and each round's own ratio to auth off
  // (the two windows of a round run back to back), as a median with its confidence interval.
  const round3 = (x: number | undefined): number | undefined => (x === undefined ? undefined : Number(x.toFixed(3)));
  const percent = (x: number | undefined): number | undefined => (x === undefined ? undefined : Number((100 * (x - 1)).toFixed(1)));
  const summary = flags.builds.flatMap((dist) =>
    flags.scenarios.map((scenario) => {
      const of = (mode: Mode, field: keyof RoundResult): number[] =>
        samples.filter((s) => s.dist === dist && s.scenario === scenario.name && s.mode === mode).map((s) => s[field]);
      const paired = (mode: Mode, field: keyof RoundResult): object => {
        const off = of('off', field);
        const ratios = of(mode, field).map((v, i) => v / off[i]!);
        const m = medianWithInterval(ratios);
        return {
          medianPercent: percent(m.median),
          interval95Percent: m.low === undefined ? undefined : [percent(m.low), percent(m.high)],
          intervalConfidence: round3(m.confidence),
          quartilesPercent: [percent(m.q1), percent(m.q3)],
          roundsAbove: ratios.filter((r) => r > 1).length,
          rounds: ratios.length,
        };
      };
      return {
        dist,
        scenario: scenario.name,
        modes: flags.modes.map((mode) => ({
          mode,
          cpuMicrosPerRequest: round3(median(of(mode, 'cpuMicrosPerRequest'))),
          p50Ms: round3(median(of(mode, 'p50Ms'))),
          requestsPerSecond: Math.round(median(of(mode, 'requestsPerSecond'))),
          gcMicrosPerRequest: round3(median(of(mode, 'gcMicrosPerRequest'))),
          ...(mode === 'off' || !flags.modes.includes('off')
            ? {}
            : {
                cpuCostMicros: round3(median(of(mode, 'cpuMicrosPerRequest').map((v, i) => v - of('off', 'cpuMicrosPerRequest')[i]!))),
                pairedCpuCost: paired(mode, 'cpuMicrosPerRequest'),
                pairedP50Cost: paired(mode, 'p50Ms'),
              }),
        })),
      };
    }),
  );
  if (profiles) process.stderr.write(`${profiles.inclusiveReport(INCLUSIVE_PATTERN)}\n`);
  if (profiles)
    for (const dist of flags.builds)
      for (const scenario of flags.scenarios)
        for (const mode of flags.modes.filter((m) => m !== 'off')) process.stderr.write(`${profiles.report(`${dist} ${scenario.name}`, mode, 30)}\n`);
  for (const member of members) await member.close();
  const { scenarios, ...rest } = flags;
  console.log(
    JSON.stringify(
      { startedAt, endedAt: new Date().toISOString(), loadAverage: [loadBefore, loadavg()[0]], ...rest, scenarios: scenarios.map((s) => s.name), node: process.version, summary, samples },
      null,
      1,
    ),
  );
}

await main();
