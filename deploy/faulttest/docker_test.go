package faulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultTestsEnv turns the container tests off when set to "off". Any other
// value except "" and "on" is rejected, so a typo cannot silently disable
// them.
const faultTestsEnv = "KEYWARD_FAULT_TESTS"

// imageTag is the tag that the tests give the image they build.
const imageTag = "keyward:test"

// dockerTimeout bounds one docker CLI call. Building the image has its own,
// longer bound because it compiles the binary.
const (
	dockerTimeout = 90 * time.Second
	buildTimeout  = 6 * time.Minute
)

// requireDocker fails the test when no Docker daemon responds. With
// KEYWARD_FAULT_TESTS=off the test is skipped instead, with that reason.
func requireDocker(t *testing.T) {
	t.Helper()
	switch v := os.Getenv(faultTestsEnv); v {
	case "off":
		t.Skipf("%s=off: container fault tests turned off", faultTestsEnv)
	case "", "on":
	default:
		t.Fatalf("%s=%q is invalid; use on, off, or leave it unset", faultTestsEnv, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		t.Fatalf("the container fault tests need a running Docker daemon, but `docker info` failed: %v\n%s\n"+
			"hint: start Docker and make its socket reachable, or set %s=off to leave these tests out",
			err, strings.TrimSpace(string(out)), faultTestsEnv)
	}
}

// docker runs the docker CLI and returns its standard output without the
// trailing newline. The error carries the arguments and standard error.
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// dockerCombined runs the docker CLI and returns standard output and
// standard error together, as `docker logs` splits a container's output
// between them.
func dockerCombined(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// mustDocker is docker that fails the test on an error.
func mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	out, err := docker(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bestEffortDocker runs a clean-up command whose failure only gets logged,
// so that one missing resource does not stop the removal of the others.
func bestEffortDocker(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	if _, err := docker(ctx, args...); err != nil && !strings.Contains(err.Error(), "No such") {
		t.Logf("clean-up: %v", err)
	}
}

// The image is built once per test binary: every test runs the same code.
var (
	imageOnce sync.Once
	imageID   string
	imageErr  error
)

// buildImage builds the image with deploy/build-image.sh, the way
// deploy/README.md describes for operators, and returns its id. Containers are created from
// the id, so a concurrent rebuild of the tag by another run cannot change
// the code under test.
func buildImage(t *testing.T) string {
	t.Helper()
	imageOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			imageErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		previous, _ := docker(ctx, "image", "inspect", "--format", "{{.Id}}", imageTag)
		start := time.Now()
		cmd := exec.CommandContext(ctx, "sh", filepath.Join(root, "deploy", "build-image.sh"), imageTag)
		out, err := cmd.CombinedOutput()
		if err != nil {
			imageErr = fmt.Errorf("deploy/build-image.sh %s: %w\n%s", imageTag, err, out)
			return
		}
		imageID, imageErr = docker(ctx, "image", "inspect", "--format", "{{.Id}}", imageTag)
		if imageErr != nil {
			return
		}
		t.Logf("built image %s (%s) in %s", imageTag, shortID(imageID), time.Since(start).Round(time.Second))
		// The rebuild left the image of an earlier run without a tag. Docker
		// rejects its removal while a container of another run uses it, and
		// then the image stays, as it should.
		if previous != "" && previous != imageID {
			if _, err := docker(ctx, "image", "rm", previous); err != nil {
				t.Logf("kept the previous %s image: %v", imageTag, err)
			}
		}
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return imageID
}

// repoRoot returns the module root, two folders above this package.
func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", fmt.Errorf("resolve the repository root: %w", err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("repository root %s has no go.mod; run the tests from deploy/faulttest: %w", root, err)
	}
	return root, nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// randomHex returns n random bytes in hex, for names that must not collide
// with another test run on the same Docker host.
func randomHex(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error since Go 1.24; it crashes
	// the program instead.
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freeLoopbackPorts returns n distinct TCP ports that were free on
// 127.0.0.1 a moment ago. Docker publishes the node APIs on them; fixed
// ports keep a node's URL the same across container restarts, which a
// random published port would not.
func freeLoopbackPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("reserve a loopback port: %v", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
