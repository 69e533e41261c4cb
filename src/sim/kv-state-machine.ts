// The replicated state machine the simulator runs: a small key-value map with put, delete and
// compare-and-swap commands, plus a session table that makes retried commands exactly-once.
//
// Clients retry a write on another node when they time out, with the same request id, so the same
// command can be committed twice. Each client has at most one request outstanding and numbers
// them in order; the state machine remembers each client's last request id and its result. A
// repeat of that id returns the remembered result without running again; an older id (a retry
// that lost a race with the client's next request) has no effect, which is allowed because the
// client had already recorded that request's outcome as unknown.

import type { KvInput, KvOutput } from '../check/index.js';
import { Hasher } from './hash.js';

export interface Command {
  clientId: number;
  requestId: number;
  op: KvInput;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(command: Command): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

export function decodeCommand(data: Uint8Array): Command {
  return JSON.parse(decoder.decode(data)) as Command;
}

interface Session {
  requestId: number;
  result: KvOutput;
}

/** What applying one command did. `duplicate` is set when the session table answered it. */
export interface ApplyOutcome {
  command: Command;
  result: KvOutput;
  /** 'fresh': ran now. 'repeat': the same request ran before. 'stale': an older request, ignored. */
  kind: 'fresh' | 'repeat' | 'stale';
}

export class KvStateMachine {
  private map = new Map<string, string>();
  private sessions = new Map<number, Session>();
  appliedIndex = 0;

  applyCommand(index: number, data: Uint8Array): ApplyOutcome | undefined {
    this.appliedIndex = index;
    // An empty entry is a new leader's no-op.
    if (data.length === 0) return undefined;
    const command = decodeCommand(data);
    const session = this.sessions.get(command.clientId);
    if (session !== undefined && command.requestId === session.requestId) {
      return { command, result: session.result, kind: 'repeat' };
    }
    if (session !== undefined && command.requestId < session.requestId) {
      return { command, result: {}, kind: 'stale' };
    }
    const result = this.run(command.op);
    this.sessions.set(command.clientId, { requestId: command.requestId, result });
    return { command, result, kind: 'fresh' };
  }

  /** Marks a non-command entry (a membership change) as applied. */
  skip(index: number): void {
    this.appliedIndex = index;
  }

  private run(op: KvInput): KvOutput {
    switch (op.kind) {
      case 'get':
        // Reads go through ReadIndex, not the log, but a logged read would still be well defined.
        return { value: this.map.get(op.key) };
      case 'put':
        this.map.set(op.key, op.value);
        return {};
      case 'delete':
        this.map.delete(op.key);
        return {};
      case 'cas': {
        const ok = this.map.get(op.key) === op.expected;
        if (ok) this.map.set(op.key, op.value);
        return { ok };
      }
    }
  }

  read(key: string): string | undefined {
    return this.map.get(key);
  }

  /** A canonical encoding (sorted), so equal states encode to equal bytes on every node. */
  snapshotData(): Uint8Array {
    return encoder.encode(this.canonical());
  }

  static fromSnapshot(data: Uint8Array, index: number): KvStateMachine {
    const sm = new KvStateMachine();
    sm.appliedIndex = index;
    if (data.length === 0) return sm;
    const parsed = JSON.parse(decoder.decode(data)) as {
      map: [string, string][];
      sessions: [number, number, KvOutput][];
    };
    for (const [k, v] of parsed.map) sm.map.set(k, v);
    for (const [c, r, result] of parsed.sessions) sm.sessions.set(c, { requestId: r, result });
    return sm;
  }

  /** A short fingerprint of the whole state, compared across nodes at each applied index. */
  digest(): string {
    return new Hasher().string(this.canonical()).digest();
  }

  private canonical(): string {
    const map = [...this.map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const sessions = [...this.sessions.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([c, s]) => [c, s.requestId, s.result]);
    return JSON.stringify({ map, sessions });
  }
}
