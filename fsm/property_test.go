package fsm

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"

	"github.com/keyward/keyward/guard"
)

// extensionModel is what the property test expects the machine to hold.
type extensionModel struct {
	expiresAt int64
	// stack holds, for each extension still in force, the expiry before it
	// and the cap it was checked against.
	stack []modelEntry
}

type modelEntry struct {
	id       string
	previous int64
	capUsed  int64
}

// TestFSM_ExtendRevertProperties drives random sequences of extensions,
// reverts, clock moves and sweeps. After each step it checks three rules.
// The expiry never passes the cap that admitted it. The history only grows.
// A revert restores exactly the expiry before the latest extension in force.
func TestFSM_ExtendRevertProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		f := openFSM(t, "mem", vfs.NewMem())
		defer f.Close()
		h := &harness{proposer: newProposer(t), f: f}
		h.setupVault(vaultA)
		model := extensionModel{expiresAt: h.setupActiveTemp(vaultA, machine1, 1).ExpiresAt}

		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for i := range steps {
			before := h.machine(machine1)
			switch rapid.IntRange(0, 3).Draw(rt, "op") {
			case 0:
				propExtend(rt, h, &model, fmt.Sprintf("e%d", i))
			case 1:
				propRevert(rt, h, &model)
			case 2:
				h.now += rapid.Int64Range(0, 45*24*3600*1000).Draw(rt, "advance")
			case 3:
				h.apply(CmdExpireMachines, ExpireMachinesPayload{MachineIDs: []MachineID{machine1}})
			}
			checkProperties(rt, h, &model, before)
		}
	})
}

func propExtend(rt *rapid.T, h *harness, model *extensionModel, id string) {
	capMs := guard.ExtensionCap(time.UnixMilli(h.now)).UnixMilli()
	// Targets from a day before the current expiry to a day past the cap,
	// with the boundaries drawn often enough to be hit.
	target := rapid.OneOf(
		rapid.Int64Range(model.expiresAt-86_400_000, capMs+86_400_000),
		rapid.SampledFrom([]int64{capMs, capMs + 1, model.expiresAt, model.expiresAt + 1}),
	).Draw(rt, "target")
	r := h.apply(CmdExtendMachine, ExtendMachinePayload{
		VaultID: vaultA, MachineID: machine1, ExtensionID: id, NewExpiresAt: target, Cap: capMs, Reason: "property",
	})
	m := h.machine(machine1)

	if r.Code != "" {
		if target > capMs && r.Code != CodeOverCap && m.Status == StatusActive && !m.Expired(h.now) {
			rt.Fatalf("extension to %d over cap %d rejected with %q, want over_cap", target, capMs, r.Code)
		}
		return
	}
	if target > capMs {
		rt.Fatalf("extension to %d accepted over the cap %d", target, capMs)
	}
	if target <= model.expiresAt {
		rt.Fatalf("extension to %d accepted though not after %d", target, model.expiresAt)
	}
	model.stack = append(model.stack, modelEntry{id: id, previous: model.expiresAt, capUsed: capMs})
	model.expiresAt = target
}

func propRevert(rt *rapid.T, h *harness, model *extensionModel) {
	r := h.apply(CmdRevertExtension, RevertExtensionPayload{VaultID: vaultA, MachineID: machine1})
	if r.Code != "" {
		if len(model.stack) > 0 && h.machine(machine1).Status == StatusActive {
			rt.Fatalf("revert rejected with %q while %d extensions are in force", r.Code, len(model.stack))
		}
		return
	}
	if len(model.stack) == 0 {
		rt.Fatal("revert accepted with no extension in force")
	}
	top := model.stack[len(model.stack)-1]
	model.stack = model.stack[:len(model.stack)-1]

	var got Machine
	if err := json.Unmarshal(r.Body, &got); err != nil {
		rt.Fatal(err)
	}
	if got.ExpiresAt != top.previous {
		rt.Fatalf("revert of %s restored %d, want %d", top.id, got.ExpiresAt, top.previous)
	}
	model.expiresAt = top.previous
}

func checkProperties(rt *rapid.T, h *harness, model *extensionModel, before Machine) {
	m := h.machine(machine1)
	checkMachineIndex(h.t, h.f)
	if m.ExpiresAt != model.expiresAt {
		rt.Fatalf("expiry %d, model %d", m.ExpiresAt, model.expiresAt)
	}
	if n := len(model.stack); n > 0 && m.ExpiresAt > model.stack[n-1].capUsed {
		rt.Fatalf("expiry %d exceeds the cap %d of the extension in force", m.ExpiresAt, model.stack[n-1].capUsed)
	}
	if limit := guard.ExtensionCap(time.UnixMilli(h.now)).UnixMilli(); m.ExpiresAt > limit {
		rt.Fatalf("expiry %d is past now plus twelve months (%d)", m.ExpiresAt, limit)
	}
	if m.Expired(h.now) == false && m.Status == StatusExpired {
		rt.Fatalf("machine marked expired before its expiry")
	}

	// The history is append-only: earlier entries keep every field except
	// the revert marks, which may only go from unset to set.
	if len(m.Extensions) < len(before.Extensions) {
		rt.Fatalf("history shrank from %d to %d", len(before.Extensions), len(m.Extensions))
	}
	for i, old := range before.Extensions {
		cur := m.Extensions[i]
		if old.RevertedAt != 0 && (cur.RevertedAt != old.RevertedAt || cur.RevertedBy != old.RevertedBy) {
			rt.Fatalf("extension %s revert marks changed", old.ID)
		}
		cur.RevertedAt, cur.RevertedBy, cur.RevertReason = old.RevertedAt, old.RevertedBy, old.RevertReason
		if cur != old {
			rt.Fatalf("extension %d changed from %+v to %+v", i, old, m.Extensions[i])
		}
	}
	inForce := 0
	for _, x := range m.Extensions {
		if x.RevertedAt == 0 {
			inForce++
		}
	}
	if inForce != len(model.stack) {
		rt.Fatalf("%d extensions in force, model has %d", inForce, len(model.stack))
	}
}
