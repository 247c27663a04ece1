package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"hash/maphash"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/keyward/keyward/fsm"
)

// defaultLastSeenInterval is how often a node writes the last-seen times
// it collected through Raft. A machine's lastSeenAt is therefore at most
// this old plus one Raft round trip.
const defaultLastSeenInterval = time.Minute

const lastSeenShards = 64

// lastSeenTracker collects, per node, the latest accepted signed request of
// each machine. The request path only stores into a sharded map, so a read
// gains no disk write and no Raft round trip. A loop writes the collected
// entries through Raft once per interval.
type lastSeenTracker struct {
	seed   maphash.Seed
	shards [lastSeenShards]lastSeenShard
}

type lastSeenShard struct {
	mu      sync.Mutex
	entries map[string]lastSeenEntry
}

type lastSeenEntry struct {
	at int64 // Unix milliseconds
	ip netip.Addr
}

func newLastSeenTracker() *lastSeenTracker {
	t := &lastSeenTracker{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].entries = make(map[string]lastSeenEntry)
	}
	return t
}

// record notes a request of machine id at atMs from ip. id must be a
// string that outlives the request (the machine record's id), because the
// map keeps it as a key.
func (t *lastSeenTracker) record(id string, atMs int64, ip netip.Addr) {
	sh := &t.shards[maphash.String(t.seed, id)%lastSeenShards]
	sh.mu.Lock()
	if old, ok := sh.entries[id]; !ok || atMs > old.at {
		sh.entries[id] = lastSeenEntry{at: atMs, ip: ip}
	}
	sh.mu.Unlock()
}

// drain removes and returns every collected entry, sorted by machine id
// so that the commands built from them are deterministic.
func (t *lastSeenTracker) drain() []fsm.LastSeen {
	var out []fsm.LastSeen
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		entries := sh.entries
		sh.entries = make(map[string]lastSeenEntry, len(entries))
		sh.mu.Unlock()
		for id, e := range entries {
			out = append(out, fsm.LastSeen{MachineID: fsm.MachineID(id), At: e.at, IP: e.ip.String()})
		}
	}
	slices.SortFunc(out, func(a, b fsm.LastSeen) int { return cmp.Compare(a.MachineID, b.MachineID) })
	return out
}

// startLastSeen starts the last-seen loop once.
func (s *Server) startLastSeen() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopLastSeen != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopLastSeen = cancel
	s.lastSeenDone = make(chan struct{})
	go func() {
		defer close(s.lastSeenDone)
		s.runLastSeen(ctx, s.cfg.LastSeenInterval)
	}()
}

// stopLastSeenLoop stops the loop and waits, until ctx ends, for its final
// write.
func (s *Server) stopLastSeenLoop(ctx context.Context) {
	s.mu.Lock()
	stop, done := s.stopLastSeen, s.lastSeenDone
	s.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// runLastSeen writes the collected last-seen entries through Raft every
// interval until ctx ends, and once more on the way out so that a graceful
// stop loses nothing.
func (s *Server) runLastSeen(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
			s.flushLastSeen(flushCtx)
			cancel()
			return
		case <-ticker.C:
			s.flushLastSeen(ctx)
		}
	}
}

// flushLastSeen proposes the collected entries in commands of at most
// fsm.MaxLastSeenBatch entries. A failed command is logged and its entries
// dropped: the next request of each machine records it again, and
// lastSeenAt is informational, never used to grant access.
func (s *Server) flushLastSeen(ctx context.Context) {
	entries := s.lastSeen.drain()
	for len(entries) > 0 {
		n := min(len(entries), fsm.MaxLastSeenBatch)
		batch := entries[:n]
		entries = entries[n:]
		if err := s.proposeLastSeen(ctx, batch); err != nil {
			s.logger.Warn("last-seen update failed; the entries are dropped until each machine's next request",
				"machines", len(batch), "err", err)
			s.metrics.lastSeenDropped.Add(float64(len(batch)))
		}
	}
}

func (s *Server) proposeLastSeen(ctx context.Context, batch []fsm.LastSeen) error {
	payload, err := json.Marshal(fsm.RecordLastSeenPayload{Entries: batch})
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	cmd := &fsm.Command{
		Type:      fsm.CmdRecordLastSeen,
		RequestID: "last-seen:" + s.nodeID + ":" + now.UTC().Format(time.RFC3339Nano),
		Time:      now.UnixMilli(),
		Node:      s.nodeID,
		Actor:     fsm.Actor{Kind: actorSystem, ID: s.nodeID, SourceIP: "system"},
		Payload:   payload,
	}
	applyCtx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	defer cancel()
	resp, err := s.node.Apply(applyCtx, cmd)
	if err != nil {
		return err
	}
	return resp.Err()
}
