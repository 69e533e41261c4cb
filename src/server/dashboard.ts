// What this member tells the dashboard about itself and where it finds the other members (the
// HTTP addresses they published in the member table).
import type { DashboardSource, MemberFacts, MemberRole } from '../api/http/dashboard/report.js';
import type { EtcdBackend } from '../api/backend.js';
import type { TrafficRecorder } from '../traffic/index.js';
import type { Replica } from '../replica/index.js';
import { formatId } from '../ids.js';
import type { Caller } from '../api/backend.js';
import type { AuthInfo } from '../auth/index.js';

export function dashboardSource(node: Replica, backend: EtcdBackend, traffic: TrafficRecorder, name: string): DashboardSource {
  return {
    memberId: formatId(node.memberId),
    members: () => node.members.map((m) => ({ id: formatId(m.id), name: m.name, httpAddress: m.httpAddress, isLearner: m.isLearner })),
    access(caller: Caller | undefined) {
      // As the backend sees a caller: a simple token or a certificate stands for the current auth revision.
      const info: AuthInfo | undefined = caller;
      return {
        admin: passes(() => node.auth.checkAdmin(info)),
        mayRead: (key) => passes(() => node.auth.checkRead(info, key)),
      };
    },
    async report(since, heatSince) {
      const status = await backend.status();
      const raft = node.raftStatus();
      const member: MemberFacts = {
        id: formatId(node.memberId),
        name,
        role: (node.isLearner ? 'learner' : raft.role) satisfies MemberRole,
        term: raft.term,
        leader: formatId(raft.lead),
        commitIndex: raft.commit,
        appliedIndex: node.appliedIndex,
        revision: status.header.revision,
        dbSize: status.dbSize,
        dbSizeInUse: status.dbSizeInUse,
        version: status.version,
        errors: status.errors,
      };
      return { member, second: traffic.nowSecond(), samples: traffic.samplesSince(since), heat: traffic.heatSince(heatSince) };
    },
  };
}

function passes(check: () => void): boolean {
  try {
    check();
    return true;
  } catch {
    return false;
  }
}
