// Peer messaging for raft: a TCP transport with binary frames, and an in-memory twin for tests.
export {
  CODEC_VERSION,
  MESSAGE_TYPE_CODES,
  encodeMessage,
  decodeMessage,
  encodedMessageBytes,
  type DecodeOptions,
} from './codec.js';
export { PROTOCOL_VERSION, FrameKind, FrameReader, type GroupMessage } from './frame.js';
export {
  TcpTransport,
  type TransportOptions,
  type PeerTls,
  type PeerRefusal,
  type TransportLogger,
  type SnapshotSink,
} from './tcp.js';
export { MemoryNetwork, MemoryTransport, type MemoryNetworkOptions, type MemoryTransportOptions } from './memory.js';
export type { Transport, TransportStats, PeerStats, InboundStats } from './types.js';
