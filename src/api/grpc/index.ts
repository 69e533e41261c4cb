// The etcd v3 gRPC API of a Lichen node.
export { startGrpcServer } from './server.js';
export type { GrpcServerOptions, GrpcServerHandle } from './server.js';
export { ETCD_ERRORS, GRPC_ERROR_TABLE, grpcErrorFor, etcdError } from './errors.js';
export type { EtcdErrorName } from '../../errors.js';
export { etcdPackageDefinition, etcdClientConstructors, PROTO_DIR } from './proto.js';
