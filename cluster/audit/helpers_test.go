package audit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/fsm/seal"
)

// TestMain fails the run when goroutines outlive the tests, polling a
// moment for memberlist probes and idle HTTP connections to end.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			if err = goleak.Find(); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

const testVault fsm.VaultID = "vault_aaaaaaaaaaaaaaaa"

func testLogger() *slog.Logger {
	if os.Getenv("KEYWARD_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func testKeyring(t testing.TB) *seal.Keyring {
	t.Helper()
	root := make([]byte, seal.KeySize)
	for i := range root {
		root[i] = byte(7 * (i + 1))
	}
	k, err := seal.NewKeyring(root)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testNode is a real cluster node on loopback over a real Pebble FSM.
type testNode struct {
	t    testing.TB
	id   string
	sm   *fsm.FSM
	node *cluster.Node
	once sync.Once
}

// nodeOptions adjust a node before it starts.
type nodeOptions struct {
	bootstrap int
	join      []string
	// jobs builds the leader jobs once the node exists.
	jobs func(tn *testNode) []func(context.Context)
}

func startNode(t testing.TB, id string, opts nodeOptions) *testNode {
	t.Helper()
	dir := t.TempDir()
	sm, err := fsm.Open(fsm.Config{Dir: filepath.Join(dir, "fsm"), Keyring: testKeyring(t)}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{t: t, id: id, sm: sm}
	cfg := cluster.DefaultConfig()
	cfg.NodeID = id
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.RaftBindAddr = "127.0.0.1:0"
	cfg.GossipBindAddr = "127.0.0.1:0"
	cfg.ReconcileInterval = 200 * time.Millisecond
	cfg.JoinRetryInterval = 100 * time.Millisecond
	cfg.DeadNodeReclaimTime = time.Second
	cfg.BootstrapExpect = opts.bootstrap
	cfg.Join = opts.join
	if opts.jobs != nil {
		cfg.LeaderJobs = opts.jobs(tn)
	}
	tn.node, err = cluster.New(cfg, sm, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tn.node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tn.stop)
	return tn
}

// Apply lets a testNode serve as the Applier of jobs built before the
// node exists.
func (tn *testNode) Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Response, error) {
	return tn.node.Apply(ctx, cmd)
}

func (tn *testNode) stop() { tn.close(10 * time.Second) }

// crash stops the node without handing over leadership, as a kill would.
func (tn *testNode) crash() { tn.close(0) }

func (tn *testNode) close(grace time.Duration) {
	tn.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if grace == 0 {
			cancel()
		}
		tn.node.Close(ctx)
		tn.sm.Close()
	})
}

func startSingle(t *testing.T, jobs func(tn *testNode) []func(context.Context)) *testNode {
	t.Helper()
	tn := startNode(t, "node-1", nodeOptions{bootstrap: 1, jobs: jobs})
	waitFor(t, 10*time.Second, "leadership", tn.node.IsLeader)
	return tn
}

func startThree(t *testing.T, jobs func(tn *testNode) []func(context.Context)) []*testNode {
	t.Helper()
	var nodes []*testNode
	for i := range 3 {
		opts := nodeOptions{bootstrap: 3, jobs: jobs}
		if i > 0 {
			opts.join = []string{nodes[0].node.GossipAddr()}
		}
		nodes = append(nodes, startNode(t, fmt.Sprintf("node-%d", i+1), opts))
	}
	waitFor(t, 20*time.Second, "a leader known to all", func() bool {
		leader := ""
		for _, n := range nodes {
			id := n.node.LeaderID()
			if id == "" || (leader != "" && id != leader) {
				return false
			}
			leader = id
		}
		return true
	})
	return nodes
}

func leaderOf(nodes []*testNode) *testNode {
	for _, n := range nodes {
		if n.node.IsLeader() {
			return n
		}
	}
	return nil
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mustApply proposes a command through tn and fails on any error.
func mustApply(t testing.TB, tn *testNode, typ fsm.CommandType, payload any) *fsm.Response {
	t.Helper()
	cmd, err := fsm.NewCommand(typ, time.Now().UnixMilli(), fsm.Actor{Kind: fsm.ActorUser, ID: "tok_test", SourceIP: "192.0.2.1"}, payload)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Node = tn.id
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := tn.node.Apply(ctx, cmd)
	if err != nil {
		t.Fatalf("apply %s: %v", typ, err)
	}
	if err := resp.Err(); err != nil {
		t.Fatalf("apply %s rejected: %v", typ, err)
	}
	return resp
}

func createVault(t testing.TB, tn *testNode) {
	t.Helper()
	mustApply(t, tn, fsm.CmdCreateVault, fsm.CreateVaultPayload{ID: testVault, Name: "prod"})
}

// createWebhook stores a webhook for url and returns it with its secret.
func createWebhook(t testing.TB, tn *testNode, id, url string, actions ...string) (*fsm.Webhook, []byte) {
	t.Helper()
	k := testKeyring(t)
	wrapped, err := k.NewProjectKey()
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("whsec_test_" + id)
	sealed, err := k.Seal(wrapped, id, secret)
	if err != nil {
		t.Fatal(err)
	}
	w := fsm.Webhook{ID: id, VaultID: testVault, URL: url, Actions: actions, Enabled: true, Secret: sealed, WrappedKey: wrapped}
	mustApply(t, tn, fsm.CmdCreateWebhook, fsm.CreateWebhookPayload{Webhook: w})
	got, _, err := tn.sm.Webhook(testVault, id)
	if err != nil {
		t.Fatal(err)
	}
	return got, secret
}

// blocked is a temp_machine_blocked event of one machine from one address.
func blocked(machine, ip string, at time.Time) Event {
	return Event{
		Action: "temp_machine_blocked", Severity: fsm.SeverityHigh, ActorKind: fsm.ActorMachine,
		ActorID: machine, VaultID: string(testVault), MachineID: machine, SourceIP: ip,
		Detail: "ip " + ip + " not_in_allowlist", Fields: []byte(`{"ip":"` + ip + `"}`),
		Axes: "ip:not_in_allowlist:false", Time: at,
	}
}

// appendEntries writes n blocked entries straight into the log.
func appendEntries(t testing.TB, tn *testNode, n int, detail string) {
	t.Helper()
	now := time.Now()
	var entries []fsm.AuditEntry
	for i := range n {
		ev := blocked("11111111-1111-4111-8111-111111111111", "198.51.100.7", now)
		ev.Detail = fmt.Sprintf("%s %d", detail, i)
		entries = append(entries, ev.entry(tn.id, now, 1))
	}
	mustApply(t, tn, fsm.CmdAuditAppend, fsm.AuditAppendPayload{Entries: entries})
}

// vaultEntries returns every entry of the test vault, oldest first.
func vaultEntries(t testing.TB, sm *fsm.FSM, actions ...string) []fsm.AuditEntry {
	t.Helper()
	page, err := sm.QueryAudit(fsm.AuditQuery{VaultID: testVault, Actions: actions, Ascending: true, Limit: fsm.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	return page.Entries
}

// fakeClock is a settable clock for windows and retention.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
