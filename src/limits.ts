// Every limit Lichen enforces, named in one place. A name says what is bounded, its unit, and ends
// in Max (`requestBytesMax`, `inboxMessagesMax`); the default of a limit an operator can change
// ends in Default. Limits that depend on each other are derived from each other here, and
// checkLimits() asserts their relations at start-up, so a request the API accepts can always be
// replicated: request ≤ raft entry ≤ raft message ≤ peer frame.
//
// This module imports only errors.ts (a leaf): every layer, the raft core included, may import it.
import { ErrorCode, LichenError } from './errors.js';
//
// The README's "Limits" table lists the limits a user meets; keep the two in step.

const KiB = 1024;
const MiB = 1024 * KiB;

// ---- Client requests -----------------------------------------------------------------------

/** etcd's default --max-request-bytes: the largest request a member accepts unless configured. */
export const requestBytesMaxDefault = 1.5 * MiB;
/**
 * The largest --max-request-bytes a member may be given. Everything a member accepts from its
 * peers is sized for this, not for its own setting, so members configured differently still
 * understand each other (a follower with the default limit must receive a leader's 16 MiB entry).
 */
export const requestBytesMax = 64 * MiB;
/**
 * etcd lets gRPC receive messages this much larger than --max-request-bytes, so an oversized
 * request reaches the server and gets etcd's own "request is too large" error rather than a
 * transport-level RESOURCE_EXHAUSTED.
 */
export const grpcRequestOverheadBytes = 512 * KiB;
/** etcd's default --max-txn-ops: compares, successes or failures in one txn. */
export const txnOpsMax = 128;
/** Nested txns are legal in etcd; we bound the depth so decoding is a bounded loop. */
export const txnDepthMax = 16;
/**
 * The depth the raft command codec accepts (src/mvcc/command.ts); above txnDepthMax so a command
 * the API accepted always decodes, on every member.
 */
export const commandTxnDepthMax = 32;
/** etcd's MaxLeaseTTL. */
export const leaseTtlSecondsMax = 9_000_000_000;
/** Client requests waiting for raft (proposals and reads), per member; beyond it "too many requests". */
export const pendingRequestsMax = 10_000;
/**
 * Results of recently applied client proposals each member keeps, and the key-value bytes they may
 * hold (src/replica/proposal-results.ts): a snapshot sent to a peer carries them, so the peer
 * answers its own proposals the snapshot covers. Beyond either, the oldest go, and a proposal whose
 * result went fails at once with "request timed out" (its outcome unknown) instead of later.
 */
export const proposalResultsMax = 4096;
export const proposalResultsBytesMax = 4 * MiB;

// ---- gRPC (src/api/grpc) --------------------------------------------------------------------

/** Streams one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused. */
export const grpcConcurrentStreamsMax = 10_000;
/** An encoded header block (HEADERS plus CONTINUATION frames) larger than this ends the connection. */
export const grpcHeaderBlockBytesMax = 256 * KiB;
/**
 * The largest decoded header list we accept, counted as SETTINGS_MAX_HEADER_LIST_SIZE counts
 * (RFC 7540 §6.5.2: name + value + 32 bytes per field). etcd clients send a few hundred bytes
 * (the gRPC headers, perhaps an auth token), so 64 KiB refuses nothing real and bounds the memory
 * one request can make us hold. The connection advertises it in its SETTINGS.
 */
export const grpcHeaderListBytesMax = 64 * KiB;
/**
 * Bytes waiting in a client's socket above which the client is taken to have stopped reading: the
 * connection is closed rather than let responses pile up in memory.
 */
export const grpcUnreadResponseBytesMax = 64 * MiB;
/**
 * Written 64 KiB response pieces a process keeps to lend again (src/api/grpc/h2/pieces.ts): 16 MiB.
 * A member serving a few ranges of 10,000 keys at once has 40-45 pieces in flight for each until
 * its clients read them; with 64 kept, half the pieces lent were new ones.
 */
export const grpcResponsePiecesKeptMax = 256;
/**
 * What a stream may send before the server has consumed it (its HTTP/2 receive window, given back
 * as messages are handed on): one frame, so a request of up to 16 KiB arrives whole without
 * waiting. A larger message gets window for all of it once its connection can reserve the room.
 */
export const grpcStreamWindowBytesMax = 16 * KiB;
/**
 * Header lists of a connection's open streams plus request data they sent within their windows.
 * Past it, a new stream is refused (REFUSED_STREAM) and one sending more data is ended with
 * RESOURCE_EXHAUSTED.
 */
export const grpcConnectionBufferedBytesMax = 8 * MiB;
/** Messages of the largest allowed size one connection may have room reserved for at once. */
export const grpcConnectionReservedMessagesMax = 4;
/** Bytes a connection may reserve for messages larger than a stream window (each with its 5-byte prefix). */
export function grpcConnectionReservedBytesMax(grpcMessageBytesMax: number): number {
  return grpcConnectionReservedMessagesMax * (grpcMessageBytesMax + 5);
}
/** The HTTP/2 handshake (client preface, SETTINGS, acknowledgement of ours) must finish within this. */
export const grpcHandshakeMsMax = 10_000;
/** A connection without any open stream for this long is sent GOAWAY (NO_ERROR) and closed. */
export const grpcConnectionIdleMsMax = 5 * 60_000;
/**
 * How long the acknowledgement of a client's PING may wait, while the connection has streams
 * open, for a response to go out with (one socket write for both, see H2Limits.pingAckDelayMs).
 */
export const grpcPingAckDelayMsMax = 20;
/** Client connections open at once; one more is answered with GOAWAY (ENHANCE_YOUR_CALM) and closed. */
export const grpcConnectionsMax = 1024;
/**
 * Streams a client resets while the server works on their request (a unary handler running), per
 * connection within grpcWorkResetsWindowMs; one more is answered with GOAWAY (ENHANCE_YOUR_CALM).
 * The HTTP/2 "Rapid Reset" attack (CVE-2023-44487) opens a request and resets it at once, over and
 * over, so that each costs us a handler and a raft proposal while the client never has more than
 * a stream open. Such streams keep counting against grpcConcurrentStreamsMax until their handler
 * ends (Go's fix); this cap ends the connection of a client that keeps doing it (nginx's). A real
 * client resets a running call only when it gives up on it (a deadline, a cancel): 1,000 in 10 s on
 * one connection is 100 calls a second given up, far more than any deadline pattern makes.
 */
export const grpcWorkResetsMax = 1000;
/** The window grpcWorkResetsMax counts over: it starts at the first such reset and clears after this. */
export const grpcWorkResetsWindowMs = 10_000;
/**
 * Control frames the server owes a client (PING and SETTINGS acknowledgements, RST_STREAM) that the
 * socket has not written yet, per connection; one more ends the connection (ENHANCE_YOUR_CALM).
 * Each answers a frame the client sent, so a client that floods PINGs, SETTINGS or requests that
 * are refused, and does not read (CVE-2019-9512, -9514, -9515), would otherwise make us queue
 * answers without end. nghttp2 bounds its outbound acknowledgements at 1,000 too; a gRPC client
 * has one PING in flight.
 */
export const grpcControlFramesUnwrittenMax = 1000;
/**
 * HEADERS plus CONTINUATION frames in one header block; one more ends the connection
 * (ENHANCE_YOUR_CALM). grpcHeaderBlockBytesMax bounds the bytes, this the frames: without it, empty
 * or one-byte CONTINUATION frames (the "CONTINUATION flood", CVE-2024-27316 and its kin) cost a
 * buffer each. Clients fill frames to the 16 KiB frame size, so 32 frames is 512 KiB, twice the
 * block limit.
 */
export const grpcHeaderBlockFramesMax = 32;
/**
 * DATA frames in a row that carry nothing (no data, no END_STREAM); one more ends the connection
 * (ENHANCE_YOUR_CALM). They cost work and give nothing (CVE-2019-9518); clients send an empty
 * DATA frame only to end a stream. Envoy allows 1.
 */
export const grpcEmptyDataFramesMax = 100;
/**
 * The HPACK dynamic table a client may make a connection keep (SETTINGS_HEADER_TABLE_SIZE, the
 * protocol's default, advertised). A larger table size update is a COMPRESSION_ERROR.
 */
export const grpcHpackTableBytesMax = 4 * KiB;
/** Watchers on one watch stream; etcd has no limit, but every collection here is bounded. */
export const watchersPerStreamMax = 4096;
/**
 * Response bytes a watch stream may have waiting for a client that reads slowly. Past it, the
 * stream's watchers take no new events until the client has read; they catch up from history
 * then (as etcd's slow watchers do), so nothing is lost and nothing piles up.
 */
export const watchStreamBufferedBytesMax = 64 * KiB;
/**
 * Responses a new watcher may have waiting for its "created" response (history a backend replays
 * inside watch()); past it, it takes no more until then and catches up from history.
 */
export const watchStreamResponsesMax = 4096;

/** Requests of one watch stream waiting while a create's token is checked; past it the stream fails. */
export const watchRequestsQueuedMax = 1024;

// ---- The client port's JSON gateway (src/api/grpc/gateway, h2/sniff.ts) --------------------

/** A connection to the client port must send its first bytes within this (they tell gRPC from HTTP/1.1). */
export const clientFirstBytesMsMax = 10_000;
/** A client's TLS handshake (gRPC and HTTP ports) must finish within this (Node's default is 120 s). */
export const clientTlsHandshakeMsMax = 10_000;
/**
 * Connections to the client port in their TLS handshake or still to send those first bytes, at
 * once; one more closes the one that has waited longest. With the caps of each protocol (grpcConnectionsMax,
 * gatewayConnectionsMax) it bounds the port's connections, and a flood of one kind does not lock
 * out the others.
 */
export const clientUnsortedConnectionsMax = 1024;
/**
 * A gateway request's JSON may be this many times the largest gRPC message: bytes travel as
 * base64 (4/3 of their size) beside field names and punctuation. A larger body is refused unread.
 */
export const gatewayJsonExpansionMax = 2;
/** The request headers of a gateway request must arrive within this (else 408). */
export const gatewayHeadersMsMax = 60_000;
/** HTTP/1.1 connections to the gateway open at once; one more is answered 503 and closed. */
export const gatewayConnectionsMax = 1024;
/** An idle keep-alive gateway connection is closed after this (etcd keeps them; clients pool them). */
export const gatewayKeepAliveIdleMsMax = 60_000;

// ---- HTTP/JSON API (src/api/http) -----------------------------------------------------------

/** Keys one HTTP prefix GET returns; beyond it the response says `more: true`. */
export const httpRangeKeysMax = 10_000;
/** HTTP connections open at once; one more is answered 503 (JSON) and closed. */
export const httpConnectionsMax = 1024;
/**
 * A request's headers must arrive within this of the connection's start (or of the previous
 * response's end), else 408: a client that trickles its headers holds a connection no longer.
 */
export const httpHeadersMsMax = 10_000;
/** A request's headers and body must arrive within this, else 408. */
export const httpRequestMsMax = 60_000;
/**
 * Key and value bytes in one HTTP prefix GET response (at least one key is always returned);
 * beyond it the response says `more: true` and the client continues after its last key.
 */
export const httpResponseBytesMax = 4 * MiB;
/**
 * HTTPS connections in their TLS handshake at once; one more closes the one that has waited
 * longest (real clients handshake as they connect), so silent connections cannot hold the port.
 */
export const httpTlsHandshakesMax = 1024;
/** Request lines longer than this are refused before parsing (keys live in the URL). */
export const httpUrlCharsMax = 64 * KiB;
/** Query parameters beyond this count make the request invalid (bounds the parsing work). */
export const httpQueryParamsMax = 64;

// ---- Dashboard and traffic samples (src/traffic, src/api/http/dashboard) ------------------

/** Seconds of per-second rate and latency samples a member keeps (one hour). */
export const trafficSecondsMax = 3600;
/** Seconds of per-prefix counts (the key-space heatmap) a member keeps. */
export const trafficHeatSecondsMax = 600;
/** Key prefixes counted one by one per second; requests on more are counted together as "other". */
export const trafficPrefixesMax = 128;
/** Bytes of a key that name its prefix; longer prefixes are cut here. */
export const trafficPrefixBytesMax = 64;
/** Open event streams (GET /v1/events, one per dashboard tab) per member; more get 503. */
export const eventStreamsMax = 64;
/**
 * Bytes an event stream may have waiting in its socket; past it the reader is taken to have
 * stopped reading and the stream is closed (the page reconnects and catches up).
 */
export const eventStreamUnreadBytesMax = 4 * MiB;
/** Versions of one key GET /v1/history/<key> walks back through per request. */
export const historyVersionsMax = 100;
/** Leases GET /v1/leases describes (TTL and key count) per page. */
export const leasesDescribedMax = 1000;
/** Reads one GET /v1/children request makes (each skips the folders seen so far). */
export const keyTreeReadsMax = 20;
/** Keys one of those reads returns (keys only); also the most children one request lists. */
export const keyTreeScanKeysMax = 1000;

// ---- Watches and history (src/mvcc) ---------------------------------------------------------

/** Live watchers per member. */
export const watchersMax = 100_000;
/** Events per catch-up batch of an unsynced watcher (whole revisions; one revision may exceed it). */
export const watchBatchEventsMax = 1000;
/**
 * Unsynced watchers advanced per catch-up step (one history scan shared by all of them), so
 * catching up never stalls the member; etcd's maxWatchersPerSync is the same.
 */
export const watchSyncWatchersMax = 512;
/** Revision records one history scan examines (watch catch-up), so a sparse watcher cannot stall apply. */
export const historyScanRecordsMax = 10_000;

// ---- Authentication (src/auth) --------------------------------------------------------------

/**
 * Simple auth tokens one member keeps; past it the least recently used goes. Each costs a login
 * (a bcrypt check and a raft entry), so only a flood of logins reaches it.
 */
export const authTokensMax = 100_000;
/** Verified JWTs a member remembers, so a token's signature is checked once, not per request; then the cache starts over. */
export const jwtVerifiedTokensMax = 10_000;
/** Password checks and hashes waiting for the bcrypt worker; past it they fail with "too many requests". */
export const passwordJobsQueuedMax = 256;
/**
 * Password checks of one login when the auth state keeps moving between the check and the
 * token's log entry; then the login fails with "revision of auth store is old" (etcd has no bound).
 */
export const authenticateAttemptsMax = 5;
/** The longest --auth-token-ttl: a longer one is a typo, not a policy. */
export const authTokenTtlSecondsMax = 24 * 3600;

// ---- Storage --------------------------------------------------------------------------------

/**
 * The longest key the lmdb engine accepts: LMDB's limit at 8 KiB pages (4026 bytes) less the
 * engine's prefix byte. Engine keys are revisions and ids (src/mvcc/layout.ts), never user keys.
 */
export const lmdbKeyBytesMax = 4026 - 1;
/**
 * Writes an engine keeps in memory, applied but not yet committed to its storage, before it
 * commits them without waiting for the next tick: etcd's backend batch limit (10,000; its
 * interval, 100 ms, is our tick). See src/engine/types.ts, commit().
 */
export const engineUncommittedOpsMax = 10_000;
/**
 * etcd's default --quota-backend-bytes (DefaultQuotaBytes, 2 GiB): once the data in use reaches
 * the quota, the NOSPACE alarm is raised and writes that add data are refused (src/server/quota.ts).
 */
export const quotaBackendBytesDefault = 2 * 1024 * MiB;
/**
 * The memory a process gives to the revision records its ranges read, so that the next range over
 * the same keys reads them without a call into the engine per record (src/mvcc/record-cache.ts).
 * Shared by all the process's groups; one range adds at most a quarter of it.
 */
export const recordCacheBytesMax = 32 * MiB;
/** WAL save() calls waiting behind the one in progress; more means the caller is not awaiting. */
export const walPendingOperationsMax = 1024;
/**
 * A raft group's live bytes in the shared WAL up to which, when the log rolls over, its live state
 * is rewritten into the new segment so that it does not keep the oldest one (src/wal/shared-wal.ts);
 * a group holding more snapshots by its own policy instead.
 */
export const walRewriteGroupBytesMax = 1 * MiB;

// ---- Members and configuration --------------------------------------------------------------

/** Connections to other members' client APIs kept open at once (forwarding); a new one replaces the oldest. */
export const memberClientsMax = 16;
/** Cluster sizes beyond this are almost certainly a typo in --initial-cluster. */
export const initialClusterMembersMax = 64;
/** Config files larger than this are refused: a member's config is a few hundred bytes. */
export const configFileBytesMax = 1 * MiB;

// ---- Raft and the peer transport ------------------------------------------------------------

/**
 * The header the server puts in front of every proposal (src/server/envelope.ts: version, kind,
 * origin member, request sequence; 18 bytes today). The room left here is what the envelope may
 * grow to without changing any other limit.
 */
export const proposalHeaderBytesMax = 64;
/** Data bytes of one raft entry: the largest request any member accepts, plus its header. */
export const raftEntryBytesMax = requestBytesMax + proposalHeaderBytesMax;
/**
 * Bytes one entry adds to its data inside a peer message (src/transport/codec.ts): term and index
 * (varints of at most 8 bytes each), the type byte, the data length (a varint of at most 8).
 * The raft core counts it in every entry's size, so the size of a batch bounds its encoding.
 */
export const raftEntryOverheadBytesMax = 8 + 8 + 1 + 8;
/**
 * Bytes of a peer message besides its entries (codec.ts): version and type bytes, then at most
 * seven varints of 8 bytes (from, to, term, prevLogIndex, prevLogTerm, commit, entry count).
 */
export const raftMessageHeaderBytesMax = 2 + 7 * 8;
/**
 * Entry bytes (data plus overhead) batched into one append when it carries more than one entry
 * (etcd's MaxSizePerMsg). An entry larger than this travels alone.
 */
export const raftAppendBatchBytesMax = 1 * MiB;
/** The largest peer message: a batch of entries, or one entry of the largest allowed size. */
export const raftMessageBytesMax =
  raftMessageHeaderBytesMax + Math.max(raftAppendBatchBytesMax, raftEntryBytesMax + raftEntryOverheadBytesMax);
/** Appends in flight to one follower in replicate state. */
export const raftInflightMessagesMax = 256;
/**
 * Entry bytes a leader has appended and not yet applied; beyond it proposals fail with
 * "too many requests" (one proposal is always taken when nothing is pending).
 */
export const raftUncommittedBytesMax = 32 * MiB;
/** Entry bytes of committed entries handed out for applying in one Ready (at least one entry). */
export const raftApplyBytesMax = 8 * MiB;
/** Reads waiting for leadership confirmation, and reads queued before a new leader's first commit. */
export const raftPendingReadsMax = 4096;
/** Peer messages waiting for a member's loop; beyond it they are dropped and raft retransmits. */
export const inboxMessagesMax = 50_000;

/** A peer frame's header (src/transport/frame.ts): a u32 length and a kind byte. */
export const peerFrameHeaderBytes = 5;
/** The largest frame a member sends or accepts from a peer after the handshake. */
export const peerFrameBytesMax = peerFrameHeaderBytes + raftMessageBytesMax;
/** Before the handshake completes a connection may send no larger frame (Hello and HelloAck are tiny). */
export const peerHandshakeFrameBytesMax = 1 * KiB;
/**
 * Snapshot data bytes per frame. Smaller than a frame may be, so a snapshot being streamed holds
 * up the heartbeats queued behind it on the same connection for one chunk at most.
 */
export const peerSnapshotChunkBytesMax = 4 * MiB - peerFrameHeaderBytes;
/**
 * The largest snapshot a member receives from its peers (larger ones are dropped and logged), for
 * a space quota of `quotaBackendBytes`. A snapshot carries the data in use, which the quota bounds
 * (passing it only by what is written before the NOSPACE alarm is raised), so twice the quota, and
 * never less than twice the default, always fits; with no quota (negative) nothing is refused.
 * Snapshots are streamed to disk, so this bounds disk, not memory. (A fixed 1 GiB refused the
 * snapshot of any member holding more under the default 2 GiB quota: its follower never caught up.)
 */
export function peerSnapshotBytesMaxFor(quotaBackendBytes: number): number {
  return quotaBackendBytes < 0 ? Number.MAX_SAFE_INTEGER : 2 * Math.max(quotaBackendBytes, quotaBackendBytesDefault);
}
/** The receive cap under the default quota (transports built without a server's settings). */
export const peerSnapshotBytesMax = peerSnapshotBytesMaxFor(quotaBackendBytesDefault);
/**
 * Snapshot data received and not yet written to its file; past it the connection is not read
 * until the disk catches up, so a received snapshot holds at most this plus one chunk in memory.
 */
export const peerSnapshotPendingBytesMax = peerSnapshotChunkBytesMax;
/** Messages queued for one peer; when full, messages are dropped and the peer reported unreachable. */
export const peerSendQueueMessagesMax = 4096;
/** Inbound peer connections open at once; more are closed at once. */
export const peerInboundConnectionsMax = 256;
/**
 * Challenges (src/transport/tcp.ts: the dial-back that binds a connection to a member id) kept
 * for a peer whose link is not connected yet; older ones are for connections long gone.
 */
export const peerQueuedChallengesMax = 8;
/** Challenges a connection may relay before it is bound (a peer challenges each of our dials once). */
export const peerUnboundChallengesMax = 8;

// ---- Snapshots in etcd's format (src/bbolt, src/backup) ---------------------------------------

/** bbolt's MaxKeySize: the longest key a bbolt file may hold (etcd's revision keys are 17-18 bytes). */
export const bboltKeyBytesMax = 32768;
/** bbolt's MaxValueSize: the largest value; every key version (an mvccpb.KeyValue) must fit. */
export const bboltValueBytesMax = 2 ** 31 - 2;

// ---- Start-up checks ----------------------------------------------------------------------

/** The settings the derived limits depend on. */
export interface LimitSettings {
  /** --max-request-bytes. */
  maxRequestBytes: number;
}

/**
 * Throws InvalidArgument naming the setting and the limit when a relation between limits does not hold.
 * Called once at start-up (src/server/index.ts); the static relations are checked here too so that
 * a change to this file that breaks them fails the first test that starts a member.
 */
export function checkLimits(settings: LimitSettings): void {
  const problems: string[] = [];
  const need = (holds: boolean, problem: string): void => {
    if (!holds) problems.push(problem);
  };
  const { maxRequestBytes } = settings;
  need(
    Number.isSafeInteger(maxRequestBytes) && maxRequestBytes > 0 && maxRequestBytes <= requestBytesMax,
    `--max-request-bytes (${maxRequestBytes}) must be between 1 and ${requestBytesMax}, the largest request a raft entry is sized for`,
  );
  need(txnDepthMax <= commandTxnDepthMax, `txnDepthMax (${txnDepthMax}) exceeds commandTxnDepthMax (${commandTxnDepthMax})`);
  need(
    raftEntryBytesMax >= requestBytesMax + proposalHeaderBytesMax,
    `raftEntryBytesMax (${raftEntryBytesMax}) cannot hold the largest request (${requestBytesMax}) and its header`,
  );
  need(
    raftMessageBytesMax >= raftMessageHeaderBytesMax + raftEntryBytesMax + raftEntryOverheadBytesMax,
    `raftMessageBytesMax (${raftMessageBytesMax}) cannot carry one entry of raftEntryBytesMax (${raftEntryBytesMax})`,
  );
  need(
    raftMessageBytesMax >= raftMessageHeaderBytesMax + raftAppendBatchBytesMax,
    `raftMessageBytesMax (${raftMessageBytesMax}) cannot carry a batch of raftAppendBatchBytesMax (${raftAppendBatchBytesMax})`,
  );
  need(
    peerFrameBytesMax >= peerFrameHeaderBytes + raftMessageBytesMax,
    `peerFrameBytesMax (${peerFrameBytesMax}) cannot carry a message of raftMessageBytesMax (${raftMessageBytesMax})`,
  );
  need(peerFrameBytesMax <= 2 ** 32, `peerFrameBytesMax (${peerFrameBytesMax}) does not fit the frame's u32 length`);
  need(
    peerFrameHeaderBytes + peerSnapshotChunkBytesMax <= peerFrameBytesMax,
    `peerSnapshotChunkBytesMax (${peerSnapshotChunkBytesMax}) does not fit a frame of peerFrameBytesMax (${peerFrameBytesMax})`,
  );
  need(
    raftEntryBytesMax <= bboltValueBytesMax,
    `raftEntryBytesMax (${raftEntryBytesMax}) exceeds bboltValueBytesMax (${bboltValueBytesMax}): a key version could not be written to a snapshot`,
  );
  need(
    peerHandshakeFrameBytesMax <= peerFrameBytesMax,
    `peerHandshakeFrameBytesMax (${peerHandshakeFrameBytesMax}) exceeds peerFrameBytesMax (${peerFrameBytesMax})`,
  );
  need(
    grpcStreamWindowBytesMax >= 16 * KiB && grpcStreamWindowBytesMax < 2 ** 31,
    `grpcStreamWindowBytesMax (${grpcStreamWindowBytesMax}) must hold one frame (16 KiB) and be below 2^31`,
  );
  need(
    grpcHeaderListBytesMax + grpcStreamWindowBytesMax <= grpcConnectionBufferedBytesMax,
    `grpcHeaderListBytesMax (${grpcHeaderListBytesMax}) and grpcStreamWindowBytesMax (${grpcStreamWindowBytesMax}) exceed grpcConnectionBufferedBytesMax (${grpcConnectionBufferedBytesMax}): a stream with the largest headers could not send its window`,
  );
  need(httpHeadersMsMax <= httpRequestMsMax, `httpHeadersMsMax (${httpHeadersMsMax}) exceeds httpRequestMsMax (${httpRequestMsMax}), which counts the headers too`);
  need(
    grpcHeaderListBytesMax <= grpcHeaderBlockBytesMax,
    `grpcHeaderListBytesMax (${grpcHeaderListBytesMax}) exceeds grpcHeaderBlockBytesMax (${grpcHeaderBlockBytesMax}): a header list we accept could not be sent as literals`,
  );
  need(
    grpcHeaderBlockFramesMax * 16 * KiB >= grpcHeaderBlockBytesMax,
    `grpcHeaderBlockFramesMax (${grpcHeaderBlockFramesMax}) frames of 16 KiB cannot carry grpcHeaderBlockBytesMax (${grpcHeaderBlockBytesMax})`,
  );
  need(
    grpcHpackTableBytesMax <= grpcHeaderListBytesMax,
    `grpcHpackTableBytesMax (${grpcHpackTableBytesMax}) exceeds grpcHeaderListBytesMax (${grpcHeaderListBytesMax}): a table entry could not be used in a header list`,
  );
  need(grpcWorkResetsMax >= 1 && grpcWorkResetsWindowMs > 0, `grpcWorkResetsMax (${grpcWorkResetsMax}) and grpcWorkResetsWindowMs (${grpcWorkResetsWindowMs}) must be positive`);
  need(
    grpcControlFramesUnwrittenMax >= 2,
    `grpcControlFramesUnwrittenMax (${grpcControlFramesUnwrittenMax}) must let a SETTINGS acknowledgement and a PING acknowledgement wait together`,
  );
  need(grpcConnectionReservedMessagesMax >= 1, `grpcConnectionReservedMessagesMax (${grpcConnectionReservedMessagesMax}) must let one message of the largest size through`);
  if (problems.length > 0) throw new LichenError(ErrorCode.InvalidArgument, `limits: ${problems.join('; ')}`);
}
