package cluster

import (
	"context"
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyward/keyward/guard"
)

// Limits and intervals of peer event propagation.
const (
	// peerRefreshInterval is how often the set of peers to send to is
	// rebuilt from the Raft configuration and gossip, and expired nonce
	// batches are pruned.
	peerRefreshInterval = 250 * time.Millisecond
	// maxEventFrame is the largest payload of one kindPeerEvents request
	// and of one kindNonceSync page.
	maxEventFrame = 1 << 20
	// peerQueueBytes bounds what waits for one unreachable peer; older
	// batches are dropped first.
	peerQueueBytes = 16 << 20
	// peerRetryMax is the longest pause between attempts to reach a peer.
	peerRetryMax = 2 * time.Second
	// nonceSyncGrace is how long a starting node waits for a peer that has
	// itself finished its start-up sync, before it accepts a peer that has
	// not (as after a restart of the whole cluster).
	nonceSyncGrace = 3 * time.Second
	// nonceSyncPoll is the pause between rounds of the start-up sync.
	nonceSyncPoll = 200 * time.Millisecond
)

// peerEvents collects the nonces this node accepts and the failed
// authentications it records, and sends them in batches to every peer.
type peerEvents struct {
	log *nonceLog
	// wake receives a value, without blocking, when pending has data.
	wake chan struct{}

	// pending holds the records not yet handed to the peers, split into
	// shards so that concurrent requests seldom take the same lock.
	pending [pendingShards]pendingShard
	// seed picks a nonce's pending shard.
	seed maphash.Seed

	peersMu sync.Mutex
	// peers maps a peer's node id to its sender.
	peers map[raft.ServerID]*peerSender
}

// pendingShards is the number of independently locked parts of the
// pending records.
const pendingShards = 16

// pendingShard holds records not yet handed to the peers; expiry is the
// latest nonce expiry among them in Unix milliseconds. Its buffer is
// reused after each flush.
type pendingShard struct {
	mu     sync.Mutex
	data   []byte
	expiry int64
	// Padding keeps neighbouring shards' locks off one cache line.
	_ [24]byte
}

// shardFor picks the pending shard of a nonce.
func (e *peerEvents) shardFor(nonce string) *pendingShard {
	return &e.pending[maphash.String(e.seed, nonce)%pendingShards]
}

func newPeerEvents(logLimit int) *peerEvents {
	return &peerEvents{
		seed:  maphash.MakeSeed(),
		log:   newNonceLog(logLimit),
		wake:  make(chan struct{}, 1),
		peers: make(map[raft.ServerID]*peerSender),
	}
}

// PublishNonce sends a nonce that this node accepted to every peer, which
// records it in its replay cache until expiresAt. It returns at once; the
// nonce travels in the background, normally within a millisecond on a LAN
// (see DESIGN.md). Values longer than 255 bytes are not sent.
func (n *Node) PublishNonce(machineID, nonce string, expiresAt time.Time) {
	if len(machineID) == 0 || len(machineID) > maxEventField || len(nonce) == 0 || len(nonce) > maxEventField {
		return
	}
	e := n.events
	sh := e.shardFor(nonce)
	sh.mu.Lock()
	sh.data = appendNonceRecord(sh.data, machineID, nonce, expiresAt)
	sh.expiry = max(sh.expiry, expiresAt.UnixMilli())
	sh.mu.Unlock()
	e.signal()
}

// PublishAuthFailure sends a failed authentication from addr to every
// peer, which counts it in its lockout as if it had seen it, so that the
// lockout of a source address holds across the cluster.
func (n *Node) PublishAuthFailure(addr netip.Addr) {
	if !addr.IsValid() {
		return
	}
	e := n.events
	sh := &e.pending[0]
	sh.mu.Lock()
	sh.data = appendFailureRecord(sh.data, addr)
	sh.mu.Unlock()
	e.signal()
}

func (e *peerEvents) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// take returns the pending records of every shard in one new buffer, and
// their latest nonce expiry, and clears them. Records are independent, so
// their order across shards does not matter.
func (e *peerEvents) take() ([]byte, int64) {
	var data []byte
	var expires int64
	for i := range e.pending {
		sh := &e.pending[i]
		sh.mu.Lock()
		data = append(data, sh.data...)
		expires = max(expires, sh.expiry)
		sh.data, sh.expiry = sh.data[:0], 0
		if cap(sh.data) > maxEventFrame {
			// A burst grew the buffer; let it go rather than keep it.
			sh.data = nil
		}
		sh.mu.Unlock()
	}
	return data, expires
}

// runPeerEvents hands pending records to the peer senders as soon as they
// arrive, keeps the peer set current and prunes the nonce log.
func (n *Node) runPeerEvents(ctx context.Context) {
	ticker := time.NewTicker(peerRefreshInterval)
	defer ticker.Stop()
	n.refreshPeers(ctx)
	for {
		select {
		case <-ctx.Done():
			n.stopPeers()
			return
		case <-n.events.wake:
			n.flushPeerEvents()
		case <-ticker.C:
			n.refreshPeers(ctx)
			n.events.log.prune(time.Now())
		}
	}
}

func (n *Node) flushPeerEvents() {
	data, expires := n.events.take()
	if len(data) == 0 {
		return
	}
	blob := n.events.log.add(data, expires)
	n.events.peersMu.Lock()
	defer n.events.peersMu.Unlock()
	for _, s := range n.events.peers {
		s.enqueue(blob)
	}
}

// peerTargets returns the Raft address of every other node in the Raft
// configuration or alive in gossip. Gossip metadata is the newest source
// of an address, then the address book, then the configuration.
func (n *Node) peerTargets() map[raft.ServerID]string {
	self := raft.ServerID(n.cfg.NodeID)
	out := make(map[raft.ServerID]string)
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if s.ID == self {
				continue
			}
			addr := s.Address
			if known, err := n.gossip.ServerAddr(s.ID); err == nil {
				addr = known
			}
			out[s.ID] = string(addr)
		}
	}
	if n.gossip.list != nil {
		for _, g := range n.gossip.alive() {
			if raft.ServerID(g.ID) != self {
				out[raft.ServerID(g.ID)] = g.Meta.RaftAddr
			}
		}
	}
	return out
}

// refreshPeers starts a sender for each new peer, updates the address of
// known ones and stops the senders of peers that are gone.
func (n *Node) refreshPeers(ctx context.Context) {
	targets := n.peerTargets()
	e := n.events
	e.peersMu.Lock()
	defer e.peersMu.Unlock()
	for id, addr := range targets {
		if s, ok := e.peers[id]; ok {
			s.setAddr(addr)
			continue
		}
		s := newPeerSender(n, id, addr)
		e.peers[id] = s
		sctx, cancel := context.WithCancel(ctx)
		s.cancel = cancel
		n.goBackground(func(context.Context) { s.run(sctx) })
	}
	for id, s := range e.peers {
		if _, ok := targets[id]; !ok {
			s.cancel()
			delete(e.peers, id)
		}
	}
}

func (n *Node) stopPeers() {
	n.events.peersMu.Lock()
	defer n.events.peersMu.Unlock()
	for id, s := range n.events.peers {
		s.cancel()
		delete(n.events.peers, id)
	}
}

// handlePeerRequest serves the request kinds that every node serves. It
// reports false for the kinds that only the leader serves.
func (n *Node) handlePeerRequest(req *request) (*response, bool) {
	switch req.kind {
	case kindWaitApplied:
		return n.serveWaitApplied(req), true
	case kindPeerEvents:
		return n.servePeerEvents(req), true
	case kindNonceSync:
		return n.serveNonceSync(req), true
	case kindClock:
		return n.serveClock(), true
	}
	return nil, false
}

// servePeerEvents records a peer's nonces and failures. A nonce batch is
// also kept in the nonce log, so this node can pass it on to a peer that
// restarts. The payload belongs to this request (readFrame allocates it),
// so the log keeps it without copying.
func (n *Node) servePeerEvents(req *request) *response {
	now := time.Now()
	var expires int64
	count := 0
	err := decodePeerEvents(req.payload, func(ev peerEvent) {
		count++
		switch ev.kind {
		case recordNonce:
			expires = max(expires, ev.expiresAt.UnixMilli())
			if n.cfg.ReplayCache != nil {
				n.cfg.ReplayCache.Record(ev.machineID, ev.nonce, n.keepNonceUntil(ev.expiresAt, now))
			}
		case recordFailure:
			if n.cfg.Lockout != nil {
				n.cfg.Lockout.Failure(ev.addr, now)
			}
		}
	})
	n.metrics.eventsReceived.Add(float64(count))
	if err != nil {
		return failure(statusBadRequest, "peer events from %s: %v", req.origin, err)
	}
	n.events.log.add(req.payload, expires)
	return &response{status: statusOK}
}

// serveNonceSync returns one page of the nonce log. The first payload byte
// is 1 when this node has finished its own start-up sync, so the page set
// is complete, else 0.
func (n *Node) serveNonceSync(req *request) *response {
	if len(req.payload) != 8 {
		return failure(statusBadRequest, "nonce sync payload is %d bytes, want 8", len(req.payload))
	}
	cursor := binary.BigEndian.Uint64(req.payload)
	page, next := n.events.log.page(cursor, maxEventFrame, time.Now())
	flag := byte(0)
	if n.ready.noncesSynced.Load() {
		flag = 1
	}
	return &response{status: statusOK, index: next, payload: append([]byte{flag}, page...)}
}

// syncNoncesOnStart pulls the nonce log of a peer into the replay cache,
// then marks the nonces synced. A node that is the only member of its
// Raft configuration has no peer to ask and is synced at once.
func (n *Node) syncNoncesOnStart(ctx context.Context) {
	ticker := time.NewTicker(nonceSyncPoll)
	defer ticker.Stop()
	start := time.Now()
	for {
		if n.trySyncNonces(ctx, time.Since(start) > nonceSyncGrace) {
			n.ready.noncesSynced.Store(true)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// trySyncNonces pulls from each peer in id order until one that finished
// its own sync replied in full. When every peer replied but none had
// finished (a new cluster, or every node restarting at once), their union
// is all there is. The same holds once acceptUnsynced is set, for peers
// that replied while others did not.
func (n *Node) trySyncNonces(ctx context.Context, acceptUnsynced bool) bool {
	targets := n.peerTargets()
	if len(targets) == 0 {
		return n.onlyMember()
	}
	ids := make([]raft.ServerID, 0, len(targets))
	for id := range targets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	replied, total := 0, 0
	for _, id := range ids {
		count, synced, ok := n.pullNonces(ctx, targets[id])
		if !ok {
			continue
		}
		replied++
		total += count
		if synced {
			n.logger.Info("pulled recent nonces from a peer", keyPeerID, string(id), "nonces", count)
			return true
		}
	}
	if replied > 0 && (replied == len(ids) || acceptUnsynced) {
		n.logger.Info("pulled recent nonces from peers that are starting too", "peers", replied, "nonces", total)
		return true
	}
	return false
}

// onlyMember reports whether the Raft configuration holds this node alone.
func (n *Node) onlyMember() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	servers := f.Configuration().Servers
	return len(servers) == 1 && servers[0].ID == raft.ServerID(n.cfg.NodeID)
}

// maxSyncPages bounds one pull, so a peer whose log grows as fast as it is
// read cannot keep the puller busy for ever.
const maxSyncPages = 1024

// pullNonces reads every page of a peer's nonce log into the replay cache
// and this node's own log. It returns the number of nonces, whether the
// peer had finished its own sync, and whether the pull completed.
func (n *Node) pullNonces(ctx context.Context, addr string) (int, bool, bool) {
	cursor, count, synced := uint64(0), 0, false
	for range maxSyncPages {
		reqCtx, cancel := context.WithTimeout(ctx, n.cfg.TransportTimeout)
		req := &request{kind: kindNonceSync, hops: 1, timeout: timeLeft(reqCtx), origin: n.cfg.NodeID,
			payload: binary.BigEndian.AppendUint64(nil, cursor)}
		res, err := n.forwarder.roundTrip(reqCtx, addr, req)
		cancel()
		if err != nil || res.status != statusOK || len(res.payload) == 0 {
			n.logger.Debug("nonce sync request failed", keyAddr, addr, keyErr, err)
			return count, false, false
		}
		synced = res.payload[0] == 1
		page := res.payload[1:]
		if len(page) == 0 {
			return count, synced, true
		}
		added, err := n.recordNonces(page)
		count += added
		if err != nil {
			n.logger.Warn("nonce sync page malformed", keyAddr, addr, keyErr, err)
			return count, false, false
		}
		cursor = res.index
	}
	return count, synced, true
}

// recordNonces records the unexpired nonces of a page in the replay cache
// and keeps those the cache did not hold yet in the nonce log and its
// journal. Failure records are skipped, because they were counted when
// they happened.
func (n *Node) recordNonces(page []byte) (int, error) {
	fresh, count, expires, err := n.cacheNonces(page)
	if expires > 0 {
		n.events.log.add(fresh, expires)
	}
	return count, err
}

// cacheNonces records the unexpired nonces of a page in the replay cache.
// It returns the records that the cache did not hold yet, how many there
// were and their latest expiry in Unix milliseconds (zero when none).
// Only those records go on to the nonce log and its journal. A page
// pulled from a peer at start repeats what this node loaded from its own
// journal or pulled from another peer. Keeping the repeats would make
// every node's log grow with each restart, and each peer's next pull
// longer.
// Without a replay cache every unexpired nonce counts as new.
func (n *Node) cacheNonces(page []byte) (fresh []byte, count int, expires int64, err error) {
	now := time.Now()
	err = decodePeerEvents(page, func(ev peerEvent) {
		if ev.kind != recordNonce || !ev.expiresAt.After(now) {
			return
		}
		until := n.keepNonceUntil(ev.expiresAt, now)
		if n.cfg.ReplayCache != nil && !n.cfg.ReplayCache.Record(ev.machineID, ev.nonce, until) {
			return
		}
		count++
		expires = max(expires, until.UnixMilli())
		fresh = appendNonceRecord(fresh, ev.machineID, ev.nonce, until)
	})
	return fresh, count, expires, err
}

// keepNonceUntil returns how long this node keeps a nonce that another
// node accepted, or that it reads back from its journal: until expiresAt,
// and at least this node's own retention from now. A peer with a shorter
// --timestamp-window, or this node before a restart with a longer one,
// set expiresAt for a shorter window than this node checks. Without the
// floor the nonce would leave the cache while a replay of its request
// still passed the timestamp check.
func (n *Node) keepNonceUntil(expiresAt, now time.Time) time.Time {
	if n.cfg.ReplayCache == nil {
		return expiresAt
	}
	if own := now.Add(n.cfg.ReplayCache.Retention()); own.After(expiresAt) {
		return own
	}
	return expiresAt
}

// loadNonces opens the nonce journal, records the unexpired nonces it holds
// and keeps them in the nonce log for peers that pull. A nonce file that an
// earlier version wrote at shutdown is moved into the journal and deleted.
// Without a journal the node still runs; its nonces then survive a restart
// only through its peers.
func (n *Node) loadNonces() {
	j, blobs, err := openNonceJournal(n.cfg.DataDir, n.cfg.NonceLogBytes, time.Now(), n.logger)
	if err != nil {
		n.logger.Error("nonce journal unavailable; nonces this node accepts survive its restart only through its peers", keyErr, err)
	} else {
		n.events.log.journal.Store(j)
	}
	count := 0
	for _, b := range blobs {
		fresh, added, expires, err := n.cacheNonces(b.data)
		if err != nil {
			n.logger.Warn("nonce journal batch ends in a malformed record", keyErr, err)
		}
		if expires > 0 {
			n.events.log.keep(fresh, expires)
		}
		count += added
	}
	if len(blobs) > 0 {
		n.logger.Info("loaded nonces from the journal", "nonces", count, "batches", len(blobs))
	}
	n.migrateNonceFile()
}

// migrateNonceFile moves the nonces of a file written by an earlier
// version at shutdown into the log and the journal, then deletes the file.
func (n *Node) migrateNonceFile() {
	path := nonceFilePath(n.cfg.DataDir)
	data, err := readNonceFile(path, n.cfg.NonceLogBytes)
	if err != nil {
		n.logger.Warn("ignoring nonce file", keyErr, err)
	}
	if data == nil {
		return
	}
	count, err := n.recordNonces(data)
	if err != nil {
		n.logger.Warn("nonce file ends in a malformed record", keyErr, err)
	}
	if err := os.Remove(path); err != nil {
		n.logger.Warn("could not delete the nonce file after moving it into the journal", keyErr, err)
	}
	n.logger.Info("moved nonces saved at shutdown into the journal", "nonces", count)
}

// closeNonceJournal stops journal writes; sync flushes the last segment to
// disk, which a graceful shutdown can afford.
func (n *Node) closeNonceJournal(sync bool) {
	if j := n.events.log.journal.Load(); j != nil {
		j.close(sync)
	}
}

// ReplayCache returns Config.ReplayCache, which may be nil.
func (n *Node) ReplayCache() *guard.ReplayCache { return n.cfg.ReplayCache }

// Lockout returns Config.Lockout, which may be nil.
func (n *Node) Lockout() *guard.Lockout { return n.cfg.Lockout }
