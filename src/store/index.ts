// One process hosting replicas of many raft groups (store.ts): one ticker, one transport whose
// frames carry the group id, heartbeats coalesced per peer process, quiescence carried out with
// store-level liveness. In-memory group storage for tests and the groups benchmark: testing.ts.
export { Store, type ReplicaSettings, type StoreOptions, type StoreStats, type StoreTransportEvents } from './store.js';
