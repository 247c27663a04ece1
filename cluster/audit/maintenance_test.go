package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/keyward/keyward/fsm"
)

// registerTemp issues a temp token and registers and approves a temporary
// machine with a lifetime of hours.
func registerTemp(t *testing.T, tn *testNode, id fsm.MachineID, hours int) fsm.Machine {
	t.Helper()
	sum := sha256.Sum256([]byte("token-" + id))
	hash := hex.EncodeToString(sum[:])
	mustApply(t, tn, fsm.CmdCreateBootstrapToken, fsm.CreateBootstrapTokenPayload{Token: fsm.BootstrapToken{
		ID: "bt_" + string(id[:8]), Hash: hash, VaultID: testVault, Kind: fsm.TokenKindTemp,
		ExpiresAt: time.Now().Add(time.Hour).UnixMilli(), MaxUses: 1, MachineName: "contractor",
		Lifetime: &fsm.Lifetime{Hours: hours},
	}})
	seed := make([]byte, ed25519.SeedSize)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	mustApply(t, tn, fsm.CmdRegisterMachine, fsm.RegisterMachinePayload{TokenHash: hash, MachineID: id, PublicKey: pub, Hostname: "laptop"})
	resp := mustApply(t, tn, fsm.CmdSetMachineStatus, fsm.SetMachineStatusPayload{VaultID: testVault, MachineID: id, Action: fsm.ActionApprove})
	var m fsm.Machine
	if err := json.Unmarshal(resp.Body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestExpiryWarnings_SmallestDueOffsetWrittenOnce(t *testing.T) {
	tn := startSingle(t, func(tn *testNode) []func(context.Context) {
		cfg := testDeliveryConfig(tn.id)
		cfg.ExpiryCheckInterval = 30 * time.Millisecond
		d, err := NewDispatcher(cfg, tn, tn.sm, testKeyring(t), nil, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		return []func(context.Context){d.RunExpiryWarnings}
	})
	createVault(t, tn)
	m := registerTemp(t, tn, "11111111-1111-4111-8111-111111111111", 2)
	mustApply(t, tn, fsm.CmdSetExpiryWarnings, fsm.SetExpiryWarningsPayload{VaultID: testVault, Offsets: []int64{
		(24 * time.Hour).Milliseconds(), (3 * time.Hour).Milliseconds(), (time.Hour).Milliseconds(),
	}})

	waitFor(t, 10*time.Second, "an expiry warning", func() bool {
		return len(vaultEntries(t, tn.sm, "temp_machine_expiry_warning")) > 0
	})
	time.Sleep(300 * time.Millisecond) // ten more checks
	warnings := vaultEntries(t, tn.sm, "temp_machine_expiry_warning")
	if len(warnings) != 1 {
		t.Fatalf("%d warnings, want 1", len(warnings))
	}
	var f struct {
		Offset    string `json:"offset"`
		ExpiresAt int64  `json:"expiresAt"`
	}
	json.Unmarshal(warnings[0].Fields, &f)
	if f.Offset != "3h" || f.ExpiresAt != m.ExpiresAt || warnings[0].MachineID != m.ID {
		t.Fatalf("warning %+v for %s, want the 3h warning of the 2-hour machine", f, warnings[0].MachineID)
	}
}

func TestRetention_LeaderCompactsPastTheRetention(t *testing.T) {
	tn := startSingle(t, nil)
	createVault(t, tn)
	appendEntries(t, tn, 50, "old")

	// The job runs 100 days later, once the entries exist: a compaction
	// entry written first would carry that later time and, being first in
	// sequence, stop the walk.
	later := &fakeClock{now: time.Now().Add(100 * 24 * time.Hour)}
	cfg := testDeliveryConfig(tn.id)
	cfg.RetentionInterval = 50 * time.Millisecond
	cfg.Now = later.Now
	d, err := NewDispatcher(cfg, tn, tn.sm, testKeyring(t), nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.RunRetention(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	waitFor(t, 10*time.Second, "compaction", func() bool {
		return len(vaultEntries(t, tn.sm, "temp_machine_blocked", "vault_create")) == 0
	})
	compactions := vaultEntries(t, tn.sm, "audit_compact")
	var deleted int
	for _, e := range compactions {
		var f struct {
			Deleted int `json:"deleted"`
		}
		json.Unmarshal(e.Fields, &f)
		deleted += f.Deleted
	}
	if deleted != 51 {
		t.Fatalf("compaction entries report %d deleted, want 51", deleted)
	}
}
