// Calls one member makes to another's client (gRPC) address. Lease keep-alives and
// time-to-live questions only the leader can answer (it alone runs the lease clocks), so a
// follower forwards them, as etcd forwards them over its peer HTTP API. And a member that has
// heard no leader for long asks the others whether it is still a member (see src/replica/replica.ts).
import type { ChannelCredentials, Client, ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { etcdClientConstructors } from '../api/grpc/proto.js';
import { fastLeaseClientConstructor } from '../api/grpc/kv-codec.js';
import type { LeaseTimeToLiveResponse } from '../mvcc/types.js';
import { leaseNotFoundError } from '../mvcc/index.js';
import { ErrorCode, LichenError } from '../errors.js';
import { memberClientsMax } from '../limits.js';
import type { MemberHash } from './corruption.js';
import type { MembershipView } from '../replica/index.js';

/** As the keep-alive codec decodes it: numbers (a decimal string only beyond 2^53). */
interface KeepAliveReply {
  ID: number | string;
  TTL: number | string;
}


/** Lease calls that only the leader can answer, forwarded from followers. */
export interface LeaderForwarder {
  leaseKeepAlive(leaderClientAddress: string, id: number): Promise<number>;
  leaseTimeToLive(leaderClientAddress: string, id: number, keys: boolean): Promise<LeaseTimeToLiveResponse>;
}

type ServiceName = 'Lease' | 'Cluster' | 'Maintenance';

/** Keep-alive streams a member keeps open to the leader for the renewals it forwards. */
const KEEPALIVE_FORWARD_STREAMS = 8;

export class MemberCalls implements LeaderForwarder {
  private readonly clients = new Map<string, Client>();
  /** Open keep-alive streams to each leader address (see leaseKeepAlive). */
  private readonly keepAliveStreams = new Map<string, ForwardedKeepAlives[]>();

  constructor(
    private readonly timeoutMs: number,
    /** TLS as the members' client listeners serve it (cleartext without client TLS). */
    private readonly credentials: ChannelCredentials,
  ) {}

  /**
   * Renews a lease at the leader over keep-alive streams kept open to its address and shared by
   * every keep-alive this member forwards: a renewal goes to the stream with the fewest waiting,
   * and a new stream opens only while all are busy, up to KEEPALIVE_FORWARD_STREAMS. (A stream
   * opened and cancelled per keep-alive cost a grpc-js call setup each time; one shared stream
   * sends a single message per socket write, so its queue grew with the load.)
   */
  leaseKeepAlive(address: string, id: number): Promise<number> {
    const streams = this.keepAliveStreams.get(address) ?? [];
    this.keepAliveStreams.set(address, streams);
    let stream = streams.reduce<ForwardedKeepAlives | undefined>((least, s) => (least && least.waitingCount <= s.waitingCount ? least : s), undefined);
    if (!stream || (stream.waitingCount > 0 && streams.length < KEEPALIVE_FORWARD_STREAMS)) {
      const client = this.client('Lease', address) as Client & { LeaseKeepAlive: () => ClientDuplexStream<{ ID: number }, KeepAliveReply> };
      const opened = new ForwardedKeepAlives(client.LeaseKeepAlive(), this.timeoutMs, () => {
        const index = streams.indexOf(opened);
        if (index >= 0) streams.splice(index, 1);
      });
      streams.push(opened);
      stream = opened;
    }
    return stream.renew(id);
  }

  async leaseTimeToLive(address: string, id: number, keys: boolean): Promise<LeaseTimeToLiveResponse> {
    type Reply = { ID: string; TTL: string; grantedTTL: string; keys: Buffer[] };
    const client = this.client('Lease', address) as Client & {
      LeaseTimeToLive: (req: object, options: object, callback: (e: ServiceError | null, r: Reply) => void) => void;
    };
    const reply = await new Promise<Reply>((resolve, reject) => {
      client.LeaseTimeToLive({ ID: String(id), keys }, { deadline: Date.now() + this.timeoutMs }, (error, response) =>
        error ? reject(forwardFailed(error)) : resolve(response),
      );
    });
    return { ID: Number(reply.ID), TTL: Number(reply.TTL), grantedTTL: Number(reply.grantedTTL), keys: reply.keys };
  }

  async membership(address: string): Promise<MembershipView> {
    type Unary = (req: object, options: object, callback: (e: ServiceError | null, r: any) => void) => void;
    const call = <T>(service: ServiceName, method: string): Promise<T> => {
      const client = this.client(service, address) as unknown as Record<string, Unary>;
      return new Promise<T>((resolve, reject) =>
        client[method]!.call(client, {}, { deadline: Date.now() + this.timeoutMs }, (error, response) =>
          error ? reject(forwardFailed(error)) : resolve(response as T),
        ),
      );
    };
    const status = await call<{ raftAppliedIndex: string }>('Maintenance', 'Status');
    const list = await call<{ members: { ID: string }[] }>('Cluster', 'MemberList');
    return { appliedIndex: Number(status.raftAppliedIndex), memberIds: list.members.map((m) => Number(m.ID)) };
  }

  /** Another member's HashKV at `revision` (for the corruption checks in corruption.ts). */
  async hashKV(address: string, revision: number): Promise<MemberHash> {
    type Reply = { header: { member_id: string; revision: string }; hash: number; compact_revision: string };
    const client = this.client('Maintenance', address) as unknown as {
      HashKV: (req: object, options: object, callback: (e: ServiceError | null, r: Reply) => void) => void;
    };
    const reply = await new Promise<Reply>((resolve, reject) => {
      client.HashKV({ revision }, { deadline: Date.now() + this.timeoutMs }, (error, response) =>
        error ? reject(new LichenError(ErrorCode.Unavailable, error.details || error.message)) : resolve(response),
      );
    });
    return {
      memberId: Number(reply.header.member_id),
      hash: reply.hash,
      revision: Number(reply.header.revision),
      compactRevision: Number(reply.compact_revision),
    };
  }

  close(): void {
    for (const streams of this.keepAliveStreams.values()) {
      for (const stream of [...streams]) stream.close(leaderUnreachable('the member is stopping'));
    }
    this.keepAliveStreams.clear();
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private client(service: ServiceName, address: string): Client {
    const key = `${service} ${address}`;
    let client = this.clients.get(key);
    if (!client) {
      if (this.clients.size >= memberClientsMax) {
        const [oldest, oldClient] = this.clients.entries().next().value as [string, Client];
        oldClient.close();
        this.clients.delete(oldest);
      }
      // Lease: forwarded keep-alives go through Lichen's keep-alive codec, not protobufjs.
      const Client = service === 'Lease' ? fastLeaseClientConstructor() : etcdClientConstructors()[service];
      client = new Client(address, this.credentials);
      this.clients.set(key, client);
    }
    return client;
  }
}

/**
 * Keep-alives forwarded over one stream to the leader. The leader answers a stream's requests in
 * the order they came (src/api/grpc/lease.ts), so each reply belongs to the oldest request still
 * waiting. A request that waits longer than the timeout, or an error on the stream, closes the
 * stream and fails every request on it (a late reply could no longer be matched); the next
 * keep-alive opens a new one.
 */
class ForwardedKeepAlives {
  private readonly waiting: { id: number; resolve(ttl: number): void; reject(error: LichenError): void; timer: NodeJS.Timeout }[] = [];
  private closed = false;

  get waitingCount(): number {
    return this.waiting.length;
  }

  constructor(
    private readonly stream: ClientDuplexStream<{ ID: number }, KeepAliveReply>,
    private readonly timeoutMs: number,
    private readonly onClosed: () => void,
  ) {
    stream.on('data', (reply: KeepAliveReply) => this.answer(reply));
    stream.on('error', (error: ServiceError) => this.close(forwardFailed(error)));
    stream.on('end', () => this.close(leaderUnreachable('the leader ended the keep-alive stream')));
  }

  renew(id: number): Promise<number> {
    if (this.closed) return Promise.reject(leaderUnreachable('the keep-alive stream is closed'));
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => this.close(forwardTimeout()), this.timeoutMs);
      this.waiting.push({ id, resolve, reject, timer });
      this.stream.write({ ID: id });
    });
  }

  close(error: LichenError): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed();
    this.stream.cancel();
    for (const request of this.waiting.splice(0)) {
      clearTimeout(request.timer);
      request.reject(error);
    }
  }

  private answer(reply: KeepAliveReply): void {
    const request = this.waiting.shift();
    if (!request) return this.close(leaderUnreachable('the leader answered a keep-alive that was not asked'));
    clearTimeout(request.timer);
    const ttl = Number(reply.TTL);
    if (ttl > 0) request.resolve(ttl);
    else request.reject(leaseNotFoundError(request.id));
  }
}

function forwardTimeout(): LichenError {
  return new LichenError(ErrorCode.Timeout, 'request timed out (forwarding to the leader)', { etcdError: 'timeout' });
}

function forwardFailed(error: ServiceError): LichenError {
  // NOT_FOUND is the leader's "lease not found"; anything else means the leader was unreachable.
  if (error.code === 5) return new LichenError(ErrorCode.LeaseNotFound, 'the leader does not know the lease', { etcdError: 'leaseNotFound' });
  return leaderUnreachable(error.details || error.message);
}

function leaderUnreachable(reason: string): LichenError {
  return new LichenError(ErrorCode.Unavailable, `cannot reach the leader: ${reason}`);
}
