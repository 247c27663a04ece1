package faulttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// composeCommand returns the Compose CLI that is installed: the Docker CLI
// plugin (`docker compose`) or the standalone `docker-compose`.
func composeCommand(t *testing.T) []string {
	t.Helper()
	for _, cmd := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		args := append(append([]string(nil), cmd[1:]...), "version")
		if err := exec.Command(cmd[0], args...).Run(); err == nil {
			return cmd
		}
	}
	t.Fatalf("neither `docker compose` nor `docker-compose` works; install one of them, or set %s=off", faultTestsEnv)
	return nil
}

// composeProject runs Compose commands on deploy/compose.yaml under one
// project name and environment.
type composeProject struct {
	t       *testing.T
	command []string
	file    string
	name    string
	env     []string
}

func (p *composeProject) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append(append(append([]string(nil), p.command[1:]...), "--project-name", p.name, "--file", p.file), args...)
	cmd := exec.CommandContext(ctx, p.command[0], full...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", p.command[0], strings.Join(full, " "), err, out)
	}
	return string(out), nil
}

func (p *composeProject) mustRun(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// TestCompose_ThreeNodeClusterForms validates deploy/compose.yaml with the
// installed Compose CLI, creates the secrets volume with
// deploy/cluster-secrets.sh and starts the cluster. The three nodes must
// elect one leader over mutual TLS and replicate writes made through other
// nodes. They must run as the unprivileged user and publish their HTTPS
// API on 127.0.0.1 only.
func TestCompose_ThreeNodeClusterForms(t *testing.T) {
	requireDocker(t)
	command := composeCommand(t)
	image := buildImage(t)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	name := "kwft" + randomHex(4)
	secretsVolume := name + "-secrets"
	ports := freeLoopbackPorts(t, 3)
	p := &composeProject{
		t: t, command: command, name: name,
		file: filepath.Join(root, "deploy", "compose.yaml"),
		env: append(os.Environ(),
			"KEYWARD_IMAGE="+image,
			"KEYWARD_SECRETS_VOLUME="+secretsVolume,
			"KEYWARD_NODE1_PORT="+strconv.Itoa(ports[0]),
			"KEYWARD_NODE2_PORT="+strconv.Itoa(ports[1]),
			"KEYWARD_NODE3_PORT="+strconv.Itoa(ports[2]),
		),
	}

	p.mustRun("config", "--quiet")
	services := strings.Fields(p.mustRun("config", "--services"))
	slices.Sort(services)
	if got := strings.Join(services, " "); got != "node1 node2 node3" {
		t.Fatalf("compose services = %q, want node1 node2 node3", got)
	}

	t.Cleanup(func() {
		if t.Failed() {
			if logs, err := p.run("logs", "--tail", "40"); err == nil {
				t.Logf("--- compose logs ---\n%s", logs)
			}
		}
		if out, err := p.run("down", "--volumes", "--remove-orphans", "--timeout", "20"); err != nil {
			t.Logf("clean-up: %v\n%s", err, out)
		}
		bestEffortDocker(t, "volume", "rm", secretsVolume)
	})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	secrets := exec.CommandContext(ctx, "sh", filepath.Join(root, "deploy", "cluster-secrets.sh"), secretsVolume, image)
	secrets.Env = append(os.Environ(), "KEYWARD_CA_OUT="+caFile)
	if out, err := secrets.CombinedOutput(); err != nil {
		t.Fatalf("deploy/cluster-secrets.sh: %v\n%s", err, out)
	}
	client, err := trustingClient(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.run("up", "--detach"); err != nil {
		t.Fatalf("%v\nhint: compose.yaml uses the fixed subnet 172.28.0.0/24; another network on it makes `up` fail", err)
	}

	c := &testCluster{t: t}
	for i, port := range ports {
		c.nodes = append(c.nodes, &node{name: fmt.Sprintf("node%d", i+1), url: "https://127.0.0.1:" + strconv.Itoa(port), client: client})
	}
	leader := c.waitLeader(c.nodes...)
	t.Logf("compose cluster elected %s", leader.name)
	// Each node checks a request against its own state, so the test waits
	// for replication before it uses the next node.
	f := c.setup(c.nodes[0])
	c.waitConverged()
	secret := c.createSecret(c.nodes[1], f, "compose-check", "replicated")
	c.waitConverged()
	m := c.registerMachine(c.nodes[2], f, "compose-reader", secret.id)
	c.waitRead(m, secret.id, "replicated")
	c.waitConverged()

	for _, n := range c.nodes {
		id := strings.TrimSpace(p.mustRun("ps", "--quiet", n.name))
		if id == "" {
			t.Fatalf("compose ps found no container for %s", n.name)
		}
		user := mustDocker(t, "inspect", "--format", "{{.Config.User}}", id)
		if user != "65532:65532" {
			t.Errorf("%s runs as user %q, want 65532:65532", n.name, user)
		}
		bindings := strings.Fields(mustDocker(t, "port", id, strconv.Itoa(containerHTTPPort)))
		if len(bindings) == 0 {
			t.Errorf("%s publishes no API port", n.name)
		}
		for _, b := range bindings {
			if !strings.HasPrefix(b, "127.0.0.1:") {
				t.Errorf("%s publishes its API on %s; want 127.0.0.1 only", n.name, b)
			}
		}
	}
}
