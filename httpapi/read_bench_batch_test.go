package httpapi

import (
	"sync"
	"testing"

	"github.com/keyward/keyward/guard"
)

var (
	unbatchedOnce sync.Once
	unbatchedSrv  *Server
	unbatchedErr  error
)

// BenchmarkSignedRead_LoopbackUnbatched is BenchmarkSignedRead_Loopback
// against a server that verifies every signature on its own, to show what
// batch verification adds.
func BenchmarkSignedRead_LoopbackUnbatched(b *testing.B) {
	rb := sharedReadBench(b)
	unbatchedOnce.Do(func() {
		cfg := DefaultConfig()
		cfg.Addr = "127.0.0.1:0"
		cfg.Auditor = RecorderAuditor(rb.recorder)
		cfg.Lockout = testLockout
		cfg.Verifier = guard.NewBatchVerifier(1, 0)
		if unbatchedSrv, unbatchedErr = New(cfg, rb.env.node, rb.env.sm, rb.env.keyring, nil, testLogger()); unbatchedErr == nil {
			unbatchedErr = unbatchedSrv.Start()
		}
	})
	if unbatchedErr != nil {
		b.Fatalf("start unbatched server: %v", unbatchedErr)
	}
	benchmarkLoopback(b, rb, unbatchedSrv)
}
