package cluster

import (
	"testing"

	"github.com/hashicorp/raft"
)

func member(id, addr string, voter bool) gossipMember {
	return gossipMember{ID: id, Meta: nodeMeta{RaftAddr: addr, VoterCapable: voter}}
}

func voter(id, addr string) raft.Server {
	return raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(addr)}
}

func nonvoter(id, addr string) raft.Server {
	return raft.Server{Suffrage: raft.Nonvoter, ID: raft.ServerID(id), Address: raft.ServerAddress(addr)}
}

func TestReconcile_PlanMembership(t *testing.T) {
	cases := []struct {
		name        string
		servers     []raft.Server
		alive       []gossipMember
		voters      int
		wantChanges []membershipChange
		wantMissing []raft.ServerID
	}{
		{
			name:    "in sync",
			servers: []raft.Server{voter("a", "a:1"), voter("b", "b:1")},
			alive:   []gossipMember{member("a", "a:1", true), member("b", "b:1", true)},
			voters:  3,
		},
		{
			name:        "new member becomes voter below the limit",
			servers:     []raft.Server{voter("a", "a:1")},
			alive:       []gossipMember{member("b", "b:1", true), member("a", "a:1", true)},
			voters:      3,
			wantChanges: []membershipChange{{op: opAddVoter, id: "b", addr: "b:1"}},
		},
		{
			name:        "new member beyond the limit is a non-voter",
			servers:     []raft.Server{voter("a", "a:1"), voter("b", "b:1"), voter("c", "c:1")},
			alive:       []gossipMember{member("a", "a:1", true), member("b", "b:1", true), member("c", "c:1", true), member("d", "d:1", true)},
			voters:      3,
			wantChanges: []membershipChange{{op: opAddNonvoter, id: "d", addr: "d:1"}},
		},
		{
			name:        "non-voter-capable member stays a non-voter",
			servers:     []raft.Server{voter("a", "a:1")},
			alive:       []gossipMember{member("a", "a:1", true), member("r", "r:1", false)},
			voters:      3,
			wantChanges: []membershipChange{{op: opAddNonvoter, id: "r", addr: "r:1"}},
		},
		{
			name:        "moved voter keeps its id and gets the new address",
			servers:     []raft.Server{voter("a", "a:1"), voter("c", "c:1")},
			alive:       []gossipMember{member("a", "a:1", true), member("c", "c:2", true)},
			voters:      3,
			wantChanges: []membershipChange{{op: opAddVoter, id: "c", addr: "c:2"}},
		},
		{
			name:        "moved non-voter stays a non-voter",
			servers:     []raft.Server{voter("a", "a:1"), nonvoter("n", "n:1")},
			alive:       []gossipMember{member("a", "a:1", true), member("n", "n:2", false)},
			voters:      3,
			wantChanges: []membershipChange{{op: opAddNonvoter, id: "n", addr: "n:2"}},
		},
		{
			name:        "non-voter promoted when a voter slot is free",
			servers:     []raft.Server{voter("a", "a:1"), voter("b", "b:1"), nonvoter("d", "d:1")},
			alive:       []gossipMember{member("a", "a:1", true), member("b", "b:1", true), member("d", "d:1", true)},
			voters:      3,
			wantChanges: []membershipChange{{op: opAddVoter, id: "d", addr: "d:1"}},
		},
		{
			name:        "dead server reported missing, not replaced by a voter",
			servers:     []raft.Server{voter("a", "a:1"), voter("b", "b:1"), voter("c", "c:1")},
			alive:       []gossipMember{member("a", "a:1", true), member("b", "b:1", true), member("d", "d:1", true)},
			voters:      3,
			wantChanges: []membershipChange{{op: opAddNonvoter, id: "d", addr: "d:1"}},
			wantMissing: []raft.ServerID{"c"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			changes, missing := planMembership(tc.servers, tc.alive, tc.voters)
			if len(changes) != len(tc.wantChanges) {
				t.Fatalf("changes = %+v, want %+v", changes, tc.wantChanges)
			}
			for i, want := range tc.wantChanges {
				got := changes[i]
				if got.op != want.op || got.id != want.id || got.addr != want.addr {
					t.Errorf("change %d = %v %s %s, want %v %s %s", i, got.op, got.id, got.addr, want.op, want.id, want.addr)
				}
			}
			if len(missing) != len(tc.wantMissing) {
				t.Fatalf("missing = %v, want %v", missing, tc.wantMissing)
			}
			for i := range missing {
				if missing[i] != tc.wantMissing[i] {
					t.Errorf("missing[%d] = %s, want %s", i, missing[i], tc.wantMissing[i])
				}
			}
		})
	}
}

func TestBootstrap_ServersFromMembers(t *testing.T) {
	withExpect := func(m gossipMember, n int) gossipMember { m.Meta.BootstrapExpect = n; return m }
	withState := func(m gossipMember) gossipMember { m.Meta.HasState = true; return m }
	cases := []struct {
		name       string
		alive      []gossipMember
		expect     int
		wantIDs    []string
		wantReason bool
	}{
		{"single node", []gossipMember{withExpect(member("a", "a:1", true), 1)}, 1, []string{"a"}, false},
		{"waiting for more", []gossipMember{withExpect(member("a", "a:1", true), 3)}, 3, nil, false},
		{"sorted by id", []gossipMember{
			withExpect(member("c", "c:1", true), 3), withExpect(member("a", "a:1", true), 3), withExpect(member("b", "b:1", true), 3),
		}, 3, []string{"a", "b", "c"}, false},
		{"ignores joiners without the flag", []gossipMember{
			withExpect(member("a", "a:1", true), 2), withExpect(member("b", "b:1", true), 2), member("z", "z:1", true),
		}, 2, []string{"a", "b"}, false},
		{"too many candidates", []gossipMember{
			withExpect(member("a", "a:1", true), 2), withExpect(member("b", "b:1", true), 2), withExpect(member("c", "c:1", true), 2),
		}, 2, nil, true},
		{"existing cluster", []gossipMember{
			withExpect(member("a", "a:1", true), 2), withState(member("b", "b:1", true)),
		}, 2, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			servers, reason := bootstrapServers(tc.alive, tc.expect)
			if (reason != "") != tc.wantReason {
				t.Errorf("reason = %q, want reason: %v", reason, tc.wantReason)
			}
			if len(servers) != len(tc.wantIDs) {
				t.Fatalf("servers = %+v, want ids %v", servers, tc.wantIDs)
			}
			for i, id := range tc.wantIDs {
				if string(servers[i].ID) != id || servers[i].Suffrage != raft.Voter {
					t.Errorf("server %d = %+v, want voter %s", i, servers[i], id)
				}
			}
		})
	}
}
