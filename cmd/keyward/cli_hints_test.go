package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/guard"
	"github.com/keyward/keyward/httpapi/client"
)

// stderrLines splits the CLI's stderr into the error line and the hints.
func stderrLines(t *testing.T, r cliResult) (errLine, hints string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "keyward: error: ") {
		t.Fatalf("first stderr line = %q, want keyward: error: …", lines[0])
	}
	return lines[0], strings.Join(lines[1:], "\n")
}

func TestCLI_AddrWithoutScheme(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8200", "localhost:8200"} {
		t.Run(addr, func(t *testing.T) {
			r := cliRun(t, map[string]string{"KEYWARD_TOKEN": cliToken}, "", "--addr", addr, "vault", "list")
			assertCode(t, r, exitError)
			errLine, hints := stderrLines(t, r)
			if strings.Contains(errLine, "client:") {
				t.Errorf("error line %q starts a part with the package name client", errLine)
			}
			if !strings.Contains(hints, "add http:// or https://") || !strings.Contains(hints, "http://"+addr) {
				t.Errorf("hints %q do not tell to add http:// or https://", hints)
			}
		})
	}

	r := cliRun(t, map[string]string{"KEYWARD_TOKEN": cliToken}, "", "--addr", "ftp://127.0.0.1:8200", "vault", "list")
	assertCode(t, r, exitError)
	if _, hints := stderrLines(t, r); !strings.Contains(hints, "must be an http:// or https:// URL") {
		t.Errorf("hints %q do not name the schemes", hints)
	}
}

func TestCLI_NotFoundHintFollowsCommand(t *testing.T) {
	f := newCLIFakeAPI(t)
	f.respond("DELETE /v1/sys/cluster/members/nodeX", 404, `{"error":"Node nodeX is not a member of the cluster","requestId":"r1","code":"not_found"}`)
	f.respond("GET /v1/admin/vaults/"+cliVault+"/projects", 404, `{"error":"Vault not found","requestId":"r2","code":"not_found"}`)
	f.respond("GET /v1/admin/vaults/"+cliVault+"/webhooks", 404, `{"error":"Vault not found","requestId":"r3","code":"not_found"}`)

	cases := []struct {
		name     string
		args     []string
		want     string
		unwanted string
	}{
		{"cluster remove", []string{"cluster", "remove", "nodeX"}, "`keyward cluster members`", "machine list"},
		{"project list", []string{"project", "list", "--vault", cliVault}, "`keyward vault list`", "machine list"},
		{"webhook list", []string{"webhook", "list", "--vault", cliVault}, "`keyward webhook list --vault V`", "machine list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cliRun(t, adminEnv(f), "", tc.args...)
			assertCode(t, r, exitError)
			_, hints := stderrLines(t, r)
			if !strings.Contains(hints, tc.want) {
				t.Errorf("hints %q do not point to %s", hints, tc.want)
			}
			if strings.Contains(hints, tc.unwanted) {
				t.Errorf("hints %q point to %s", hints, tc.unwanted)
			}
		})
	}
}

func TestUserMessage_DropsPackageNames(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w under /home/a/.keyward/vaults", client.ErrNoIdentity), "no machine identity found under /home/a/.keyward/vaults"},
		{fmt.Errorf("invalid --trusted-proxies: trusted proxies: %w: %q is not a CIDR prefix", guard.ErrInvalidCIDR, "x/99"),
			`invalid --trusted-proxies: trusted proxies: invalid CIDR: "x/99" is not a CIDR prefix`},
		{errors.New("open --geoip-db f: geo: invalid MaxMind DB file: open f: bad"), "open --geoip-db f: invalid MaxMind DB file: open f: bad"},
		{errors.New("secret name: client"), "secret name: client"},
		{errors.New("the cluster: is fine"), "the cluster: is fine"},
	}
	for _, tc := range cases {
		if got := userMessage(tc.err); got != tc.want {
			t.Errorf("userMessage(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if err := fmt.Errorf("%w under /x", client.ErrNoIdentity); !errors.Is(err, client.ErrNoIdentity) {
		t.Errorf("wrapped error no longer matches client.ErrNoIdentity")
	}
}

func TestCLI_SnapshotSaveTarget(t *testing.T) {
	f := newCLIFakeAPI(t)
	f.respond("POST /v1/sys/snapshot", 200, "not a snapshot")
	dir := t.TempDir()

	t.Run("directory", func(t *testing.T) {
		before := f.count()
		r := cliRun(t, adminEnv(f), "", "snapshot", "save", dir)
		assertCode(t, r, exitError)
		errLine, hints := stderrLines(t, r)
		if !strings.Contains(errLine, dir+" is a directory; name a file") {
			t.Errorf("error line %q does not say that FILE is a directory", errLine)
		}
		if !strings.Contains(hints, filepath.Join(dir, "keyward.snapshot")) {
			t.Errorf("hints %q do not show a file name to use", hints)
		}
		if f.count() != before {
			t.Errorf("a request was sent")
		}
	})

	existing := filepath.Join(dir, "backup.snap")
	if err := os.WriteFile(existing, []byte("old backup"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("existing file", func(t *testing.T) {
		before := f.count()
		r := cliRun(t, adminEnv(f), "", "snapshot", "save", existing)
		assertCode(t, r, exitError)
		errLine, hints := stderrLines(t, r)
		if !strings.Contains(errLine, existing+" already exists") {
			t.Errorf("error line %q does not say that FILE exists", errLine)
		}
		if !strings.Contains(hints, "--force") {
			t.Errorf("hints %q do not mention --force", hints)
		}
		if f.count() != before {
			t.Errorf("a request was sent")
		}
		if data, err := os.ReadFile(existing); err != nil || string(data) != "old backup" {
			t.Errorf("existing file now holds %q (%v), want it unchanged", data, err)
		}
	})

	t.Run("existing file with --force", func(t *testing.T) {
		before := f.count()
		r := cliRun(t, adminEnv(f), "", "snapshot", "save", "--force", existing)
		// The fake API sends no valid snapshot, so the save fails its
		// check; it must get past the existing file to do so.
		assertCode(t, r, exitError)
		if errLine, _ := stderrLines(t, r); !strings.Contains(errLine, "failed its check") {
			t.Errorf("error line %q, want the check of the downloaded snapshot to fail", errLine)
		}
		if f.count() != before+1 {
			t.Errorf("%d requests sent, want 1", f.count()-before)
		}
	})
}
