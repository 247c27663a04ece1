package audit

import (
	"context"
	"testing"
	"time"
)

// BenchmarkRecorder_RecordFlood measures what the request path pays per
// blocked request while one machine floods a real single-node cluster: the
// copy into the queue, never a wait for Raft.
func BenchmarkRecorder_RecordFlood(b *testing.B) {
	tn := startNode(b, "node-1", nodeOptions{bootstrap: 1})
	waitFor(b, 10*time.Second, "leadership", tn.node.IsLeader)
	cfg := DefaultRecorderConfig()
	cfg.NodeID = "node-1"
	r, err := NewRecorder(cfg, tn, nil, testLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())

	ev := blocked(machineA, "198.51.100.7", time.Now())
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(ev)
		}
	})
}
