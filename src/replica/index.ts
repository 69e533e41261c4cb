// One raft group's replica: the loop that drives its raft core (ready-loop.ts), the client
// requests waiting on it (requests.ts), and the clock, timers and randomness it is given
// (environment.ts; virtual ones for tests in virtual-environment.ts). The server builds it from
// the real ones. Moving the rest of the member (apply, snapshots, leases, membership, transfer)
// here from src/server/node.ts is issue 16's next step.
export type { Clock, Environment, Randomness, TimerHandle, Timers } from './environment.js';
export { ReadyLoop, type ReadyHandler } from './ready-loop.js';
export { PendingProposals, ReadRounds } from './requests.js';
export { VirtualEnvironment } from './virtual-environment.js';
