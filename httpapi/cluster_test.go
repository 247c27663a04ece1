package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/fsm/seal"
	"github.com/keyward/keyward/guard"
	"github.com/keyward/keyward/guard/geo"
)

// clusterStaleness is MaxStaleness of the three-node test cluster: short,
// so that the partition test is quick, but far above the heartbeat interval
// of 100 ms, so that healthy followers never cross it.
const clusterStaleness = 2 * time.Second

// clusterLockout locks a source after four failures, counted on all nodes.
var clusterLockout = guard.LockoutConfig{MaxFailures: 4, Window: time.Minute, Duration: time.Minute, MaxSources: 100}

// startClusterEnvs starts three nodes that form one cluster, each with its
// own state machine on disk and its own server, and initializes the
// cluster through the first one.
func startClusterEnvs(t *testing.T) []*testEnv {
	t.Helper()
	root := make([]byte, 32)
	if _, err := rand.Read(root); err != nil {
		t.Fatal(err)
	}
	var envs []*testEnv
	for i := range 3 {
		e := &testEnv{dir: t.TempDir(), clock: &testClock{}, audit: newRecordingAuditor()}
		keyring, err := seal.NewKeyring(root)
		if err != nil {
			t.Fatal(err)
		}
		e.keyring = keyring
		fcfg := fsm.DefaultConfig()
		fcfg.Dir = filepath.Join(e.dir, "fsm")
		fcfg.Keyring = keyring
		if e.sm, err = fsm.Open(fcfg, testLogger()); err != nil {
			t.Fatal(err)
		}
		var join []string
		if i > 0 {
			join = []string{envs[0].node.GossipAddr()}
		}
		startClusterNode(t, e, fmt.Sprintf("node-%d", i+1), "127.0.0.1:0", "127.0.0.1:0", join)
		envs = append(envs, e)
		t.Cleanup(func() { closeEnv(e) })
	}
	for _, e := range envs {
		startClusterServer(t, e)
	}
	waitClusterReady(t, envs)
	if err := envs[0].initialize(); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	for _, e := range envs[1:] {
		e.root = envs[0].root
	}
	return envs
}

// startClusterNode starts a cluster node for e on the given addresses.
func startClusterNode(t *testing.T, e *testEnv, id, raftAddr, gossipAddr string, join []string) {
	t.Helper()
	cfg := cluster.DefaultConfig()
	cfg.NodeID = id
	cfg.DataDir = filepath.Join(e.dir, "data")
	cfg.RaftBindAddr = raftAddr
	cfg.GossipBindAddr = gossipAddr
	cfg.Join = join
	cfg.BootstrapExpect = 3
	cfg.ReconcileInterval = 200 * time.Millisecond
	cfg.JoinRetryInterval = 100 * time.Millisecond
	cfg.DeadNodeReclaimTime = time.Second
	cfg.ReplayCache = guard.NewReplayCache(DefaultConfig().TimestampWindow)
	cfg.Lockout = guard.NewLockout(clusterLockout)
	node, err := cluster.New(cfg, e.sm, testLogger())
	if err != nil {
		t.Fatalf("new node %s: %v", id, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Start(ctx); err != nil {
		t.Fatalf("start node %s: %v", id, err)
	}
	e.node = node
}

// startClusterServer starts a server for e's node.
func startClusterServer(t *testing.T, e *testEnv) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Now = e.clock.Now
	cfg.Auditor = e.audit
	cfg.Lockout = clusterLockout
	cfg.MaxStaleness = clusterStaleness
	srv, err := New(cfg, e.node, e.sm, e.keyring, geo.NewEmbedded(), testLogger())
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	e.srv, e.addr = srv, srv.Addr()
}

// closeEnv stops the server, the node and the state machine of e; the
// temporary folders belong to the test.
func closeEnv(e *testEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e.srv != nil {
		_ = e.srv.Close(ctx)
	}
	if e.node != nil {
		_ = e.node.Close(ctx)
	}
	_ = e.sm.Close()
	e.audit.close()
}

// waitClusterReady waits until every server reports itself healthy.
func waitClusterReady(t *testing.T, envs []*testEnv) {
	t.Helper()
	for _, e := range envs {
		waitFor(t, 15*time.Second, "node "+e.node.NodeID()+" healthy", func() bool {
			resp, err := e.send(defaultSource, "GET", "/v1/sys/health", nil, nil)
			return err == nil && resp.status == http.StatusOK
		})
	}
}

// leaderEnv returns the environment whose node leads.
func leaderEnv(t *testing.T, envs []*testEnv) *testEnv {
	t.Helper()
	var leader *testEnv
	waitFor(t, 10*time.Second, "a leader", func() bool {
		for _, e := range envs {
			if e.node.IsLeader() {
				leader = e
				return true
			}
		}
		return false
	})
	return leader
}

func followerEnv(envs []*testEnv, leader *testEnv) *testEnv {
	for _, e := range envs {
		if e != leader {
			return e
		}
	}
	return nil
}

// confirmation decodes the confirmation fields of a write response.
type confirmation struct {
	ConfirmedNodes   *int     `json:"confirmedNodes"`
	ClusterNodes     *int     `json:"clusterNodes"`
	UnconfirmedNodes []string `json:"unconfirmedNodes"`
}

func decodeConfirmation(t *testing.T, resp response) confirmation {
	t.Helper()
	var c confirmation
	if err := json.Unmarshal(resp.body, &c); err != nil {
		t.Fatalf("decode %s: %v", resp.body, err)
	}
	return c
}

// wantConfirmed fails unless resp confirms the write on n of m nodes.
func wantConfirmed(t *testing.T, resp response, n, m int) confirmation {
	t.Helper()
	expectStatus(t, resp, http.StatusOK)
	c := decodeConfirmation(t, resp)
	if c.ConfirmedNodes == nil || c.ClusterNodes == nil {
		t.Fatalf("response %s has no confirmedNodes and clusterNodes", resp.body)
	}
	if *c.ConfirmedNodes != n || *c.ClusterNodes != m {
		t.Fatalf("confirmed on %d of %d nodes, want %d of %d: %s", *c.ConfirmedNodes, *c.ClusterNodes, n, m, resp.body)
	}
	return c
}

// machineGet is the signed read that the cluster tests send.
func machineGet(t *testing.T, e *testEnv, m testMachine, f fixture) response {
	t.Helper()
	return e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil)
}

func TestCluster_SecurityCriticalWrites(t *testing.T) {
	envs := startClusterEnvs(t)
	leader := leaderEnv(t, envs)
	follower := followerEnv(envs, leader)

	t.Run("revoke returns after every node refuses the machine", func(t *testing.T) {
		f, m := leader.readyMachine(t)
		for _, e := range envs {
			waitFor(t, 5*time.Second, "the machine readable on "+e.node.NodeID(), func() bool {
				return machineGet(t, e, m, f).status == http.StatusOK
			})
		}
		resp := follower.admin(t, "POST", follower.machinePath(m)+"/revoke", map[string]any{})
		wantConfirmed(t, resp, 3, 3)
		for _, e := range envs {
			entry, ok := e.sm.Machine(fsm.MachineID(m.id))
			if !ok || entry.Machine.Status != fsm.StatusRevoked {
				t.Errorf("%s holds the machine as %q right after the revoke returned", e.node.NodeID(), entry.Machine.Status)
			}
		}
		for _, e := range envs {
			if got := machineGet(t, e, m, f); got.status != http.StatusForbidden {
				t.Errorf("%s answered %d after the revoke returned, want 403: %s", e.node.NodeID(), got.status, got.body)
			}
		}
	})

	t.Run("only writes that take access away wait for confirmation", func(t *testing.T) {
		f, m := leader.readyMachine(t)
		path := leader.machinePath(m)
		cases := []struct {
			name    string
			method  string
			path    string
			body    any
			confirm bool
		}{
			{"grant removal", "PUT", path + "/grants", map[string]any{"secretIds": []string{f.secret}}, true},
			{"grant change", "PUT", path + "/grants", map[string]any{"secretIds": []string{f.secret, f.structured}}, true},
			{"guardrail change", "PUT", path + "/guardrails", map[string]any{"ipAllowlist": map[string]any{"cidrs": []string{"127.0.0.0/8"}}}, true},
			{"disable", "POST", path + "/disable", map[string]any{}, true},
			{"enable", "POST", path + "/enable", map[string]any{}, false},
			{"vault allowlist", "PUT", "/v1/admin/vaults/" + f.vault + "/ip-allowlist", map[string]any{"enabled": false, "entries": []any{}}, true},
			{"project detach", "DELETE", path + "/projects/" + f.project, nil, true},
			{"project attach", "POST", path + "/projects", map[string]any{"projectId": f.project}, false},
			{"revoke", "POST", path + "/revoke", map[string]any{}, true},
			{"purge", "DELETE", path, nil, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp := follower.admin(t, tc.method, tc.path, tc.body)
				if !tc.confirm {
					expectStatus(t, resp, http.StatusOK)
					if c := decodeConfirmation(t, resp); c.ConfirmedNodes != nil {
						t.Errorf("a write that grants access waited for confirmation: %s", resp.body)
					}
					return
				}
				wantConfirmed(t, resp, 3, 3)
			})
		}
	})

	t.Run("a revoke is enforced as soon as a follower applied it", func(t *testing.T) {
		// Nodes keep no per-machine decision cache: every request reads the
		// state machine's current entry. So the first request after the
		// follower applied the revoke is refused, with no wait for the
		// confirmation that HTTP writes add.
		f, m := leader.readyMachine(t)
		waitFor(t, 5*time.Second, "the machine readable on the follower", func() bool {
			return machineGet(t, follower, m, f).status == http.StatusOK
		})
		for range 5 {
			expectStatus(t, machineGet(t, follower, m, f), http.StatusOK)
		}
		payload := fsm.SetMachineStatusPayload{VaultID: fsm.VaultID(m.vault), MachineID: fsm.MachineID(m.id), Action: fsm.ActionRevoke}
		cmd, err := fsm.NewCommand(fsm.CmdSetMachineStatus, time.Now().UnixMilli(), fsm.Actor{Kind: "user", ID: "test"}, payload)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leader.node.Apply(context.Background(), cmd); err != nil {
			t.Fatalf("apply revoke: %v", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			entry, _ := follower.sm.Machine(fsm.MachineID(m.id))
			if entry.Machine.Status == fsm.StatusRevoked {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the follower did not apply the revoke within 5s")
			}
			time.Sleep(100 * time.Microsecond)
		}
		if got := machineGet(t, follower, m, f); got.status != http.StatusForbidden {
			t.Errorf("first request after the follower applied the revoke: %d, want 403: %s", got.status, got.body)
		}
	})

	t.Run("a request replayed to another node is rejected", func(t *testing.T) {
		f, m := leader.readyMachine(t)
		waitFor(t, 5*time.Second, "the machine readable everywhere", func() bool {
			for _, e := range envs {
				if machineGet(t, e, m, f).status != http.StatusOK {
					return false
				}
			}
			return true
		})
		path := "/v1/secret/" + f.secret
		headers := m.signedHeaders("GET", path, nil, leader.clock.Now().Unix())
		var others []*testEnv
		var sizes []int
		for _, e := range envs {
			if e != leader {
				others = append(others, e)
				sizes = append(sizes, e.node.ReplayCache().Len())
			}
		}
		start := time.Now()
		expectStatus(t, leader.mustSend(t, defaultSource, "GET", path, headers, nil), http.StatusOK)
		for i, e := range others {
			waitFor(t, 5*time.Second, "the nonce on "+e.node.NodeID(), func() bool {
				return e.node.ReplayCache().Len() > sizes[i]
			})
		}
		t.Logf("nonce reached both other nodes %s after the first response was read", time.Since(start))
		for _, e := range others {
			resp := e.mustSend(t, defaultSource, "GET", path, headers, nil)
			if resp.status != http.StatusUnauthorized {
				t.Errorf("replay to %s: %d, want 401: %s", e.node.NodeID(), resp.status, resp.body)
			}
		}
	})

	t.Run("failed authentications lock a source out on every node", func(t *testing.T) {
		const source = "127.0.0.23"
		f, m := leader.readyMachine(t)
		bad := m.signedHeaders("GET", "/v1/secret/"+f.secret, nil, leader.clock.Now().Unix())
		bad[3].value = "AAAA" + bad[3].value[4:]
		a, b, c := envs[0], envs[1], envs[2]
		for _, e := range []*testEnv{a, a, b, b} {
			expectStatus(t, e.mustSend(t, source, "GET", "/v1/secret/"+f.secret, bad, nil), http.StatusUnauthorized)
		}
		waitFor(t, 5*time.Second, "the lockout on "+c.node.NodeID(), func() bool {
			return c.signed(t, source, m, "GET", "/v1/secret/"+f.secret, nil).status == http.StatusTooManyRequests
		})
	})
}

func TestCluster_AdminRoutes(t *testing.T) {
	envs := startClusterEnvs(t)
	leader := leaderEnv(t, envs)
	follower := followerEnv(envs, leader)
	var operator struct{ Token string }
	leader.adminOK(t, http.StatusCreated, "POST", "/v1/admin/tokens",
		map[string]any{"name": "ops", "role": "operator", "vaults": []string{"*"}}, &operator)
	waitFor(t, 5*time.Second, "the operator token on the follower", func() bool {
		return follower.adminAs(t, operator.Token, "GET", "/v1/sys/cluster", nil).status == http.StatusOK
	})

	t.Run("membership routes", func(t *testing.T) {
		cases := []struct {
			name   string
			token  string
			method string
			path   string
			want   int
		}{
			{"operator cannot remove", operator.Token, "DELETE", "/v1/sys/cluster/members/node-3", http.StatusForbidden},
			{"operator cannot transfer", operator.Token, "POST", "/v1/sys/cluster/transfer-leadership", http.StatusForbidden},
			{"operator cannot save a snapshot", operator.Token, "POST", "/v1/sys/snapshot", http.StatusForbidden},
			{"unknown member", leader.root, "DELETE", "/v1/sys/cluster/members/node-9", http.StatusNotFound},
			{"running member", leader.root, "DELETE", "/v1/sys/cluster/members/node-3", http.StatusConflict},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp := follower.adminAs(t, tc.token, tc.method, tc.path, map[string]any{})
				expectStatus(t, resp, tc.want)
			})
		}
	})

	t.Run("snapshot save and restore round trip", func(t *testing.T) {
		leader = leaderEnv(t, envs)
		follower = followerEnv(envs, leader)
		leader.newVault(t)
		saved := follower.admin(t, "POST", "/v1/sys/snapshot", map[string]any{})
		expectStatus(t, saved, http.StatusOK)
		if ct := saved.header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("content type %q, want application/octet-stream", ct)
		}
		want, err := follower.sm.Checksum()
		if err != nil {
			t.Fatal(err)
		}
		index, _, err := fsm.VerifySnapshot(saved.body)
		if err != nil {
			t.Fatalf("saved snapshot: %v", err)
		}
		if index == 0 {
			t.Errorf("saved snapshot carries applied index 0")
		}

		vault := leader.newVault(t)
		resp := follower.admin(t, "POST", "/v1/sys/snapshot/restore", saved.body)
		expectStatus(t, resp, http.StatusConflict)
		var notLeader struct{ Code, LeaderID string }
		_ = json.Unmarshal(resp.body, &notLeader)
		if notLeader.Code != "not_leader" || notLeader.LeaderID != leader.node.NodeID() {
			t.Errorf("409 body %s, want code not_leader and leaderId %s", resp.body, leader.node.NodeID())
		}
		damaged := append([]byte(nil), saved.body...)
		damaged[len(damaged)/2] ^= 0xff
		expectStatus(t, leader.admin(t, "POST", "/v1/sys/snapshot/restore", damaged), http.StatusBadRequest)

		expectStatus(t, leader.admin(t, "POST", "/v1/sys/snapshot/restore", saved.body), http.StatusOK)
		for _, e := range envs {
			waitFor(t, 10*time.Second, "the restored state on "+e.node.NodeID(), func() bool {
				got, err := e.sm.Checksum()
				return err == nil && got == want
			})
			if _, ok := e.sm.Vault(fsm.VaultID(vault)); ok {
				t.Errorf("%s holds a vault created after the snapshot", e.node.NodeID())
			}
		}
	})

	t.Run("leadership moves on request", func(t *testing.T) {
		leader = leaderEnv(t, envs)
		var out struct{ PreviousLeaderID, LeaderID string }
		follower = followerEnv(envs, leader)
		follower.adminOK(t, http.StatusOK, "POST", "/v1/sys/cluster/transfer-leadership", map[string]any{}, &out)
		if out.PreviousLeaderID != leader.node.NodeID() || out.LeaderID == "" || out.LeaderID == out.PreviousLeaderID {
			t.Errorf("transfer reported %+v, previous leader %s", out, leader.node.NodeID())
		}
	})
}

func TestCluster_PartitionedNodeNeverServesARevokedMachine(t *testing.T) {
	envs := startClusterEnvs(t)
	leader := leaderEnv(t, envs)
	cut := followerEnv(envs, leader)
	f, m := leader.readyMachine(t)
	waitFor(t, 5*time.Second, "the machine readable on "+cut.node.NodeID(), func() bool {
		return machineGet(t, cut, m, f).status == http.StatusOK
	})

	// The node stops hearing from the cluster while its API stays up, as
	// a node behind a network partition that clients can still reach.
	cutID, raftAddr, gossipAddr := cut.node.NodeID(), cut.node.RaftAddr(), cut.node.GossipAddr()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = cut.node.Close(ctx)

	var majority []*testEnv
	for _, e := range envs {
		if e != cut {
			majority = append(majority, e)
		}
	}
	start := time.Now()
	resp := majority[0].admin(t, "POST", majority[0].machinePath(m)+"/revoke", map[string]any{})
	c := wantConfirmed(t, resp, 2, 3)
	if len(c.UnconfirmedNodes) != 1 || c.UnconfirmedNodes[0] != cutID {
		t.Errorf("unconfirmed nodes %v, want [%s]", c.UnconfirmedNodes, cutID)
	}
	t.Logf("revoke with one node cut off returned after %s", time.Since(start))

	t.Run("the cut-off node refuses with 503", func(t *testing.T) {
		got := machineGet(t, cut, m, f)
		if got.status != http.StatusServiceUnavailable {
			t.Fatalf("cut-off node answered %d right after the revoke returned, want 503: %s", got.status, got.body)
		}
		if got.header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
		machineError(t, got)
	})

	t.Run("the majority refuses with 403", func(t *testing.T) {
		for _, e := range majority {
			expectStatus(t, machineGet(t, e, m, f), http.StatusForbidden)
		}
	})

	t.Run("after healing the node refuses until it caught up, then blocks", func(t *testing.T) {
		closeCtx, cancelClose := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelClose()
		_ = cut.srv.Close(closeCtx)
		startClusterNode(t, cut, cutID, raftAddr, gossipAddr, []string{leader.node.GossipAddr()})
		startClusterServer(t, cut)
		deadline := time.Now().Add(15 * time.Second)
		for {
			got := machineGet(t, cut, m, f)
			if got.status == http.StatusOK {
				t.Fatalf("the restarted node served the revoked machine: %s", got.body)
			}
			if got.status == http.StatusForbidden {
				break
			}
			if got.status != http.StatusServiceUnavailable {
				t.Fatalf("restarted node answered %d, want 503 until caught up, then 403: %s", got.status, got.body)
			}
			if time.Now().After(deadline) {
				t.Fatal("the restarted node still refuses with 503 after 15s")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
