// Starting and stopping one Lichen member: durable state, the raft member, and the client APIs.
import { createServer, type Server } from 'node:net';
import { startGrpcServer } from '../api/grpc/index.js';
import { startHttpServer } from '../api/http/index.js';
import { createLichenMetrics } from '../metrics.js';
import type { Logger } from '../log.js';
import { ErrorCode, LichenError } from '../errors.js';
import { checkLimits } from '../limits.js';
import { NodeBackend } from './backend.js';
import { clientTlsSettings, peerTlsSettings, type NodeConfig } from './config.js';
import { loadTlsMaterial, peerTlsOptions, serverOptions, verifiedCommonName, type TlsMaterial } from '../tls/index.js';
import { channelCredentials } from '../client/tls.js';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import type { EtcdBackend } from '../api/backend.js';
import { MemberCalls } from './forward.js';
import { ClusterNode } from './node.js';
import type { ProcessStorage, Replica } from '../replica/index.js';
import { systemEnvironment } from './environment.js';
import { tcpPeerTransport } from './peer-transport.js';
import { markRemoved, openNodeState, type NodeState } from './state.js';
import { checkInitialHashKV, startCorruptionMonitor, type CorruptionCheckDeps } from './corruption.js';
import { AlarmType } from '../mvcc/index.js';
import { TrafficRecorder } from '../traffic/index.js';
import type { DashboardSource } from '../api/http/dashboard/report.js';
import { dashboardSource } from './dashboard.js';
import { recordTraffic } from './traffic.js';
import { BoundMethods } from './bound-method.js';
import { formatHostPort, parseHostPort } from '../address.js';

export { defaultNodeConfig, type NodeConfig, type PeerSpec } from './config.js';
export { ClusterNode } from './node.js';
export { Replica } from '../replica/index.js';
export { NodeBackend } from './backend.js';

export interface LichenNode {
  readonly memberId: number;
  readonly clusterId: number;
  /** Where each listener ended up (ports resolved when the config asked for port 0). */
  readonly addresses: { client: string; peer: string; http: string };
  /** This member's replica of the cluster's raft group. */
  readonly node: Replica;
  /** The other raft groups this member hosts (no client API reaches them yet: tests and benchmarks create them). */
  readonly groups: Pick<ClusterNode, 'createGroup' | 'removeGroup' | 'group' | 'groups'>;
  /**
   * Resolves when the member stops serving on its own: removed from the cluster (recorded in
   * its data directory, so it refuses to start again) or a fatal storage failure.
   */
  readonly halted: Promise<{ removed: boolean; reason: string; error?: unknown }>;
  close(): Promise<void>;
}

export async function startNode(config: NodeConfig, logger: Logger): Promise<LichenNode> {
  checkLimits(config);
  // Certificates first: a bad file should stop the member before it touches its data. (Auto TLS
  // writes its self-signed certificates under the data directory here; only they may remain there
  // after a failed start, and a later start reuses them, as etcd does.)
  const peerTls = await loadTlsMaterial(peerTlsSettings(config), autoTlsPlace(config, 'peer', config.listenPeer));
  const clientTls = await loadTlsMaterial(clientTlsSettings(config), autoTlsPlace(config, 'client', config.listenClient, config.listenHttp));
  const listenerTls = clientTls && clientListenerTls(clientTls);
  // Members reach each other's client API (--join, forwarding, membership probes) as clients do.
  const memberCredentials = channelCredentials(
    clientTls && { ca: clientTls.ca, cert: clientTls.cert, key: clientTls.key, insecureSkipVerify: clientTls.selfSigned },
  );
  // Every listener is bound before anything is written to the data directory (or a join asks the
  // cluster to add this member): a port that is taken must not leave a half-made member behind.
  // The client listeners start first so the member can publish their real addresses.
  const backendRef: { backend?: EtcdBackend } = {};
  const dashboardRef: { source?: DashboardSource } = {};
  const traffic = new TrafficRecorder({ nowMs: () => performance.timeOrigin + performance.now() });
  const metricsRef: { node?: Replica; state?: NodeState } = {};
  const metrics = createLichenMetrics({
    raftTerm: () => metricsRef.node?.raftTerm ?? 0,
    raftCommitIndex: () => metricsRef.node?.raftStatus().commit ?? 0,
    raftAppliedIndex: () => metricsRef.node?.appliedIndex ?? 0,
    hasLeader: () => (metricsRef.node?.leaderId ?? 0) !== 0,
    isLeader: () => metricsRef.node?.isLeader() ?? false,
    mvccRevision: () => metricsRef.state?.storage.machine.mvcc.currentRevision ?? 0,
    walBytes: () => metricsRef.state?.disk.wal.sizeBytes ?? 0,
    dbSizeBytes: () => metricsRef.state?.storage.machine.space().sizeBytes ?? 0,
    dbSizeInUseBytes: () => metricsRef.state?.storage.machine.space().inUseBytes ?? 0,
    quotaBackendBytes: () => config.quotaBackendBytes,
  });
  const lazyBackend = lazy(() => backendRef.backend);
  const opened: { close(): Promise<void> }[] = [];
  let started: ClusterNode | undefined;
  let disk: ProcessStorage | undefined;
  try {
    const { host: clientHost, port: clientPort } = parseHostPort(config.listenClient);
    const grpc = await listening(LISTENERS.client, config.listenClient, () =>
      startGrpcServer({
        backend: lazyBackend,
        host: clientHost,
        port: clientPort,
        maxRequestBytes: config.maxRequestBytes,
        requestSeconds: metrics.grpcRequestSeconds,
        connectionErrors: metrics.grpcConnectionErrorsTotal,
        registry: metrics.registry,
        tls: listenerTls,
      }),
    );
    opened.push(grpc);
    let http: { port: number; close(): Promise<void> } | undefined;
    if (config.listenHttp) {
      const { host: httpHost, port: httpPort } = parseHostPort(config.listenHttp);
      http = await listening(LISTENERS.http, config.listenHttp, () =>
        startHttpServer({
          backend: lazyBackend,
          registry: metrics.registry,
          host: httpHost,
          port: httpPort,
          maxRequestBytes: config.maxRequestBytes,
          tls: listenerTls,
          dashboard: lazy(() => dashboardRef.source),
          memberTls: clientTls && { ca: clientTls.ca, cert: clientTls.cert, key: clientTls.key, insecureSkipVerify: clientTls.selfSigned },
        }),
      );
      opened.push(http);
    }
    const peerListener = await listening(LISTENERS.peer, config.listenPeer, () => bindTcp(config.listenPeer));
    opened.push({ close: () => new Promise<void>((resolve) => peerListener.close(() => resolve())) });

    const state = await openNodeState(config, logger, memberCredentials);
    disk = state.disk;
    metricsRef.state = state;
    const forwarder = new MemberCalls(config.requestTimeoutMs, memberCredentials);
    const addresses = {
      client: `${clientHost}:${grpc.port}`,
      http: http ? formatHostPort({ host: parseHostPort(config.listenHttp).host, port: http.port }) : '',
      peer: '',
    };
    const member = await ClusterNode.open({
      state,
      config,
      logger,
      metrics,
      publicAddresses: { client: addresses.client, http: addresses.http },
      createTransport: tcpPeerTransport({ config, state, metrics, logger, listener: peerListener, tls: peerTls && peerTlsOptions(peerTls) }),
      askMembership: (address) => forwarder.membership(address),
      environment: systemEnvironment,
    });
    const node = member.replica;
    metricsRef.node = node;
    const hashes: CorruptionCheckDeps = {
      memberId: node.memberId,
      localHash: () => node.store.hashKV(),
      peerAddresses: () => node.members.filter((m) => m.id !== node.memberId && m.clientAddress !== '').map((m) => m.clientAddress),
      askPeer: (address, revision) => forwarder.hashKV(address, revision),
      logger,
    };
    started = member;
    await member.start();
    addresses.peer = member.peerAddress;
    if (config.experimentalInitialCorruptCheck) {
      // etcd checks before it serves any traffic. The peers' client addresses are in the log, so
      // here the member first replays its log (taking part in raft), and serves clients only
      // once the check passes.
      await node.replayed();
      await checkInitialHashKV(hashes).catch(async (error: unknown) => {
        forwarder.close();
        await member.close();
        throw error;
      });
    }
    backendRef.backend = recordTraffic(new NodeBackend(node, config, forwarder), traffic);
    dashboardRef.source = dashboardSource(node, backendRef.backend, traffic, config.name);
    const stopCorruptionMonitor =
      config.experimentalCorruptCheckTimeMs > 0
        ? startCorruptionMonitor(
            {
              ...hashes,
              isLeader: () => node.isLeader(),
              barrier: () => node.linearizableBarrier(),
              raiseCorrupt: async (memberId) => void (await node.propose({ type: 'alarmActivate', memberId, alarm: AlarmType.CORRUPT })),
            },
            config.experimentalCorruptCheckTimeMs,
          )
        : () => {};
    const halted = node.halted.then(async (halt) => {
      if (halt.removed) await markRemoved(state);
      return halt;
    });
    let closing: Promise<void> | undefined;
    return {
      memberId: node.memberId,
      clusterId: node.clusterId,
      addresses,
      node,
      groups: member,
      halted,
      close: () =>
        (closing ??= (async () => {
          stopCorruptionMonitor();
          await grpc.close();
          await http?.close();
          forwarder.close();
          await member.close();
          await state.disk.close();
          logger.info('member stopped');
        })()),
    };
  } catch (error) {
    await started?.close().catch(() => undefined);
    await disk?.close().catch(() => undefined);
    for (const listener of opened.reverse()) await listener.close().catch(() => undefined);
    throw error;
  }
}

/** The listeners of a member: the flag that sets each one and what it serves (for error messages). */
const LISTENERS = {
  client: '--listen-client (the etcd v3 gRPC API)',
  http: '--listen-http (the HTTP/JSON API)',
  peer: '--listen-peer (raft traffic between members)',
} as const;

/** Runs a listener's start; a failure to bind names the address and the listener's role. */
async function listening<T>(role: string, address: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the address is already in use' : (error as Error).message;
    throw new LichenError(ErrorCode.InvalidArgument, `cannot listen on ${address} for ${role}: ${why}${code && !why.includes(code) ? ` (${code})` : ''}`);
  }
}

/**
 * A TCP server listening on host:port (port 0 picks a free one). Until the transport takes it over
 * (start() replaces the 'connection' listener), a dialing peer is turned away and redials later:
 * an accepted socket nobody reads would never see its peer hang up, and would hold close() forever.
 */
function bindTcp(address: string): Promise<Server> {
  const { host, port } = parseHostPort(address);
  const server = createServer((socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/**
 * TLS of the client listeners: a verified client certificate's common name is the user of the
 * requests that carry no token, with --client-cert-auth only (as in etcd).
 */
function clientListenerTls(material: TlsMaterial): { options: ReturnType<typeof serverOptions>; peerCommonName(socket: TLSSocket): string | undefined } {
  return {
    options: serverOptions(material, []),
    peerCommonName: (socket) => (material.commonNameIsUser ? verifiedCommonName(socket) : undefined),
  };
}

/** Where auto TLS keeps a listener's self-signed certificate (etcd's place), and the names it covers. */
function autoTlsPlace(config: NodeConfig, kind: 'client' | 'peer', ...listeners: string[]): { dir: string; hosts: string[] } {
  const hosts = listeners.filter((address) => address !== '').map((address) => parseHostPort(address).host);
  return { dir: join(config.dataDir, 'fixtures', kind), hosts: [...hosts, '127.0.0.1', '::1', 'localhost'] };
}

/**
 * A proxy that resolves its target on each use, so the listeners can start (and their ports be
 * known) before the member exists. A request in that short window is told to come back.
 */
function lazy<T extends object>(target: () => T | undefined): T {
  let methods: BoundMethods | undefined;
  return new Proxy({} as T, {
    get(_unused, property) {
      const current = target();
      if (!current) {
        return () => {
          throw new LichenError(ErrorCode.Unavailable, 'server is starting');
        };
      }
      if (methods?.target !== current) methods = new BoundMethods(current);
      return methods.get(property);
    },
  });
}
