// Test support: a gRPC server over a MemoryBackend plus raw grpc-js clients built from the same
// protos, so tests see exactly what an etcd client would see on the wire.
import { credentials, type Client, type ServiceError } from '@grpc/grpc-js';
import type { EtcdBackend } from '../../backend.js';
import { etcdClientConstructors } from '../proto.js';
import { startGrpcServer, type GrpcServerHandle } from '../server.js';
import { MemoryBackend } from './memory-backend.js';

export type RawClients = Record<'KV' | 'Watch' | 'Lease' | 'Cluster' | 'Maintenance' | 'Auth' | 'Health', Client>;

export interface Harness {
  backend: MemoryBackend;
  server: GrpcServerHandle;
  address: string;
  clients: RawClients;
  /** Calls a unary method; resolves with the response or rejects with the ServiceError. */
  call<T = any>(service: keyof RawClients, method: string, request: object): Promise<T>;
  close(): Promise<void>;
}

export async function startHarness(options: { backend?: EtcdBackend; maxRequestBytes?: number } = {}): Promise<Harness> {
  const backend = (options.backend ?? new MemoryBackend()) as MemoryBackend;
  const server = await startGrpcServer({ backend, port: 0, maxRequestBytes: options.maxRequestBytes });
  const address = `127.0.0.1:${server.port}`;
  const constructors = etcdClientConstructors();
  const clients = Object.fromEntries(
    Object.entries(constructors).map(([name, Ctor]) => [name, new Ctor(address, credentials.createInsecure())]),
  ) as unknown as RawClients;
  return {
    backend,
    server,
    address,
    clients,
    call: (service, method, request) =>
      new Promise((resolve, reject) => {
        const client = clients[service] as unknown as Record<string, Function>;
        client[method]!.call(clients[service], request, (error: ServiceError | null, response: unknown) =>
          error ? reject(error) : resolve(response as never),
        );
      }),
    close: async () => {
      for (const client of Object.values(clients)) client.close();
      await server.close();
    },
  };
}

/** A queue over a stream's 'data' events so a test can await the next message with a deadline. */
export class MessageQueue<T> {
  private readonly items: T[] = [];
  private readonly waiters: ((item: T) => void)[] = [];
  private failure: Error | undefined;

  constructor(stream: NodeJS.EventEmitter) {
    stream.on('data', (item: T) => {
      const waiter = this.waiters.shift();
      if (waiter) waiter(item);
      else this.items.push(item);
    });
    stream.on('error', (error: Error) => {
      this.failure = error;
    });
  }

  next(timeoutMs = 2000): Promise<T> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift()!);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      // A deadline, not a sleep: it only bounds a test that would otherwise hang forever.
      const timer = setTimeout(() => reject(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push((item) => {
        clearTimeout(timer);
        resolve(item);
      });
    });
  }

  get buffered(): number {
    return this.items.length;
  }
}
