package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLI_EnrollmentAndLifecycle drives the enrollment, rename, rollback,
// delete and admin-token commands against a real node.
func TestCLI_EnrollmentAndLifecycle(t *testing.T) {
	c := startCluster(t, 1)
	n := c.waitLeader()
	f := c.setup(n)
	env := map[string]string{"KEYWARD_ADDR": n.url(), "KEYWARD_TOKEN": c.token}

	issue := cliRun(t, env, "", "enrollment", "issue", "--vault", f.vaultID, "--max-uses", "3",
		"--lifetime", "2d", "--projects", f.projectID, "--secrets", f.secretID, "--output", "json")
	assertCode(t, issue, 0)
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(issue.stdout), &tok); err != nil || len(tok.Token) != 64 {
		t.Fatalf("enrollment issue output %q: %v", issue.stdout, err)
	}

	home := t.TempDir()
	reg := cliRun(t, map[string]string{"KEYWARD_HOME": home}, "", "register", "--enroll", "--vault", f.vaultID,
		"--api-url", n.url(), "--name", "ci-runner-1", "--output", "json", tok.Token)
	assertCode(t, reg, 0)
	var id struct {
		MachineID string `json:"machineId"`
		ExpiresAt int64  `json:"expiresAt"`
	}
	if err := json.Unmarshal([]byte(reg.stdout), &id); err != nil || id.MachineID == "" || id.ExpiresAt == 0 {
		t.Fatalf("register --enroll output %q: %v", reg.stdout, err)
	}

	machineEnv := map[string]string{"KEYWARD_HOME": home}
	get := cliRun(t, machineEnv, "", "get", f.secretID)
	assertCode(t, get, 0)
	if get.stdout != "s3cr3t-value" {
		t.Errorf("keyward get printed %q, want the secret value", get.stdout)
	}

	rename := cliRun(t, env, "", "machine", "rename", id.MachineID, "ci-runner-renamed", "--vault", f.vaultID, "--output", "json")
	assertCode(t, rename, 0)
	if !strings.Contains(rename.stdout, `"ci-runner-renamed"`) {
		t.Errorf("machine rename output lacks the new name: %s", rename.stdout)
	}

	assertCode(t, cliRun(t, env, "", "secret", "update", f.secretID, "--vault", f.vaultID, "--value", "rotated"), 0)
	get = cliRun(t, machineEnv, "", "get", f.secretID)
	assertCode(t, get, 0)
	if get.stdout != "rotated" {
		t.Errorf("after update keyward get printed %q, want rotated", get.stdout)
	}
	assertCode(t, cliRun(t, env, "", "secret", "rollback", f.secretID, "--vault", f.vaultID, "--version", "1"), 0)
	get = cliRun(t, machineEnv, "", "get", f.secretID)
	assertCode(t, get, 0)
	if get.stdout != "s3cr3t-value" {
		t.Errorf("after rollback keyward get printed %q, want the version 1 value", get.stdout)
	}

	del := cliRun(t, env, "", "secret", "delete", f.secretID, "--vault", f.vaultID)
	assertCode(t, del, 0)
	if !strings.Contains(del.stdout, "removed its grant from 1 machines") {
		t.Errorf("secret delete output %q, want one machine losing its grant", del.stdout)
	}
	if !strings.Contains(del.stdout, "confirmed by 1 of 1 nodes") {
		t.Errorf("secret delete output %q, want the node confirmation", del.stdout)
	}
	if r := cliRun(t, machineEnv, "", "get", f.secretID); r.code == 0 {
		t.Errorf("keyward get of a deleted secret succeeded: %q", r.stdout)
	}

	created := cliRun(t, env, "", "admin-token", "create", "--name", "auditors", "--role", "auditor",
		"--vaults", f.vaultID, "--output", "json")
	assertCode(t, created, 0)
	var at struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(created.stdout), &at); err != nil || !strings.HasPrefix(at.Token, "kwt_") {
		t.Fatalf("admin-token create output %q: %v", created.stdout, err)
	}
	auditorEnv := map[string]string{"KEYWARD_ADDR": n.url(), "KEYWARD_TOKEN": at.Token}
	assertCode(t, cliRun(t, auditorEnv, "", "machine", "list", "--vault", f.vaultID), 0)

	list := cliRun(t, env, "", "admin-token", "list")
	assertCode(t, list, 0)
	if !strings.Contains(list.stdout, at.ID) || strings.Contains(list.stdout, at.Token) {
		t.Errorf("admin-token list should name %s and never print a token:\n%s", at.ID, list.stdout)
	}
	assertCode(t, cliRun(t, env, "", "admin-token", "revoke", at.ID), 0)
	if r := cliRun(t, auditorEnv, "", "machine", "list", "--vault", f.vaultID); r.code == 0 {
		t.Error("a revoked admin token still lists machines")
	}

	assertCode(t, cliRun(t, env, "", "enrollment", "revoke", tok.ID, "--vault", f.vaultID), 0)
	again := cliRun(t, map[string]string{"KEYWARD_HOME": filepath.Join(home, "second")}, "", "register", "--enroll",
		"--vault", f.vaultID, "--api-url", n.url(), tok.Token)
	if again.code == 0 {
		t.Error("a revoked enrollment token still enrolls a machine")
	}
}
