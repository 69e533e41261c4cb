// Lease keep-alives and time-to-live questions only the leader can answer (it alone runs the
// lease clocks). A follower forwards them to the leader's client address over gRPC, as etcd
// forwards them over its peer HTTP API.
import { credentials, type Client, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { etcdClientConstructors } from '../api/grpc/proto.js';
import type { LeaseTimeToLiveResponse } from '../mvcc/types.js';
import { ErrorCode, LichenError } from '../errors.js';
import type { LeaderForwarder } from './backend.js';

/** Leader connections kept open at once; a new leader's replaces the oldest. */
const LEADER_CLIENTS_MAX = 4;

interface KeepAliveReply {
  ID: string;
  TTL: string;
}

export class GrpcLeaderForwarder implements LeaderForwarder {
  private readonly clients = new Map<string, Client>();

  constructor(private readonly timeoutMs: number) {}

  async leaseKeepAlive(address: string, id: number): Promise<number> {
    const client = this.client(address) as Client & { LeaseKeepAlive: () => ClientDuplexStream<{ ID: string }, KeepAliveReply> };
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
      if (ttl <= 0) throw new LichenError(ErrorCode.LeaseNotFound, 'etcdserver: requested lease not found');
      return ttl;
    } finally {
      stream.cancel();
    }
  }

  async leaseTimeToLive(address: string, id: number, keys: boolean): Promise<LeaseTimeToLiveResponse> {
    type Reply = { ID: string; TTL: string; grantedTTL: string; keys: Buffer[] };
    const client = this.client(address) as Client & {
      LeaseTimeToLive: (req: object, options: object, callback: (e: ServiceError | null, r: Reply) => void) => void;
    };
    const reply = await new Promise<Reply>((resolve, reject) => {
      client.LeaseTimeToLive({ ID: String(id), keys }, { deadline: Date.now() + this.timeoutMs }, (error, response) =>
        error ? reject(forwardFailed(error)) : resolve(response),
      );
    });
    return { ID: Number(reply.ID), TTL: Number(reply.TTL), grantedTTL: Number(reply.grantedTTL), keys: reply.keys };
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private client(address: string): Client {
    let client = this.clients.get(address);
    if (!client) {
      if (this.clients.size >= LEADER_CLIENTS_MAX) {
        const [oldest, oldClient] = this.clients.entries().next().value as [string, Client];
        oldClient.close();
        this.clients.delete(oldest);
      }
      client = new (etcdClientConstructors().Lease)(address, credentials.createInsecure());
      this.clients.set(address, client);
    }
    return client;
  }
}

function forwardTimeout(): LichenError {
  return new LichenError(ErrorCode.Timeout, 'etcdserver: request timed out (forwarding to the leader)');
}

function forwardFailed(error: ServiceError): LichenError {
  // NOT_FOUND is the leader's "lease not found"; anything else means the leader was unreachable.
  if (error.code === 5) return new LichenError(ErrorCode.LeaseNotFound, 'etcdserver: requested lease not found');
  return new LichenError(ErrorCode.Unavailable, `etcdserver: cannot reach the leader: ${error.details || error.message}`);
}
