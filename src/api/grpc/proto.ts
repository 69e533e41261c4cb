// Loads the etcd v3 protos (proto/ at the package root) once, for the server and the client.
// Options: field names exactly as on the wire (keepCase), int64/uint64 as decimal strings (so no
// precision is lost before we validate them), bytes as Buffer, absent scalars filled with their
// defaults, and the name of the set member of each oneof.
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';

/** src/api/grpc and dist/api/grpc are both three levels below the package root. */
export const PROTO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'proto');

export const PROTO_FILES = ['etcdserverpb/rpc.proto', 'v3lockpb/v3lock.proto', 'v3electionpb/v3election.proto', 'grpc/health/v1/health.proto'];

export const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: Number,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

let cached: PackageDefinition | undefined;

export function etcdPackageDefinition(): PackageDefinition {
  cached ??= loadSync(PROTO_FILES, LOADER_OPTIONS);
  return cached;
}

export const SERVICE_NAMES = [
  'etcdserverpb.KV',
  'etcdserverpb.Watch',
  'etcdserverpb.Lease',
  'etcdserverpb.Cluster',
  'etcdserverpb.Maintenance',
  'etcdserverpb.Auth',
  'v3lockpb.Lock',
  'v3electionpb.Election',
  'grpc.health.v1.Health',
] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export function serviceDefinition(name: ServiceName): ServiceDefinition {
  return etcdPackageDefinition()[name] as unknown as ServiceDefinition;
}

/** Client constructors keyed by short name: KV, Watch, Lease, Cluster, Maintenance, Auth, Lock, Election, Health. */
export function etcdClientConstructors(): Record<
  'KV' | 'Watch' | 'Lease' | 'Cluster' | 'Maintenance' | 'Auth' | 'Lock' | 'Election' | 'Health',
  ServiceClientConstructor
> {
  const root = loadPackageDefinition(etcdPackageDefinition());
  const etcd = root['etcdserverpb'] as GrpcObject;
  const health = ((root['grpc'] as GrpcObject)['health'] as GrpcObject)['v1'] as GrpcObject;
  return {
    KV: etcd['KV'] as ServiceClientConstructor,
    Watch: etcd['Watch'] as ServiceClientConstructor,
    Lease: etcd['Lease'] as ServiceClientConstructor,
    Cluster: etcd['Cluster'] as ServiceClientConstructor,
    Maintenance: etcd['Maintenance'] as ServiceClientConstructor,
    Auth: etcd['Auth'] as ServiceClientConstructor,
    Lock: (root['v3lockpb'] as GrpcObject)['Lock'] as ServiceClientConstructor,
    Election: (root['v3electionpb'] as GrpcObject)['Election'] as ServiceClientConstructor,
    Health: health['Health'] as ServiceClientConstructor,
  };
}
