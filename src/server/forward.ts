// Calls one member makes to another's client (gRPC) address. Lease keep-alives and
// time-to-live questions only the leader can answer (it alone runs the lease clocks), so a
// follower forwards them, as etcd forwards them over its peer HTTP API. And a member that has
// heard no leader for long asks the others whether it is still a member (see src/replica/replica.ts).
import type { ChannelCredentials, Client, ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { etcdClientConstructors } from '../api/grpc/proto.js';
import type { LeaseTimeToLiveResponse } from '../mvcc/types.js';
import { leaseNotFoundError } from '../mvcc/index.js';
import { ErrorCode, LichenError } from '../errors.js';
import { memberClientsMax } from '../limits.js';
import type { MemberHash } from './corruption.js';
import type { MembershipView } from '../replica/index.js';

interface KeepAliveReply {
  ID: string;
  TTL: string;
}


/** Lease calls that only the leader can answer, forwarded from followers. */
export interface LeaderForwarder {
  leaseKeepAlive(leaderClientAddress: string, id: number): Promise<number>;
  leaseTimeToLive(leaderClientAddress: string, id: number, keys: boolean): Promise<LeaseTimeToLiveResponse>;
}

type ServiceName = 'Lease' | 'Cluster' | 'Maintenance';

export class MemberCalls implements LeaderForwarder {
  private readonly clients = new Map<string, Client>();

  constructor(
    private readonly timeoutMs: number,
    /** TLS as the members' client listeners serve it (cleartext without client TLS). */
    private readonly credentials: ChannelCredentials,
  ) {}

  async leaseKeepAlive(address: string, id: number): Promise<number> {
    const client = this.client('Lease', address) as Client & { LeaseKeepAlive: () => ClientDuplexStream<{ ID: string }, KeepAliveReply> };
    const stream = client.LeaseKeepAlive();
    try {
      const reply = await new Promise<KeepAliveReply>((resolve, reject) => {
        const timer = setTimeout(() => reject(forwardTimeout()), this.timeoutMs);
        stream.once('data', (data: KeepAliveReply) => {
          clearTimeout(timer);
          resolve(data);
        });
        stream.once('error', (error: ServiceError) => {
          clearTimeout(timer);
          reject(forwardFailed(error));
        });
        stream.write({ ID: String(id) });
      });
      const ttl = Number(reply.TTL);
      if (ttl <= 0) throw leaseNotFoundError(id);
      return ttl;
    } finally {
      stream.cancel();
    }
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
      client = new (etcdClientConstructors()[service])(address, this.credentials);
      this.clients.set(key, client);
    }
    return client;
  }
}

function forwardTimeout(): LichenError {
  return new LichenError(ErrorCode.Timeout, 'request timed out (forwarding to the leader)', { etcdError: 'timeout' });
}

function forwardFailed(error: ServiceError): LichenError {
  // NOT_FOUND is the leader's "lease not found"; anything else means the leader was unreachable.
  if (error.code === 5) return new LichenError(ErrorCode.LeaseNotFound, 'the leader does not know the lease', { etcdError: 'leaseNotFound' });
  return new LichenError(ErrorCode.Unavailable, `cannot reach the leader: ${error.details || error.message}`);
}
