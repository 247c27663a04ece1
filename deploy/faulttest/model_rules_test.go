package faulttest

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// These cases run without Docker. They show that the model used by the
// container tests accepts what the API may do and rejects the faults the
// tests look for, so a passing container test means something.
func TestRegisterModel_Histories(t *testing.T) {
	initial := registerState{version: 1, value: "initial"}
	write := func(client int, value string, out registerOutput, call, ret int64) porcupine.Operation {
		if out.outcome == outcomeUnknown {
			ret = neverReturned
		}
		return porcupine.Operation{ClientId: client, Input: registerInput{secretID: "sk_a", write: true, value: value},
			Output: out, Call: call, Return: ret}
	}
	read := func(client int, version int, value string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: registerInput{secretID: "sk_a"},
			Output: registerOutput{outcome: outcomeOK, version: version, value: value}, Call: call, Return: ret}
	}
	ok := func(version int) registerOutput { return registerOutput{outcome: outcomeOK, version: version} }
	conflict := registerOutput{outcome: outcomeConflict}
	unknown := registerOutput{outcome: outcomeUnknown}

	cases := []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		{
			name: "sequential writes then read",
			history: []porcupine.Operation{
				write(0, "a", ok(2), 0, 10),
				write(1, "b", ok(3), 20, 30),
				read(2, 3, "b", 40, 50),
			},
			want: porcupine.Ok,
		},
		{
			name: "concurrent writes ordered by version",
			history: []porcupine.Operation{
				write(0, "a", ok(3), 0, 100),
				write(1, "b", ok(2), 10, 90),
				read(2, 3, "a", 200, 210),
			},
			want: porcupine.Ok,
		},
		{
			name: "conflict changes nothing",
			history: []porcupine.Operation{
				write(0, "a", ok(2), 0, 10),
				write(1, "b", conflict, 20, 30),
				read(2, 2, "a", 40, 50),
			},
			want: porcupine.Ok,
		},
		{
			name: "unknown write that took effect",
			history: []porcupine.Operation{
				write(0, "a", unknown, 0, 0),
				write(1, "b", ok(3), 20, 30),
				read(2, 3, "b", 40, 50),
			},
			want: porcupine.Ok,
		},
		{
			name: "unknown write that was lost",
			history: []porcupine.Operation{
				write(0, "a", unknown, 0, 0),
				write(1, "b", ok(2), 20, 30),
				read(2, 2, "b", 40, 50),
			},
			want: porcupine.Ok,
		},
		{
			name: "acknowledged write lost",
			history: []porcupine.Operation{
				write(0, "a", ok(2), 0, 10),
				read(1, 1, "initial", 40, 50),
			},
			want: porcupine.Illegal,
		},
		{
			name: "two acknowledged writes with one version",
			history: []porcupine.Operation{
				write(0, "a", ok(2), 0, 10),
				write(1, "b", ok(2), 5, 15),
				read(2, 2, "b", 40, 50),
			},
			want: porcupine.Illegal,
		},
		{
			name: "later write got an older version",
			history: []porcupine.Operation{
				write(0, "a", ok(3), 0, 10),
				write(1, "b", ok(2), 20, 30),
				read(2, 3, "a", 40, 50),
			},
			want: porcupine.Illegal,
		},
		{
			name: "version skipped without an unknown write",
			history: []porcupine.Operation{
				write(0, "a", ok(3), 0, 10),
				read(1, 3, "a", 40, 50),
			},
			want: porcupine.Illegal,
		},
		{
			name: "conflicting write took effect",
			history: []porcupine.Operation{
				write(0, "a", conflict, 0, 10),
				read(1, 2, "a", 40, 50),
			},
			want: porcupine.Illegal,
		},
		{
			name: "read of a value never written",
			history: []porcupine.Operation{
				write(0, "a", ok(2), 0, 10),
				read(1, 2, "z", 40, 50),
			},
			want: porcupine.Illegal,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := porcupine.CheckOperationsTimeout(secretRegisterModel(initial), tc.history, 10*time.Second)
			if got != tc.want {
				t.Errorf("check = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestRegisterModel_PartitionsBySecret(t *testing.T) {
	ops := []porcupine.Operation{
		{Input: registerInput{secretID: "sk_b", write: true, value: "x"}},
		{Input: registerInput{secretID: "sk_a", write: true, value: "y"}},
		{Input: registerInput{secretID: "sk_b"}},
	}
	parts := partitionBySecret(ops)
	if len(parts) != 2 {
		t.Fatalf("got %d partitions, want 2", len(parts))
	}
	if got := parts[0][0].Input.(registerInput).secretID; got != "sk_a" {
		t.Errorf("first partition holds %s, want sk_a", got)
	}
	if got := len(parts[1]); got != 2 {
		t.Errorf("partition of sk_b has %d operations, want 2", got)
	}
}

func TestPruneUnappliedWrites_OnlyWhereNoneApplied(t *testing.T) {
	op := func(secretID string, write bool, out registerOutput) porcupine.Operation {
		return porcupine.Operation{Input: registerInput{secretID: secretID, write: write, value: "v"}, Output: out}
	}
	ok := registerOutput{outcome: outcomeOK, version: 2}
	unknown := registerOutput{outcome: outcomeUnknown}
	cases := []struct {
		name       string
		history    []porcupine.Operation
		wantPruned int
	}{
		{
			name: "final version matches acknowledged writes",
			history: []porcupine.Operation{
				op("sk_a", true, ok), op("sk_a", true, unknown),
				op("sk_a", false, registerOutput{outcome: outcomeOK, version: 2}),
			},
			wantPruned: 1,
		},
		{
			name: "final version above acknowledged writes",
			history: []porcupine.Operation{
				op("sk_a", true, ok), op("sk_a", true, unknown),
				op("sk_a", false, registerOutput{outcome: outcomeOK, version: 3}),
			},
			wantPruned: 0,
		},
		{
			name: "secret without a final read",
			history: []porcupine.Operation{
				op("sk_a", true, unknown),
			},
			wantPruned: 0,
		},
		{
			name: "each secret on its own",
			history: []porcupine.Operation{
				op("sk_a", true, unknown), op("sk_a", false, registerOutput{outcome: outcomeOK, version: 1}),
				op("sk_b", true, unknown), op("sk_b", false, registerOutput{outcome: outcomeOK, version: 2}),
			},
			wantPruned: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kept, pruned := pruneUnappliedWrites(tc.history, 1)
			if pruned != tc.wantPruned {
				t.Errorf("pruned %d writes, want %d", pruned, tc.wantPruned)
			}
			if len(kept)+pruned != len(tc.history) {
				t.Errorf("kept %d and pruned %d of %d operations", len(kept), pruned, len(tc.history))
			}
		})
	}
}
