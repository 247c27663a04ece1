package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/keyward/keyward/fsm"
)

// applyAt applies a command with the given payload and time through tn and
// fails the test unless the state machine accepted it.
func applyAt(t *testing.T, tn *testNode, typ fsm.CommandType, at time.Time, payload any) *fsm.Response {
	t.Helper()
	cmd, err := fsm.NewCommand(typ, at.UnixMilli(), fsm.Actor{Kind: "user", ID: "test"}, payload)
	if err != nil {
		t.Fatalf("build %s: %v", typ, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := tn.node.Apply(ctx, cmd)
	if err != nil {
		t.Fatalf("apply %s: %v", typ, err)
	}
	if err := resp.Err(); err != nil {
		t.Fatalf("apply %s: %v", typ, err)
	}
	return resp
}

// registerTempMachine registers a temporary machine with a one-hour
// lifetime at registeredAt and returns its id.
func registerTempMachine(t *testing.T, tn *testNode, vault fsm.VaultID, name string, registeredAt time.Time) fsm.MachineID {
	t.Helper()
	sum := sha256.Sum256([]byte("token-" + name))
	hash := hex.EncodeToString(sum[:])
	applyAt(t, tn, fsm.CmdCreateBootstrapToken, registeredAt, fsm.CreateBootstrapTokenPayload{Token: fsm.BootstrapToken{
		ID: "tt_" + name, Hash: hash, VaultID: vault, Kind: fsm.TokenKindTemp,
		CreatedAt: registeredAt.UnixMilli(), ExpiresAt: registeredAt.Add(time.Hour).UnixMilli(), MaxUses: 1,
		MachineName: name, Lifetime: &fsm.Lifetime{Hours: 1},
	}})
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := fsm.MachineID("00000000-0000-4000-8000-0000000000" + hex.EncodeToString([]byte(name[len(name)-1:])))
	applyAt(t, tn, fsm.CmdRegisterMachine, registeredAt, fsm.RegisterMachinePayload{
		TokenHash: hash, VaultID: vault, MachineID: id, PublicKey: pub, Hostname: name,
	})
	return id
}

func TestSweep_ExpiresAtExactInstantOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("sweeper", dir)
	cfg.BootstrapExpect = 1
	tn := startNode(t, cfg, dir)
	waitLeader(t, tn)
	applyVault(t, tn, 1)
	vault := tn.sm.Vaults()[0].ID

	t0 := time.Date(2026, 6, 30, 11, 0, 0, 0, time.UTC)
	early := registerTempMachine(t, tn, vault, "m-a", t0)
	late := registerTempMachine(t, tn, vault, "m-b", t0.Add(time.Minute))

	clock := t0.Add(time.Hour - time.Millisecond)
	sweep := DefaultSweepConfig()
	sweep.NodeID = "sweeper"
	sweep.Now = func() time.Time { return clock }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	status := func(id fsm.MachineID) string {
		e, ok := tn.sm.Machine(id)
		if !ok {
			t.Fatalf("machine %s not found", id)
		}
		return e.Machine.Status
	}

	if err := SweepOnce(ctx, tn.node, tn.sm, sweep); err != nil {
		t.Fatal(err)
	}
	if got := status(early); got != fsm.StatusPending {
		t.Fatalf("one millisecond before expiry: status %q, want pending", got)
	}

	clock = t0.Add(time.Hour)
	before := tn.sm.AppliedIndex()
	if err := SweepOnce(ctx, tn.node, tn.sm, sweep); err != nil {
		t.Fatal(err)
	}
	if got := status(early); got != fsm.StatusExpired {
		t.Fatalf("at the expiry instant: status %q, want expired", got)
	}
	if got := status(late); got != fsm.StatusPending {
		t.Fatalf("machine due a minute later: status %q, want pending", got)
	}
	if got := tn.sm.AppliedIndex() - before; got != 1 {
		t.Fatalf("sweep proposed %d commands, want 1", got)
	}

	// A second sweep finds nothing due, so it proposes nothing.
	before = tn.sm.AppliedIndex()
	if err := SweepOnce(ctx, tn.node, tn.sm, sweep); err != nil {
		t.Fatal(err)
	}
	if got := tn.sm.AppliedIndex(); got != before {
		t.Fatalf("second sweep at the same instant proposed %d commands, want 0", got-before)
	}

	// A sweep command that a previous leader proposed and that arrives
	// again leaves an expired machine as it is.
	resp := applyAt(t, tn, fsm.CmdExpireMachines, clock, fsm.ExpireMachinesPayload{MachineIDs: []fsm.MachineID{early}})
	if string(resp.Body) == "" {
		t.Fatal("expire command returned no body")
	}
	var expired fsm.ExpireResult
	if err := json.Unmarshal(resp.Body, &expired); err != nil {
		t.Fatal(err)
	}
	if len(expired.Expired) != 0 {
		t.Fatalf("repeated expire command expired %v again", expired.Expired)
	}
}
