// The member's peer transport: TCP (TLS when configured) on the peer listener bound at start-up,
// snapshots streamed into the snapshot store, refusals counted and logged. The member supplies
// only what it reacts to (PeerEvents), so a test or the simulator can give it another transport.
import type { Server } from 'node:net';
import { parseHostPort } from '../address.js';
import { peerSnapshotBytesMaxFor } from '../limits.js';
import type { Logger } from '../log.js';
import type { LichenMetrics } from '../metrics.js';
import { TcpTransport, type PeerTls, type Transport, type TransportOptions } from '../transport/index.js';
import type { StoreTransportEvents } from '../store/index.js';
import type { NodeConfig } from './config.js';
import { dataDirIdBytes } from './data-dirs.js';
import { formatId } from './ids.js';
import type { NodeState } from './state.js';

/** What a member hears from its transport: messages, delivery reports, handshakes to judge, and where a snapshot goes. */
export type PeerEvents = StoreTransportEvents & Required<Pick<TransportOptions, 'admitPeer' | 'onSuperseded' | 'onMembershipRefused' | 'receiveSnapshot'>>;

export type TransportFactory = (events: PeerEvents) => Transport;

export interface PeerTransportWiring {
  config: NodeConfig;
  state: NodeState;
  metrics: LichenMetrics;
  logger: Logger;
  /** The peer listener, already bound (before anything was written to the data directory). */
  listener: Server;
  /** Peer TLS; plain TCP without it. */
  tls: PeerTls | undefined;
}

export function tcpPeerTransport({ config, state, metrics, logger, listener, tls }: PeerTransportWiring): TransportFactory {
  return (events) =>
    new TcpTransport({
      ...events,
      id: state.identity.memberId,
      clusterId: state.identity.clusterId,
      listen: parseHostPort(config.listenPeer),
      server: listener,
      tls,
      // Snapshots from peers are streamed (events.receiveSnapshot) into their group's snapshot store, never held whole in memory.
      maxSnapshotBytes: peerSnapshotBytesMaxFor(config.quotaBackendBytes),
      onRefusal: (refusal) =>
        (refusal.kind === 'handshake' ? metrics.peerHandshakesRefusedTotal : metrics.peerMessagesDroppedTotal).inc({ reason: refusal.reason }),
      dataDirId: dataDirIdBytes(state.identity.dataDirId),
      logger: (event, fields) => {
        // A peer that is down makes the transport redial with backoff: that is expected and
        // logged at debug; a refused handshake or a dropped message is worth a warning.
        const problem = /queue-full|too-large|refused|rejected|protocol-error|listener-error|unknown-peer|dropped/.test(event);
        const notable = /connected|listening/.test(event);
        const log = problem ? logger.warn : notable ? logger.info : logger.debug;
        log.call(logger, `transport: ${event}`, withHexIds(fields));
      },
    });
}

/** The transport logs ids as numbers; every other log line shows them as formatId does. */
function withHexIds(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    const isId = name === 'peer' || name === 'from' || name === 'to' || name === 'id' || name.endsWith('Id');
    out[name] = isId && typeof value === 'number' && value > 0 ? formatId(value) : value;
  }
  return out;
}
