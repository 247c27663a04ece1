package cluster

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	cfg := DefaultConfig()
	cfg.NodeID = "node-1"
	cfg.DataDir = "/var/lib/keyward"
	cfg.RaftBindAddr = "127.0.0.1:7001"
	cfg.GossipBindAddr = "127.0.0.1:7002"
	return cfg
}

func TestConfig_DefaultWithAddressesIsValid(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
}

func TestConfig_ValidateNamesField(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"missing node id", func(c *Config) { c.NodeID = "" }, "node-id"},
		{"node id with space", func(c *Config) { c.NodeID = "node 1" }, "node-id"},
		{"node id too long", func(c *Config) { c.NodeID = strings.Repeat("n", 129) }, "node-id"},
		{"missing data dir", func(c *Config) { c.DataDir = "" }, "data-dir"},
		{"raft addr without port", func(c *Config) { c.RaftBindAddr = "127.0.0.1" }, "raft-addr"},
		{"wildcard raft addr without advertise", func(c *Config) { c.RaftBindAddr = "0.0.0.0:7001" }, "raft-advertise-addr"},
		{"wildcard advertise", func(c *Config) { c.RaftAdvertiseAddr = "0.0.0.0:7001" }, "raft-advertise-addr"},
		{"advertise port zero", func(c *Config) { c.RaftAdvertiseAddr = "10.0.0.1:0" }, "raft-advertise-addr"},
		{"gossip addr missing", func(c *Config) { c.GossipBindAddr = "" }, "gossip-addr"},
		{"gossip advertise host name", func(c *Config) { c.GossipAdvertiseAddr = "node1.example:7002" }, "gossip-advertise-addr"},
		{"join without port", func(c *Config) { c.Join = []string{"10.0.0.2"} }, "join"},
		{"api url without scheme", func(c *Config) { c.HTTPAdvertiseURL = "node1:8200" }, "api-url"},
		{"api url too long", func(c *Config) { c.HTTPAdvertiseURL = "https://" + strings.Repeat("a", 260) }, "api-url"},
		{"zero voters", func(c *Config) { c.Voters = 0 }, "voters"},
		{"negative bootstrap", func(c *Config) { c.BootstrapExpect = -1 }, "bootstrap-expect"},
		{"bootstrap above voters", func(c *Config) { c.BootstrapExpect = 5 }, "bootstrap-expect"},
		{"single-node bootstrap with join", func(c *Config) { c.BootstrapExpect = 1; c.Join = []string{"10.0.0.2:7002"} }, "bootstrap-expect"},
		{"bootstrap on non-voter", func(c *Config) { c.BootstrapExpect = 1; c.NonVoter = true }, "bootstrap-expect"},
		{"gossip key of 10 bytes", func(c *Config) { c.GossipKey = make([]byte, 10) }, "gossip-key-file"},
		{"tls without certificate", func(c *Config) { c.TLS = &tls.Config{} }, "cluster-cert-file"},
		{"tls without CA", func(c *Config) {
			c.TLS = &tls.Config{Certificates: []tls.Certificate{{}}}
		}, "cluster-ca-file"},
		{"heartbeat too short", func(c *Config) { c.HeartbeatTimeout = time.Millisecond }, "raft-heartbeat-timeout"},
		{"election below heartbeat", func(c *Config) { c.ElectionTimeout = 500 * time.Millisecond }, "raft-election-timeout"},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = 2 * time.Second }, "raft-leader-lease-timeout"},
		{"commit timeout zero", func(c *Config) { c.CommitTimeout = 0 }, "raft-commit-timeout"},
		{"max append entries too big", func(c *Config) { c.MaxAppendEntries = 5000 }, "raft-max-append-entries"},
		{"snapshot retain zero", func(c *Config) { c.SnapshotRetain = 0 }, "snapshot-retain"},
		{"apply timeout zero", func(c *Config) { c.ApplyTimeout = 0 }, "apply-timeout"},
		{"negative dead node timeout", func(c *Config) { c.DeadNodeTimeout = -time.Second }, "dead-node-timeout"},
		{"transport pool zero", func(c *Config) { c.TransportMaxPool = 0 }, "raft-transport-pool"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.field+":") {
				t.Errorf("Validate() = %q, want it to name %q", err, tc.field)
			}
		})
	}
}

func TestConfig_ZeroDeadNodeTimeoutIsValid(t *testing.T) {
	cfg := validConfig()
	cfg.DeadNodeTimeout = 0
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil (0 disables removal)", err)
	}
}
