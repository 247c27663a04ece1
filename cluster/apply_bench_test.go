package cluster

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/fsm/seal"
)

// benchWriterCounts are the concurrent writer counts of the write
// benchmarks, the same as the bench tool's default.
var benchWriterCounts = []int{1, 64, 256}

// BenchmarkApply_SecretUpdates applies secret updates through a
// single-voter node on disk, each writer on its own secret, and reports
// writes per second and the process's CPU time per write. It measures the
// write path below HTTP: Raft's group commit into raft-boltdb, the batching
// state machine and the wait until the origin node applied the entry.
func BenchmarkApply_SecretUpdates(b *testing.B) {
	nodes := startBenchCluster(b, 1)
	writer := newSecretWriter(b, nodes[0], slices.Max(benchWriterCounts))
	runWriterLevels(b, writer)
}

// BenchmarkApply_SecretUpdatesThroughFollower is BenchmarkApply_SecretUpdates
// on three voters, with every write sent to a follower, which forwards it
// to the leader and waits until it applied the entry itself.
func BenchmarkApply_SecretUpdatesThroughFollower(b *testing.B) {
	nodes := startBenchCluster(b, 3)
	var follower *Node
	for _, n := range nodes {
		if !n.IsLeader() {
			follower = n
			break
		}
	}
	writer := newSecretWriter(b, follower, slices.Max(benchWriterCounts))
	runWriterLevels(b, writer)
}

func runWriterLevels(b *testing.B, writer *secretWriter) {
	for _, writers := range benchWriterCounts {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			cpuBefore := processCPU()
			b.ResetTimer()
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := writer.update(w); err != nil {
							failed.Store(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			cpu := processCPU() - cpuBefore
			if err, ok := failed.Load().(error); ok {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/write")
		})
	}
}

// processCPU returns the user and system CPU time this process used. On
// the shared hosts where benchmarks run, it varies less than throughput.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startBenchCluster starts n voters on disk and waits until they agree on
// a leader.
func startBenchCluster(b *testing.B, n int) []*Node {
	b.Helper()
	var nodes []*Node
	for i := range n {
		dir := b.TempDir()
		cfg := testConfig(fmt.Sprintf("bench-%d", i+1), dir)
		cfg.BootstrapExpect = n
		if i > 0 {
			cfg.Join = []string{nodes[0].GossipAddr()}
		}
		nodes = append(nodes, startBenchNode(b, cfg, dir))
	}
	deadline := time.Now().Add(20 * time.Second)
	for !agreedLeader(nodes) {
		if time.Now().After(deadline) {
			b.Fatalf("%d nodes did not agree on a leader within 20s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nodes
}

func agreedLeader(nodes []*Node) bool {
	leader := ""
	for _, n := range nodes {
		if n.IsLeader() {
			leader = n.NodeID()
		}
	}
	for _, n := range nodes {
		if leader == "" || n.LeaderID() != leader {
			return false
		}
	}
	return true
}

func startBenchNode(b *testing.B, cfg Config, dir string) *Node {
	b.Helper()
	sm, err := fsm.Open(fsm.Config{Dir: filepath.Join(dir, "fsm")}, testLogger())
	if err != nil {
		b.Fatal(err)
	}
	node, err := New(cfg, sm, testLogger())
	if err != nil {
		sm.Close()
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Start(ctx); err != nil {
		sm.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := node.Close(ctx); err != nil {
			b.Errorf("close %s: %v", cfg.NodeID, err)
		}
		if err := sm.Close(); err != nil {
			b.Errorf("close fsm of %s: %v", cfg.NodeID, err)
		}
	})
	return node
}

// secretWriter updates secrets through one node, one secret per writer,
// and tracks each secret's version.
type secretWriter struct {
	node     *Node
	keyring  *seal.Keyring
	wrapped  []byte
	ids      []fsm.SecretID
	versions []int
	seq      atomic.Int64
}

// newSecretWriter creates a vault, a project and n secrets through node.
func newSecretWriter(b *testing.B, node *Node, n int) *secretWriter {
	b.Helper()
	root := make([]byte, seal.KeySize)
	_, _ = rand.Read(root)
	keyring, err := seal.NewKeyring(root)
	if err != nil {
		b.Fatal(err)
	}
	wrapped, err := keyring.NewProjectKey()
	if err != nil {
		b.Fatal(err)
	}
	w := &secretWriter{node: node, keyring: keyring, wrapped: wrapped, ids: make([]fsm.SecretID, n), versions: make([]int, n)}
	vault := fsm.VaultID("vault_benchwrites00001")
	project := fsm.ProjectID("proj_benchwrite")
	if err := w.apply(fsm.CmdCreateVault, fsm.CreateVaultPayload{ID: vault, Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	if err := w.apply(fsm.CmdCreateProject, fsm.CreateProjectPayload{ID: project, VaultID: vault, Name: "bench", WrappedKey: wrapped}); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		w.ids[i] = fsm.SecretID(fmt.Sprintf("sk_benchw%04d", i))
		sealed, err := keyring.Seal(wrapped, string(w.ids[i]), []byte("v0"))
		if err != nil {
			b.Fatal(err)
		}
		payload := fsm.CreateSecretPayload{ID: w.ids[i], ProjectID: project, Name: string(w.ids[i]), Type: fsm.SecretTypeSecret, Sealed: sealed}
		if err := w.apply(fsm.CmdCreateSecret, payload); err != nil {
			b.Fatal(err)
		}
		w.versions[i] = 1
	}
	return w
}

// update stores a new version of the secret of writer i, sealed as the
// admin handler seals it.
func (w *secretWriter) update(i int) error {
	seq := w.seq.Add(1)
	sealed, err := w.keyring.Seal(w.wrapped, string(w.ids[i]), fmt.Appendf(nil, "bench value %d", seq))
	if err != nil {
		return err
	}
	payload := fsm.UpdateSecretPayload{ID: w.ids[i], ExpectedVersion: w.versions[i], Sealed: sealed}
	if err := w.apply(fsm.CmdUpdateSecret, payload); err != nil {
		return err
	}
	w.versions[i]++
	return nil
}

// apply proposes one command with a unique request id, as the HTTP layer
// does, and fails unless the state machine accepted it.
func (w *secretWriter) apply(typ fsm.CommandType, payload any) error {
	cmd, err := fsm.NewCommand(typ, time.Now().UnixMilli(), fsm.Actor{Kind: "user", ID: "bench"}, payload)
	if err != nil {
		return err
	}
	cmd.RequestID = fmt.Sprintf("bench-%d", w.seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := w.node.Apply(ctx, cmd)
	if err != nil {
		return fmt.Errorf("apply %s: %w", typ, err)
	}
	if resp.Code != "" {
		return fmt.Errorf("apply %s: rejected: %s: %s", typ, resp.Code, resp.Message)
	}
	return nil
}
