// Joining a running cluster (`lichen serve --join host:port`): the new member asks any member,
// through the public Cluster API, to add it as a learner, and learns its id, the cluster id and
// the other members' peer addresses from the answer. Raft then sends it a snapshot and the log
// tail, and the member promotes itself once it has caught up (see Replica.maybePromoteSelf in src/replica/replica.ts).
//
// Joining is idempotent: if a learner with our peer address exists already that never started (a
// previous attempt crashed after MemberAdd), we take over its id instead of adding a second one.
// One that was promoted or started had a data directory, so ours must have been lost: refused.
import type { ChannelCredentials, Client, ServiceError } from '@grpc/grpc-js';
import { etcdClientConstructors } from '../api/grpc/proto.js';
import { ErrorCode, LichenError } from '../errors.js';
import type { NodeConfig } from './config.js';
import { formatId } from './ids.js';
import type { Member } from '../replica/members.js';

interface WireMember {
  ID: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface JoinResult {
  memberId: number;
  clusterId: number;
  /** The membership as the contacted member saw it, so we can dial peers before the snapshot. */
  members: Member[];
  /** The contacted member's commit index when we joined: caught up means applied past it. */
  catchUpIndex: number;
}

export async function joinCluster(config: NodeConfig, credentials: ChannelCredentials): Promise<JoinResult> {
  const constructors = etcdClientConstructors();
  const cluster = new constructors.Cluster(config.join, credentials);
  const maintenance = new constructors.Maintenance(config.join, credentials);
  try {
    const peerUrl = `${config.peerCertFile !== '' || config.peerAutoTls ? 'https' : 'http'}://${config.listenPeer}`;
    const listed = await call<{ header: { cluster_id: string }; members: WireMember[] }>(cluster, 'MemberList', {}, config);
    let self = listed.members.find((m) => m.peerURLs.includes(peerUrl));
    let members = listed.members;
    if (self && (!self.isLearner || self.clientURLs.length > 0)) {
      // A member at our address that was promoted, or that started (it published its client
      // address), had a data directory: ours is empty, so that one was lost (see data-dirs.ts).
      throw new LichenError(
        ErrorCode.DataLoss,
        `member ${formatId(Number(self.ID))} at ${config.listenPeer} has already been bootstrapped, and this data directory ` +
          `(${config.dataDir}) is empty: its data was lost. Remove it first (\`lichen member remove ${formatId(Number(self.ID))}\`), ` +
          'then join again with this empty data directory',
      );
    }
    if (!self) {
      const added = await call<{ member: WireMember; members: WireMember[] }>(cluster, 'MemberAdd', { peerURLs: [peerUrl], isLearner: true }, config);
      self = added.member;
      members = added.members;
    }
    const status = await call<{ raftIndex: string }>(maintenance, 'Status', {}, config);
    return {
      memberId: Number(self.ID),
      clusterId: Number(listed.header.cluster_id),
      members: members.map(fromWire),
      catchUpIndex: Number(status.raftIndex),
    };
  } finally {
    cluster.close();
    maintenance.close();
  }
}

/** The id of the cluster the member at config.join belongs to. */
export async function clusterIdAt(config: NodeConfig, credentials: ChannelCredentials): Promise<number> {
  const cluster = new (etcdClientConstructors().Cluster)(config.join, credentials);
  try {
    const listed = await call<{ header: { cluster_id: string } }>(cluster, 'MemberList', {}, config);
    return Number(listed.header.cluster_id);
  } finally {
    cluster.close();
  }
}

function fromWire(m: WireMember): Member {
  const address = (urls: string[]): string => (urls[0] ?? '').replace(/^[a-z]+:\/\//i, '');
  return {
    id: Number(m.ID),
    name: m.name,
    peerAddress: address(m.peerURLs),
    clientAddress: address(m.clientURLs),
    httpAddress: '',
    isLearner: m.isLearner,
  };
}

function call<T>(client: Client, method: string, request: object, config: NodeConfig): Promise<T> {
  const stub = client as unknown as Record<string, (r: object, o: object, cb: (e: ServiceError | null, v: T) => void) => void>;
  return new Promise<T>((resolve, reject) => {
    stub[method]!.call(client, request, { deadline: Date.now() + config.requestTimeoutMs }, (error, value) => {
      if (!error) return resolve(value);
      reject(new LichenError(ErrorCode.Unavailable, `cannot join the cluster at ${config.join}: ${method} failed: ${error.details || error.message}`));
    });
  });
}
