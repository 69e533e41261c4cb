// Test support: one real Lichen member (raft, WAL, lmdb, gRPC) started in this process on free
// loopback ports, with raw grpc-js clients built from the etcd protos, so a test sees exactly
// what an etcd client sees on the wire.
import { credentials, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdClientConstructors } from '../../api/grpc/proto.js';
import { createSilentLogger } from '../../log.js';
import { defaultNodeConfig, startNode, type LichenNode, type NodeConfig } from '../index.js';
import { freePort } from './process-cluster.js';

export type GrpcService = 'KV' | 'Watch' | 'Lease' | 'Cluster' | 'Maintenance' | 'Auth';

export interface TestMember {
  node: LichenNode;
  dataDir: string;
  client(service: GrpcService): Client;
  /** Calls a unary method (with `token` as its metadata when given); resolves with the response or rejects with the ServiceError. */
  call<T = any>(service: GrpcService, method: string, request: object, token?: string): Promise<T>;
  /** Stops the member and its clients; keeps the data directory when `keepData`. */
  close(options?: { keepData?: boolean }): Promise<void>;
}

/** Starts a single-member cluster in a fresh temporary directory (or `dataDir`, to restart one). */
export async function startTestMember(overrides: Partial<NodeConfig> = {}): Promise<TestMember> {
  const dataDir = overrides.dataDir ?? mkdtempSync(join(tmpdir(), 'lichen-member-'));
  const node = await startNode(
    defaultNodeConfig({
      name: 'solo',
      listenClient: '127.0.0.1:0',
      listenPeer: '127.0.0.1:0',
      listenHttp: '',
      logLevel: 'error',
      ...overrides,
      dataDir,
    }),
    createSilentLogger(),
  );
  const constructors = etcdClientConstructors();
  const clients = new Map<GrpcService, Client>();
  const client = (service: GrpcService): Client => {
    let existing = clients.get(service);
    if (!existing) clients.set(service, (existing = new constructors[service](node.addresses.client, credentials.createInsecure())));
    return existing;
  };
  return {
    node,
    dataDir,
    client,
    call: (service, method, request, token) =>
      new Promise((resolve, reject) => {
        const target = client(service) as unknown as Record<string, Function>;
        const metadata = new Metadata();
        if (token !== undefined) metadata.set('token', token);
        target[method]!.call(target, request, metadata, (error: ServiceError | null, response: unknown) =>
          error ? reject(error) : resolve(response as never),
        );
      }),
    close: async (options = {}) => {
      for (const c of clients.values()) c.close();
      await node.close();
      if (!options.keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Starts a cluster of `size` members in this process, each in its own temporary directory. */
export async function startTestCluster(size: number, overrides: Partial<NodeConfig> = {}): Promise<TestMember[]> {
  const peers = await Promise.all(
    Array.from({ length: size }, async (_, i) => ({ name: `m${i + 1}`, peerAddress: `127.0.0.1:${await freePort()}` })),
  );
  return Promise.all(
    peers.map((peer) => startTestMember({ ...overrides, name: peer.name, listenPeer: peer.peerAddress, initialCluster: peers })),
  );
}
