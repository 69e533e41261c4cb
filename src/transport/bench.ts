// Peer transport benchmark: two TcpTransports in one process on 127.0.0.1.
//   round trips: A sends App (one entry) → B answers AppResp → A sends the next, one at a time.
//   throughput:  A streams App messages (one entry each) with a bounded number in flight; B counts.
// Prints one JSON object. Usage: node --import tsx src/transport/bench.ts [seconds=2] [entryBytes=1024]
import type { Message } from '../raft/types.js';
import { TcpTransport } from './tcp.js';

const seconds = Number(process.argv[2] ?? 2);
const entryBytes = Number(process.argv[3] ?? 1024);
/** Messages sent per send() call in the throughput phase (what one raft Ready might carry). */
const BATCH = 64;
/** Messages in flight before the sender waits for the receiver's acknowledgement. */
const WINDOW = 4096;

const data = Buffer.alloc(entryBytes, 0x61);

function app(index: number): Message {
  return {
    type: 'App',
    from: 1,
    to: 2,
    term: 1,
    prevLogIndex: index - 1,
    prevLogTerm: 1,
    commit: index - 1,
    entries: [{ term: 1, index, type: 0, data }],
  };
}

function ack(index: number): Message {
  return { type: 'AppResp', from: 2, to: 1, term: 1, reject: false, index, rejectHint: 0, hintTerm: 0 };
}

let onA: (m: Message) => void = () => {};
let onB: (m: Message) => void = () => {};
const a = new TcpTransport({ id: 1, clusterId: 1, listen: { host: '127.0.0.1', port: 0 }, onMessage: (m) => onA(m), sendQueueMax: WINDOW * 2 });
const b = new TcpTransport({ id: 2, clusterId: 1, listen: { host: '127.0.0.1', port: 0 }, onMessage: (m) => onB(m), sendQueueMax: WINDOW * 2 });
await a.start();
await b.start();
a.addPeer(2, `127.0.0.1:${b.address.port}`);
b.addPeer(1, `127.0.0.1:${a.address.port}`);

function roundTrips(): Promise<number> {
  return new Promise((resolve) => {
    let done = 0;
    const deadline = performance.now() + seconds * 1000;
    onB = (m) => b.send([ack((m as { prevLogIndex: number }).prevLogIndex + 1)]);
    onA = () => {
      done++;
      if (performance.now() < deadline) a.send([app(done + 1)]);
      else resolve(done);
    };
    a.send([app(1)]);
  });
}

function throughput(): Promise<number> {
  return new Promise((resolve) => {
    let sent = 0;
    let received = 0;
    let acked = 0;
    let stopped = false;
    const deadline = performance.now() + seconds * 1000;
    // B acknowledges every BATCH messages so A can keep a bounded window in flight.
    onB = () => {
      received++;
      if (received % BATCH === 0) b.send([ack(received)]);
    };
    const pump = (): void => {
      if (performance.now() >= deadline) {
        stopped = true;
        return resolve(received);
      }
      while (sent - acked < WINDOW) {
        a.send(Array.from({ length: BATCH }, (_, i) => app(sent + i + 1)));
        sent += BATCH;
      }
    };
    onA = (m) => {
      acked = (m as { index: number }).index;
      if (!stopped) pump();
    };
    pump();
  });
}

await roundTrips(); // warm-up: connections, JIT
const rtStart = performance.now();
const rt = await roundTrips();
const rtSeconds = (performance.now() - rtStart) / 1000;
const tpStart = performance.now();
const messages = await throughput();
const tpSeconds = (performance.now() - tpStart) / 1000;
console.log(
  JSON.stringify({
    bench: 'transport-tcp',
    entryBytes,
    seconds,
    roundTripsPerSec: Math.round(rt / rtSeconds),
    messagesPerSec: Math.round(messages / tpSeconds),
    payloadMiBPerSec: Math.round(((messages / tpSeconds) * entryBytes) / (1024 * 1024)),
    batch: BATCH,
    window: WINDOW,
    droppedA: a.stats().peers[2]!.dropped,
  }),
);
await a.close();
await b.close();
