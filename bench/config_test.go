package bench

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfig_Validate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Scenario = ScenarioReads
		c.Binary = "/usr/local/bin/keyward"
		return c
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		// flag is the option the error message must name; empty for a
		// valid configuration.
		flag string
	}{
		{"defaults", func(*Config) {}, ""},
		{"target with token", func(c *Config) { c.Targets = []string{"https://127.0.0.1:8200"}; c.Token = "kwt_x"; c.Binary = "" }, ""},
		{"scale needs no binary", func(c *Config) { c.Scenario = ScenarioScale; c.Binary = "" }, ""},
		{"unknown scenario", func(c *Config) { c.Scenario = "reeds" }, "reeds"},
		{"target not a URL", func(c *Config) { c.Targets = []string{"127.0.0.1:8200"}; c.Token = "kwt_x" }, "--target"},
		{"target with path", func(c *Config) { c.Targets = []string{"http://127.0.0.1:8200/v1"}; c.Token = "kwt_x" }, "--target"},
		{"target without token", func(c *Config) { c.Targets = []string{"http://127.0.0.1:8200"} }, "--token-file"},
		{"no binary and no target", func(c *Config) { c.Binary = "" }, "--target"},
		{"local nodes zero", func(c *Config) { c.LocalNodes = 0 }, "--local-nodes"},
		{"local nodes with target", func(c *Config) { c.LocalNodes = 3; c.Targets = []string{"http://127.0.0.1:8200"}; c.Token = "kwt_x" }, "--local-nodes"},
		{"short duration", func(c *Config) { c.Duration = time.Millisecond }, "--duration"},
		{"no machines", func(c *Config) { c.Machines = 0 }, "--machines"},
		{"no connections", func(c *Config) { c.Connections = 0 }, "--connections"},
		{"no pipelining depth", func(c *Config) { c.Pipeline = 0 }, "--pipeline 0"},
		{"pipelining too deep", func(c *Config) { c.Pipeline = 257 }, "--pipeline 257"},
		{"pipelining above connections", func(c *Config) { c.Connections, c.Pipeline = 8, 16 }, "--connections 8"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "--rate"},
		{"writer count zero", func(c *Config) { c.Writers = []int{1, 0} }, "--writers"},
		{"writes without writers", func(c *Config) { c.Scenario = ScenarioWrites; c.Writers = nil }, "--writers"},
		{"sweep above one", func(c *Config) { c.Sweep = []float64{1.5} }, "--sweep"},
		{"scale size zero", func(c *Config) { c.ScaleMachines = []int{0} }, "--scale-machines"},
		{"cores from the nodes", func(c *Config) { c.Cores = 0 }, ""},
		{"negative cores", func(c *Config) { c.Cores = -1 }, "--cores"},
		{"node cpus list", func(c *Config) { c.NodeCPUs = "1"; c.LoadCPUs = "0" }, ""},
		{"node cpus all", func(c *Config) { c.NodeCPUs = "all" }, ""},
		{"node cpus invalid", func(c *Config) { c.NodeCPUs = "1-x" }, "--node-cpus"},
		{"load cpus invalid", func(c *Config) { c.LoadCPUs = "-1" }, "--load-cpus"},
		{"node cpus with target", func(c *Config) {
			c.NodeCPUs = "1"
			c.Targets = []string{"http://127.0.0.1:8200"}
			c.Token = "kwt_x"
			c.Binary = ""
		}, "--node-cpus"},
		{"load cpus in scale", func(c *Config) { c.LoadCPUs = "0"; c.Scenario = ScenarioScale }, "--load-cpus"},
		{"short floor time", func(c *Config) { c.FloorTime = time.Millisecond }, "--floor-time"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := valid()
			c.mutate(&cfg)
			err := cfg.Validate()
			if c.flag == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), c.flag) {
				t.Errorf("error %q does not name %s", err, c.flag)
			}
		})
	}
}

func TestConfig_SweepDuration(t *testing.T) {
	cases := []struct {
		name     string
		duration time.Duration
		sweep    time.Duration
		want     time.Duration
	}{
		{"a third of the run", 15 * time.Second, 0, 5 * time.Second},
		{"at least a second", 2 * time.Second, 0, time.Second},
		{"explicit", 15 * time.Second, 7 * time.Second, 7 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Duration: c.duration, SweepDuration: c.sweep}
			if got := cfg.sweepDuration(); got != c.want {
				t.Errorf("sweepDuration() = %v, want %v", got, c.want)
			}
		})
	}
}
