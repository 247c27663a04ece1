package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The tests in this file run the CLI in process against cliFakeAPI, an
// HTTP server that records requests and responds from a table. They check
// what the CLI sends and prints; the server's behaviour is tested against
// the real binary elsewhere.

const (
	cliToken   = "kwt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	cliVault   = "vault_0123456789abcdef"
	cliMachine = "6f1c2b9e-4a57-4e0b-9d2c-3b8a5f7e1d20"
)

type cliRequest struct {
	Method, URI string
	Header      http.Header
	Body        []byte
}

type cliResponse struct {
	status int
	body   string
}

// cliFakeAPI responds to "METHOD /path" from a table (200 {} by default) and
// records every request. A handler, when set, responds instead.
type cliFakeAPI struct {
	server *httptest.Server

	mu        sync.Mutex
	responses map[string]cliResponse
	requests  []cliRequest
	handler   func(w http.ResponseWriter, req cliRequest) bool
}

func newCLIFakeAPI(t *testing.T) *cliFakeAPI {
	t.Helper()
	f := &cliFakeAPI{responses: map[string]cliResponse{}}
	f.server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.server.Close)
	return f
}

func (f *cliFakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := cliRequest{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), Body: body}

	f.mu.Lock()
	f.requests = append(f.requests, req)
	response, ok := f.responses[r.Method+" "+r.RequestURI]
	handler := f.handler
	f.mu.Unlock()

	if handler != nil && handler(w, req) {
		return
	}
	if !ok {
		response = cliResponse{http.StatusOK, "{}"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(response.status)
	_, _ = io.WriteString(w, response.body)
}

func (f *cliFakeAPI) respond(route string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.responses[route] = cliResponse{status, body}
}

func (f *cliFakeAPI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *cliFakeAPI) last(t *testing.T) cliRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		t.Fatal("the fake API received no request")
	}
	return f.requests[len(f.requests)-1]
}

type cliResult struct {
	code           int
	stdout, stderr string
}

// cliRun runs the CLI with args and stdin, in an environment cleared of
// every KEYWARD_ and SIKKERKEY_ variable except those in env.
func cliRun(t *testing.T, env map[string]string, stdin string, args ...string) cliResult {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "KEYWARD_") || strings.HasPrefix(name, "SIKKERKEY_") {
			t.Setenv(name, "")
		}
	}
	t.Setenv("HOME", t.TempDir())
	for k, v := range env {
		t.Setenv(k, v)
	}

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// adminEnv points the CLI at f with the test token.
func adminEnv(f *cliFakeAPI) map[string]string {
	return map[string]string{"KEYWARD_ADDR": f.server.URL, "KEYWARD_TOKEN": cliToken}
}

func assertCode(t *testing.T, r cliResult, want int) {
	t.Helper()
	if r.code != want {
		t.Fatalf("exit code = %d, want %d\nstdout: %s\nstderr: %s", r.code, want, r.stdout, r.stderr)
	}
}

func assertBody(t *testing.T, got []byte, want string) {
	t.Helper()
	var gotValue, wantValue any
	if err := json.Unmarshal(got, &gotValue); err != nil {
		t.Fatalf("body %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &wantValue); err != nil {
		t.Fatalf("want %q is not JSON: %v", want, err)
	}
	if !reflect.DeepEqual(gotValue, wantValue) {
		t.Errorf("body = %s, want %s", got, want)
	}
}

func TestCLI_EnvBindsFlags(t *testing.T) {
	f := newCLIFakeAPI(t)
	f.respond("GET /v1/admin/vaults/"+cliVault+"/machines", 200, `{"machines":[]}`)
	env := adminEnv(f)
	env["KEYWARD_VAULT"] = cliVault

	r := cliRun(t, env, "", "machine", "list")

	assertCode(t, r, exitOK)
	req := f.last(t)
	if req.URI != "/v1/admin/vaults/"+cliVault+"/machines" {
		t.Errorf("path = %s, want the vault from KEYWARD_VAULT", req.URI)
	}
	if got := req.Header.Get("Authorization"); got != "Bearer "+cliToken {
		t.Errorf("Authorization = %q, want the token from KEYWARD_TOKEN", got)
	}
}

func TestCLI_FlagWinsOverEnv(t *testing.T) {
	f := newCLIFakeAPI(t)
	env := adminEnv(f)
	env["KEYWARD_VAULT"] = "vault_fromenvironment"

	r := cliRun(t, env, "", "machine", "list", "--vault", cliVault)

	assertCode(t, r, exitOK)
	if got := f.last(t).URI; got != "/v1/admin/vaults/"+cliVault+"/machines" {
		t.Errorf("path = %s, want the vault from the command line", got)
	}
}

func TestCLI_TokenFile(t *testing.T) {
	f := newCLIFakeAPI(t)
	tokenFile := filepath.Join(t.TempDir(), "root-token")
	if err := os.WriteFile(tokenFile, []byte(cliToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := cliRun(t, map[string]string{"KEYWARD_ADDR": f.server.URL, "KEYWARD_TOKEN_FILE": tokenFile}, "", "vault", "list")

	assertCode(t, r, exitOK)
	if got := f.last(t).Header.Get("Authorization"); got != "Bearer "+cliToken {
		t.Errorf("Authorization = %q, want the token from the file without its newline", got)
	}
}

func TestCLI_BindEnv(t *testing.T) {
	newFlags := func() (*pflag.FlagSet, *string, *[]string, *time.Duration, *bool) {
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		s := fs.String("token-file", "", "")
		l := fs.StringSlice("ip", nil, "")
		d := fs.Duration("token-ttl", time.Hour, "")
		b := fs.Bool("temp", false, "")
		return fs, s, l, d, b
	}

	t.Run("names and values", func(t *testing.T) {
		fs, s, l, d, b := newFlags()
		env := map[string]string{
			"KEYWARD_TOKEN_FILE": "/run/token", "KEYWARD_IP": "10.0.0.0/8,192.0.2.1",
			"KEYWARD_TOKEN_TTL": "2h", "KEYWARD_TEMP": "true",
		}
		lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }

		if err := bindEnv(fs, lookup); err != nil {
			t.Fatal(err)
		}
		if *s != "/run/token" {
			t.Errorf("--token-file = %q", *s)
		}
		if !reflect.DeepEqual(*l, []string{"10.0.0.0/8", "192.0.2.1"}) {
			t.Errorf("--ip = %v", *l)
		}
		if *d != 2*time.Hour {
			t.Errorf("--token-ttl = %s", *d)
		}
		if !*b {
			t.Errorf("--temp = false")
		}
	})

	t.Run("command line wins", func(t *testing.T) {
		fs, s, _, _, _ := newFlags()
		if err := fs.Parse([]string{"--token-file", "/cli"}); err != nil {
			t.Fatal(err)
		}
		lookup := func(name string) (string, bool) { return "/env", name == "KEYWARD_TOKEN_FILE" }
		if err := bindEnv(fs, lookup); err != nil {
			t.Fatal(err)
		}
		if *s != "/cli" {
			t.Errorf("--token-file = %q, want the command-line value", *s)
		}
	})

	t.Run("invalid value names the variable", func(t *testing.T) {
		fs, _, _, _, _ := newFlags()
		lookup := func(name string) (string, bool) { return "soon", name == "KEYWARD_TOKEN_TTL" }
		err := bindEnv(fs, lookup)
		if !isUsageError(err) {
			t.Fatalf("error = %v, want a usage error", err)
		}
		if !strings.Contains(err.Error(), "KEYWARD_TOKEN_TTL") || !strings.Contains(err.Error(), `"soon"`) {
			t.Errorf("message %q does not name the variable and the value", err.Error())
		}
	})
}

func TestCLI_FlagNamesAndHelp(t *testing.T) {
	root, _ := newRootCmd()
	seen := 0
	for _, cmd := range allCommands(root) {
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			seen++
			want := "KEYWARD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
			if got := envName(f.Name); got != want {
				t.Errorf("envName(%q) = %q, want %q", f.Name, got, want)
			}
			if strings.ContainsAny(f.Name, "_ ") || strings.ToLower(f.Name) != f.Name {
				t.Errorf("flag --%s of %q is not kebab-case", f.Name, cmd.CommandPath())
			}
			if f.Name != "help" && !strings.HasSuffix(strings.TrimSpace(f.Usage), ".") {
				t.Errorf("help of --%s of %q is not a full sentence: %q", f.Name, cmd.CommandPath(), f.Usage)
			}
		})
	}
	if seen == 0 {
		t.Fatal("no flags found")
	}
}

func TestCLI_ErrorFormatting(t *testing.T) {
	f := newCLIFakeAPI(t)
	f.respond("GET /v1/admin/vaults/"+cliVault+"/machines/"+cliMachine, 404,
		`{"error":"Machine `+cliMachine+` not found","requestId":"req-42","code":"not_found"}`)
	f.respond("POST /v1/sys/init", 409, `{"error":"cluster already initialized","requestId":"req-43"}`)

	cases := []struct {
		name       string
		env        map[string]string
		args       []string
		code       int
		wantErr    string
		wantHint   string
		wantNoSend bool
	}{
		{"api not found", adminEnv(f), []string{"machine", "get", "--vault", cliVault, cliMachine}, exitError,
			"404 Not Found: Machine " + cliMachine + " not found (request id req-42)", "keyward machine list", false},
		{"second init", map[string]string{"KEYWARD_ADDR": f.server.URL}, []string{"init"}, exitError,
			"409 Conflict", "already initialized", false},
		{"missing token", map[string]string{"KEYWARD_ADDR": f.server.URL}, []string{"vault", "list"}, exitError,
			"needs an admin token", "--token-file", true},
		{"token and token file", map[string]string{"KEYWARD_ADDR": f.server.URL, "KEYWARD_TOKEN": cliToken, "KEYWARD_TOKEN_FILE": "/x"},
			[]string{"vault", "list"}, exitUsage, "both set", "--help", true},
		{"unknown flag", adminEnv(f), []string{"vault", "list", "--colour"}, exitUsage,
			"unknown flag: --colour", "--help", true},
		{"unknown command", adminEnv(f), []string{"vualt"}, exitUsage,
			`unknown command "vualt" for keyward; did you mean vault?`, "--help", true},
		{"unknown subcommand", adminEnv(f), []string{"vault", "delete"}, exitUsage,
			`unknown command "delete" for keyward vault`, "--help", true},
		{"missing subcommand", adminEnv(f), []string{"machine"}, exitUsage,
			"keyward machine needs a subcommand", "--help", true},
		{"wrong argument count", adminEnv(f), []string{"vault", "create"}, exitUsage,
			"keyward vault create takes NAME; got 0 arguments", "--help", true},
		{"missing vault", adminEnv(f), []string{"machine", "list"}, exitUsage,
			"needs --vault (or KEYWARD_VAULT)", "--help", true},
		{"bad output format", adminEnv(f), []string{"vault", "list", "-o", "yaml"}, exitUsage,
			`--output "yaml" is not a format`, "--help", true},
		{"no server", map[string]string{"KEYWARD_ADDR": "http://127.0.0.1:1", "KEYWARD_TOKEN": cliToken}, []string{"vault", "list"}, exitError,
			"connection refused", "no Keyward server is listening at http://127.0.0.1:1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.count()
			r := cliRun(t, tc.env, "", tc.args...)

			assertCode(t, r, tc.code)
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			if !strings.HasPrefix(lines[0], "keyward: error: ") || !strings.Contains(lines[0], tc.wantErr) {
				t.Errorf("first stderr line = %q, want keyward: error: …%s…", lines[0], tc.wantErr)
			}
			hints := strings.Join(lines[1:], "\n")
			if !strings.HasPrefix(hints, "keyward: hint: ") || !strings.Contains(hints, tc.wantHint) {
				t.Errorf("hint lines = %q, want keyward: hint: …%s…", hints, tc.wantHint)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing on an error", r.stdout)
			}
			if tc.wantNoSend && f.count() != before {
				t.Errorf("a request was sent")
			}
		})
	}
}

func TestCLI_JSONOutput(t *testing.T) {
	f := newCLIFakeAPI(t)
	f.respond("GET /v1/admin/vaults", 200, `{"vaults":[{"id":"`+cliVault+`","name":"prod","createdAt":1782820800000}]}`)
	f.respond("GET /v1/admin/vaults/"+cliVault+"/machines/"+cliMachine, 200,
		`{"id":"`+cliMachine+`","vaultId":"`+cliVault+`","name":"ci","kind":"temp","status":"active","expiresAt":1782820800000,"projects":[],"grants":["sk_1"]}`)
	f.respond("GET /v1/sys/health", 200, `{"nodeId":"node1","state":"leader","leaderId":"node1","appliedIndex":12}`)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"vault list", []string{"vault", "list", "--output", "json"},
			`{"vaults":[{"id":"` + cliVault + `","name":"prod","createdAt":1782820800000}]}`},
		{"machine get", []string{"machine", "get", "--vault", cliVault, cliMachine, "-o", "json"},
			`{"id":"` + cliMachine + `","vaultId":"` + cliVault + `","name":"ci","kind":"temp","status":"active","expiresAt":1782820800000,"projects":[],"grants":["sk_1"]}`},
		{"health", []string{"health", "-o", "json"},
			`{"nodeId":"node1","state":"leader","leaderId":"node1","appliedIndex":12}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cliRun(t, adminEnv(f), "", tc.args...)
			assertCode(t, r, exitOK)
			assertBody(t, []byte(r.stdout), tc.want)
		})
	}
}

func TestCLI_TextOutput(t *testing.T) {
	f := newCLIFakeAPI(t)
	f.respond("GET /v1/admin/vaults/"+cliVault+"/machines", 200,
		`{"machines":[{"id":"`+cliMachine+`","name":"ci","kind":"temp","status":"pending","expiresAt":1782820800000,"projects":[],"grants":[]}]}`)

	r := cliRun(t, adminEnv(f), "", "machine", "list", "--vault", cliVault)

	assertCode(t, r, exitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("output has %d lines, want a header and one row:\n%s", len(lines), r.stdout)
	}
	if fields := strings.Fields(lines[0]); fields[0] != "ID" || fields[3] != "STATUS" {
		t.Errorf("header = %q", lines[0])
	}
	for _, want := range []string{cliMachine, "ci", "temp", "pending", "2026-06-30T12:00:00Z"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
}

func TestCLI_SecretContent(t *testing.T) {
	valueFile := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(valueFile, []byte("line1\nline2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	binaryFile := filepath.Join(t.TempDir(), "binary")
	if err := os.WriteFile(binaryFile, []byte{0xff, 0xfe, 0x00}, 0o600); err != nil {
		t.Fatal(err)
	}
	createPath := "/v1/admin/vaults/" + cliVault + "/projects/proj_0123456789/secrets"
	base := []string{"secret", "create", "--vault", cliVault, "--project", "proj_0123456789", "db"}

	cases := []struct {
		name  string
		extra []string
		stdin string
		code  int
		body  string
	}{
		{"value", []string{"--value", "hunter2"}, "", exitOK, `{"name":"db","value":"hunter2"}`},
		{"value file kept byte for byte", []string{"--value-file", valueFile}, "", exitOK, `{"name":"db","value":"line1\nline2\n"}`},
		{"value from stdin", []string{"--value-file", "-"}, "from-stdin", exitOK, `{"name":"db","value":"from-stdin"}`},
		{"fields", []string{"--field", "host=db.internal", "--field", "password=a=b"}, "", exitOK,
			`{"name":"db","fields":{"host":"db.internal","password":"a=b"}}`},
		{"empty value", []string{"--value", ""}, "", exitOK, `{"name":"db","value":""}`},
		{"no content", nil, "", exitUsage, ""},
		{"two sources", []string{"--value", "x", "--field", "a=b"}, "", exitUsage, ""},
		{"field without equals", []string{"--field", "host"}, "", exitUsage, ""},
		{"field twice", []string{"--field", "a=1", "--field", "a=2"}, "", exitUsage, ""},
		{"binary file", []string{"--value-file", binaryFile}, "", exitError, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newCLIFakeAPI(t)
			f.respond("POST "+createPath, 201, `{"id":"sk_0123456789","name":"db","version":1}`)

			r := cliRun(t, adminEnv(f), tc.stdin, append(base, tc.extra...)...)

			assertCode(t, r, tc.code)
			if tc.body == "" {
				if f.count() != 0 {
					t.Errorf("a request was sent for invalid input")
				}
				return
			}
			req := f.last(t)
			if req.Method != "POST" || req.URI != createPath {
				t.Errorf("request = %s %s, want POST %s", req.Method, req.URI, createPath)
			}
			assertBody(t, req.Body, tc.body)
		})
	}
}

func TestCLI_SecretUpdate(t *testing.T) {
	f := newCLIFakeAPI(t)
	path := "/v1/admin/vaults/" + cliVault + "/secrets/sk_0123456789"
	f.respond("PUT "+path, 200, `{"id":"sk_0123456789","name":"db","version":2}`)

	r := cliRun(t, adminEnv(f), "", "secret", "update", "--vault", cliVault, "sk_0123456789", "--value", "v2")

	assertCode(t, r, exitOK)
	req := f.last(t)
	if req.Method != "PUT" || req.URI != path {
		t.Errorf("request = %s %s", req.Method, req.URI)
	}
	assertBody(t, req.Body, `{"value":"v2"}`)
	if !strings.Contains(r.stdout, "2") {
		t.Errorf("output %q does not show the new version", r.stdout)
	}
}

func TestCLI_TempIssue(t *testing.T) {
	path := "/v1/admin/vaults/" + cliVault + "/temp-tokens"
	token := strings.Repeat("ab", 32)
	base := []string{"temp", "issue", "--vault", cliVault, "--name", "pentest"}

	cases := []struct {
		name  string
		extra []string
		code  int
		body  string
	}{
		{"lifetime and guardrails", []string{"--lifetime", "1mo2d3h", "--purpose", "INC-7", "--token-ttl", "2h",
			"--ip", "203.0.113.0/24,2001:db8::/32", "--country", "no,de", "--window", "22:00-06:00",
			"--timezone", "Europe/Oslo", "--days", "mon,fri", "--observe", "country"}, exitOK,
			`{"name":"pentest","purpose":"INC-7","lifetime":{"months":1,"days":2,"hours":3},"tokenTtl":"2h0m0s",
			  "guardrails":{"ipAllowlist":{"cidrs":["203.0.113.0/24","2001:db8::/32"]},
			  "countries":{"codes":["NO","DE"],"observe":true},
			  "timeWindow":{"start":"22:00","end":"06:00","timezone":"Europe/Oslo","days":["mon","fri"]}}}`},
		{"defaults", []string{"--lifetime", "30d"}, exitOK,
			`{"name":"pentest","lifetime":{"months":0,"days":30,"hours":0},"tokenTtl":"1h0m0s"}`},
		{"zero lifetime", []string{"--lifetime", "0h"}, exitUsage, ""},
		{"negative lifetime", []string{"--lifetime", "-1d"}, exitUsage, ""},
		{"minutes lifetime", []string{"--lifetime", "90m"}, exitUsage, ""},
		{"missing lifetime", nil, exitUsage, ""},
		{"zero token ttl", []string{"--lifetime", "1d", "--token-ttl", "0s"}, exitUsage, ""},
		{"window without zone", []string{"--lifetime", "1d", "--window", "09:00-17:00"}, exitUsage, ""},
		{"malformed window", []string{"--lifetime", "1d", "--window", "9-17", "--timezone", "UTC"}, exitUsage, ""},
		{"days without window", []string{"--lifetime", "1d", "--days", "mon"}, exitUsage, ""},
		{"observe unknown axis", []string{"--lifetime", "1d", "--ip", "10.0.0.0/8", "--observe", "asn"}, exitUsage, ""},
		{"observe unconfigured axis", []string{"--lifetime", "1d", "--ip", "10.0.0.0/8", "--observe", "country"}, exitUsage, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newCLIFakeAPI(t)
			f.respond("POST "+path, 201, `{"id":"tt_1","token":"`+token+`","expiresAt":1782820800000,"commands":{"sh":"curl -fsSL http://x/sh | sh","ps":"iwr http://x/ps | iex"}}`)

			r := cliRun(t, adminEnv(f), "", append(base, tc.extra...)...)

			assertCode(t, r, tc.code)
			if tc.body == "" {
				if f.count() != 0 {
					t.Errorf("a request was sent for invalid input")
				}
				if !strings.Contains(r.stderr, "keyward: error: ") {
					t.Errorf("stderr = %q, want an error line", r.stderr)
				}
				return
			}
			assertBody(t, f.last(t).Body, tc.body)
			for _, want := range []string{token, "curl -fsSL http://x/sh | sh", "iwr http://x/ps | iex"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("output lacks %q:\n%s", want, r.stdout)
				}
			}
		})
	}
}

func TestCLI_TempListAndRevoke(t *testing.T) {
	f := newCLIFakeAPI(t)
	f.respond("GET /v1/admin/vaults/"+cliVault+"/temp-tokens", 200,
		`{"tokens":[{"id":"tt_1","kind":"temp","status":"active","expiresAt":1782820800000,"uses":0,"maxUses":1,"machineName":"pentest","lifetime":{"months":0,"days":30,"hours":0}}]}`)

	r := cliRun(t, adminEnv(f), "", "temp", "list", "--vault", cliVault)
	assertCode(t, r, exitOK)
	for _, want := range []string{"tt_1", "pentest", "30d", "active", "0/1"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = cliRun(t, adminEnv(f), "", "temp", "revoke", "--vault", cliVault, "tt_1")
	assertCode(t, r, exitOK)
	req := f.last(t)
	if req.Method != "DELETE" || req.URI != "/v1/admin/vaults/"+cliVault+"/temp-tokens/tt_1" {
		t.Errorf("request = %s %s", req.Method, req.URI)
	}
}

func TestCLI_BootstrapTokenListAndRevoke(t *testing.T) {
	f := newCLIFakeAPI(t)
	f.respond("GET /v1/admin/vaults/"+cliVault+"/bootstrap-tokens", 200,
		`{"tokens":[{"id":"bt_1","kind":"standard","status":"used","createdAt":1782820000000,"expiresAt":1782820600000,"uses":1,"maxUses":1}]}`)

	r := cliRun(t, adminEnv(f), "", "bootstrap-token", "list", "--vault", cliVault)
	assertCode(t, r, exitOK)
	for _, want := range []string{"bt_1", "used", "2026-"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = cliRun(t, adminEnv(f), "", "bootstrap-token", "revoke", "--vault", cliVault, "bt_1")
	assertCode(t, r, exitOK)
	req := f.last(t)
	if req.Method != "DELETE" || req.URI != "/v1/admin/vaults/"+cliVault+"/bootstrap-tokens/bt_1" {
		t.Errorf("request = %s %s", req.Method, req.URI)
	}
}

func TestCLI_MachinePurge(t *testing.T) {
	f := newCLIFakeAPI(t)
	f.respond("DELETE /v1/admin/vaults/"+cliVault+"/machines/"+cliMachine, 200,
		`{"id":"`+cliMachine+`","purged":true,"confirmedNodes":2,"clusterNodes":3,"unconfirmedNodes":["node3"]}`)
	r := cliRun(t, adminEnv(f), "", "machine", "purge", "--vault", cliVault, cliMachine)
	assertCode(t, r, exitOK)
	req := f.last(t)
	if req.Method != "DELETE" || req.URI != "/v1/admin/vaults/"+cliVault+"/machines/"+cliMachine {
		t.Errorf("request = %s %s", req.Method, req.URI)
	}
	for _, want := range []string{cliMachine, "2 of 3 nodes", "stale until they catch up: node3"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestCLI_Extend(t *testing.T) {
	path := "/v1/admin/vaults/" + cliVault + "/machines/" + cliMachine + "/extend"
	base := []string{"machine", "extend", "--vault", cliVault, cliMachine}

	cases := []struct {
		name  string
		extra []string
		code  int
		body  string
	}{
		{"until", []string{"--until", "2026-06-30T14:00:00+02:00", "--reason", "audit"}, exitOK,
			`{"expiresAt":1782820800000,"reason":"audit"}`},
		{"until drops sub-millisecond digits", []string{"--until", "2026-06-30T12:00:00.5009Z", "--reason", "audit"}, exitOK,
			`{"expiresAt":1782820800500,"reason":"audit"}`},
		{"by days", []string{"--by", "30d", "--reason", "audit"}, exitOK, `{"duration":"720h0m0s","reason":"audit"}`},
		{"by days and hours", []string{"--by", "1d12h", "--reason", "audit"}, exitOK, `{"duration":"36h0m0s","reason":"audit"}`},
		{"by go duration", []string{"--by", "90m", "--reason", "audit"}, exitOK, `{"duration":"1h30m0s","reason":"audit"}`},
		{"by zero", []string{"--by", "0s", "--reason", "r"}, exitUsage, ""},
		{"by zero days", []string{"--by", "0d", "--reason", "r"}, exitUsage, ""},
		{"by negative", []string{"--by", "-1h", "--reason", "r"}, exitUsage, ""},
		{"by months", []string{"--by", "1mo", "--reason", "r"}, exitUsage, ""},
		{"by garbage", []string{"--by", "soon", "--reason", "r"}, exitUsage, ""},
		{"by overflow", []string{"--by", "999999d", "--reason", "r"}, exitUsage, ""},
		{"until year one", []string{"--until", "0001-01-01T00:00:00Z", "--reason", "r"}, exitUsage, ""},
		{"until empty", []string{"--until", "", "--reason", "r"}, exitUsage, ""},
		{"until zero", []string{"--until", "0", "--reason", "r"}, exitUsage, ""},
		{"until and by", []string{"--until", "2026-07-01T00:00:00Z", "--by", "1h", "--reason", "r"}, exitUsage, ""},
		{"neither", []string{"--reason", "r"}, exitUsage, ""},
		{"no reason", []string{"--by", "1h"}, exitUsage, ""},
		{"blank reason", []string{"--by", "1h", "--reason", "  "}, exitUsage, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newCLIFakeAPI(t)
			f.respond("POST "+path, 200, `{"id":"`+cliMachine+`","kind":"temp","status":"active","expiresAt":1782820800000}`)

			r := cliRun(t, adminEnv(f), "", append(base, tc.extra...)...)

			assertCode(t, r, tc.code)
			if tc.body == "" {
				if f.count() != 0 {
					t.Errorf("a request was sent for invalid input")
				}
				return
			}
			req := f.last(t)
			if req.URI != path {
				t.Errorf("path = %s, want %s", req.URI, path)
			}
			assertBody(t, req.Body, tc.body)
			if !strings.Contains(r.stdout, "2026-06-30T12:00:00Z") {
				t.Errorf("output does not show the new expiry:\n%s", r.stdout)
			}
		})
	}
}

func TestCLI_OverCapNamesTheCap(t *testing.T) {
	f := newCLIFakeAPI(t)
	f.respond("POST /v1/admin/vaults/"+cliVault+"/machines/"+cliMachine+"/extend", 422,
		`{"error":"new expiry 2027-06-01T00:00:00Z is after the cap 2027-01-10T00:00:00Z","requestId":"r-9","code":"over_cap"}`)

	r := cliRun(t, adminEnv(f), "", "machine", "extend", "--vault", cliVault, cliMachine,
		"--until", "2027-06-01T00:00:00Z", "--reason", "r")

	assertCode(t, r, exitError)
	if !strings.Contains(r.stderr, "the cap 2027-01-10T00:00:00Z") {
		t.Errorf("stderr %q does not pass on the server's cap", r.stderr)
	}
}

func TestCLI_RevertAndHistory(t *testing.T) {
	f := newCLIFakeAPI(t)
	prefix := "/v1/admin/vaults/" + cliVault + "/machines/" + cliMachine
	f.respond("GET "+prefix+"/extensions", 200, `{"extensions":[
		{"id":"ext_1","previousExpiresAt":1782820800000,"newExpiresAt":1785412800000,"reason":"audit","actor":"tok_1","createdAt":1782000000000,"revertedAt":1782100000000,"revertedBy":"tok_2"},
		{"id":"ext_2","previousExpiresAt":1782820800000,"newExpiresAt":1784000000000,"reason":"again","actor":"tok_1","createdAt":1782200000000}]}`)

	r := cliRun(t, adminEnv(f), "", "machine", "revert", "--vault", cliVault, cliMachine, "--reason", "mistake")
	assertCode(t, r, exitOK)
	req := f.last(t)
	if req.URI != prefix+"/revert" {
		t.Errorf("path = %s", req.URI)
	}
	assertBody(t, req.Body, `{"reason":"mistake"}`)

	r = cliRun(t, adminEnv(f), "", "machine", "revert", "--vault", cliVault, cliMachine)
	assertCode(t, r, exitUsage)

	r = cliRun(t, adminEnv(f), "", "machine", "history", "--vault", cliVault, cliMachine)
	assertCode(t, r, exitOK)
	for _, want := range []string{"ext_1", "ext_2", "audit", "by tok_2", "2026-06-30T12:00:00Z"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("history lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestCLI_Guardrails(t *testing.T) {
	path := "/v1/admin/vaults/" + cliVault + "/machines/" + cliMachine + "/guardrails"
	base := []string{"machine", "guardrails", "--vault", cliVault, cliMachine}

	cases := []struct {
		name  string
		extra []string
		code  int
		body  string
	}{
		{"all axes", []string{"--ip", "10.20.0.0/16", "--country", "NO", "--window", "09:00-17:00",
			"--timezone", "Europe/Oslo", "--observe", "ip,time-window"}, exitOK,
			`{"ipAllowlist":{"cidrs":["10.20.0.0/16"],"observe":true},"countries":{"codes":["NO"]},
			  "timeWindow":{"start":"09:00","end":"17:00","timezone":"Europe/Oslo","observe":true}}`},
		{"clear", []string{"--clear"}, exitOK, `{}`},
		{"neither", nil, exitUsage, ""},
		{"clear and flags", []string{"--clear", "--ip", "10.0.0.0/8"}, exitUsage, ""},
		{"empty ip list", []string{"--ip", ""}, exitUsage, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newCLIFakeAPI(t)
			r := cliRun(t, adminEnv(f), "", append(base, tc.extra...)...)

			assertCode(t, r, tc.code)
			if tc.body == "" {
				if f.count() != 0 {
					t.Errorf("a request was sent for invalid input")
				}
				return
			}
			req := f.last(t)
			if req.Method != "PUT" || req.URI != path {
				t.Errorf("request = %s %s", req.Method, req.URI)
			}
			assertBody(t, req.Body, tc.body)
		})
	}
}

func TestCLI_Grant(t *testing.T) {
	path := "/v1/admin/vaults/" + cliVault + "/machines/" + cliMachine + "/grants"
	cases := []struct {
		name string
		args []string
		code int
		body string
	}{
		{"replace set", []string{cliMachine, "sk_a", "sk_b"}, exitOK, `{"secretIds":["sk_a","sk_b"]}`},
		{"clear", []string{cliMachine, "--clear"}, exitOK, `{"secretIds":[]}`},
		{"nothing", []string{cliMachine}, exitUsage, ""},
		{"ids and clear", []string{cliMachine, "sk_a", "--clear"}, exitUsage, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newCLIFakeAPI(t)
			r := cliRun(t, adminEnv(f), "", append([]string{"machine", "grant", "--vault", cliVault}, tc.args...)...)

			assertCode(t, r, tc.code)
			if tc.body == "" {
				if f.count() != 0 {
					t.Errorf("a request was sent for invalid input")
				}
				return
			}
			req := f.last(t)
			if req.Method != "PUT" || req.URI != path {
				t.Errorf("request = %s %s", req.Method, req.URI)
			}
			assertBody(t, req.Body, tc.body)
		})
	}
}

func TestCLI_MachineActions(t *testing.T) {
	for _, action := range []string{"approve", "deny", "revoke", "disable", "enable"} {
		t.Run(action, func(t *testing.T) {
			f := newCLIFakeAPI(t)
			r := cliRun(t, adminEnv(f), "", "machine", action, "--vault", cliVault, cliMachine)

			assertCode(t, r, exitOK)
			req := f.last(t)
			want := "/v1/admin/vaults/" + cliVault + "/machines/" + cliMachine + "/" + action
			if req.Method != "POST" || req.URI != want {
				t.Errorf("request = %s %s, want POST %s", req.Method, req.URI, want)
			}
		})
	}

	f := newCLIFakeAPI(t)
	r := cliRun(t, adminEnv(f), "", "machine", "attach-project", "--vault", cliVault, cliMachine, "proj_0123456789")
	assertCode(t, r, exitOK)
	assertBody(t, f.last(t).Body, `{"projectId":"proj_0123456789"}`)
}

func TestCLI_InitPrintsOnlyToken(t *testing.T) {
	f := newCLIFakeAPI(t)
	f.respond("POST /v1/sys/init", 200, `{"rootToken":"`+cliToken+`"}`)

	r := cliRun(t, map[string]string{"KEYWARD_ADDR": f.server.URL}, "", "init")

	assertCode(t, r, exitOK)
	if r.stdout != cliToken+"\n" {
		t.Errorf("stdout = %q, want only the token", r.stdout)
	}
	if _, sent := f.last(t).Header["Authorization"]; sent {
		t.Errorf("init sent an Authorization header")
	}
}

func TestCLI_BootstrapTokenCreate(t *testing.T) {
	f := newCLIFakeAPI(t)
	token := strings.Repeat("cd", 32)
	f.respond("POST /v1/admin/vaults/"+cliVault+"/bootstrap-tokens", 201,
		`{"token":"`+token+`","expiresAt":1782820800000,"commands":{"sh":"curl -fsSL URL | sh","ps":"iwr URL | iex"}}`)

	r := cliRun(t, adminEnv(f), "", "bootstrap-token", "create", "--vault", cliVault)

	assertCode(t, r, exitOK)
	assertBody(t, f.last(t).Body, `{}`)
	for _, want := range []string{token, "curl -fsSL URL | sh", "iwr URL | iex", "2026-06-30T12:00:00Z"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestCLI_RootKeyNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root-key")

	r := cliRun(t, nil, "", "root-key", "new", path)
	assertCode(t, r, exitOK)

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(string(data), "\n"))
	if err != nil || len(key) != 32 {
		t.Errorf("file %q is not one line of base64 of 32 bytes (err %v)", data, err)
	}

	r = cliRun(t, nil, "", "root-key", "new", path)
	assertCode(t, r, exitError)
	again, _ := os.ReadFile(path)
	if !bytes.Equal(again, data) {
		t.Errorf("a second root-key new replaced the key")
	}
}

// TestCLI_RegisterThenGet registers through the CLI, then reads a secret
// with `keyward get`; the fake server verifies the signature with the
// public key that the registration sent.
func TestCLI_RegisterThenGet(t *testing.T) {
	f := newCLIFakeAPI(t)
	token := strings.Repeat("0f", 32)
	home := filepath.Join(t.TempDir(), "kw")
	var mu sync.Mutex
	var registeredKey ed25519.PublicKey

	f.handler = func(w http.ResponseWriter, req cliRequest) bool {
		switch req.URI {
		case "/v1/" + cliVault + "/temp-bootstrap/" + token + "/register":
			var in struct{ PublicKey, Hostname string }
			_ = json.Unmarshal(req.Body, &in)
			raw, _ := base64.StdEncoding.DecodeString(in.PublicKey)
			mu.Lock()
			registeredKey = raw
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"machineId":"`+cliMachine+`","machineName":"pentest","vaultId":"`+cliVault+`","apiUrl":"`+f.server.URL+`","expiresAt":1782820800000}`)
			return true
		case "/v1/secret/sk_0123456789":
			mu.Lock()
			pub := registeredKey
			mu.Unlock()
			if !cliSignatureValid(req, pub) {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"error":"Invalid signature"}`)
				return true
			}
			_, _ = io.WriteString(w, `{"value":"s3cret value"}`)
			return true
		}
		return false
	}
	env := map[string]string{"KEYWARD_HOME": home}

	r := cliRun(t, env, "", "register", token, "--api-url", f.server.URL, "--temp", "--vault", cliVault, "--hostname", "box-1")
	assertCode(t, r, exitOK)
	for _, want := range []string{cliMachine, "pentest", "2026-06-30T12:00:00Z", filepath.Join(home, "vaults", cliVault, "identity.json")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("register output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = cliRun(t, env, "", "get", "sk_0123456789")
	assertCode(t, r, exitOK)
	if r.stdout != "s3cret value" {
		t.Errorf("stdout = %q, want the raw value without a newline", r.stdout)
	}

	r = cliRun(t, env, "", "get", "sk_0123456789", "-o", "json")
	assertCode(t, r, exitOK)
	assertBody(t, []byte(r.stdout), `{"value":"s3cret value"}`)
}

func cliSignatureValid(req cliRequest, pub ed25519.PublicKey) bool {
	if len(pub) != ed25519.PublicKeySize || req.Header.Get("X-Machine-Id") != cliMachine {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(req.Header.Get("X-Signature"))
	if err != nil {
		return false
	}
	sum := sha256.Sum256(req.Body)
	msg := req.Method + ":" + req.URI + ":" + req.Header.Get("X-Timestamp") + ":" + req.Header.Get("X-Nonce") + ":" + hex.EncodeToString(sum[:])
	return ed25519.Verify(pub, []byte(msg), sig)
}

func TestCLI_MachineSideErrors(t *testing.T) {
	t.Run("no identity", func(t *testing.T) {
		r := cliRun(t, map[string]string{"KEYWARD_HOME": t.TempDir()}, "", "get", "sk_1")
		assertCode(t, r, exitError)
		if !strings.Contains(r.stderr, "keyward: hint: register this host first") {
			t.Errorf("stderr = %q, want the register hint", r.stderr)
		}
	})

	t.Run("api url unreachable", func(t *testing.T) {
		home := t.TempDir()
		closed := freePorts(t, 1)[0]
		apiURL := fmt.Sprintf("http://127.0.0.1:%d", closed)
		writeCLIIdentity(t, home, apiURL)
		r := cliRun(t, map[string]string{"KEYWARD_HOME": home}, "", "get", "sk_0123456789")
		assertCode(t, r, exitError)
		if !strings.Contains(r.stderr, "no Keyward server is listening at "+apiURL) || !strings.Contains(r.stderr, "--addr") {
			t.Errorf("stderr = %q, want a hint naming %s, the URL that was dialled, and --addr", r.stderr, apiURL)
		}
	})

	t.Run("temp without vault", func(t *testing.T) {
		r := cliRun(t, nil, "", "register", strings.Repeat("0f", 32), "--temp")
		assertCode(t, r, exitUsage)
	})

	t.Run("used token", func(t *testing.T) {
		f := newCLIFakeAPI(t)
		token := strings.Repeat("0f", 32)
		f.respond("POST /v1/bootstrap/"+token+"/register", 410, `{"error":"bootstrap token already used"}`)
		r := cliRun(t, map[string]string{"KEYWARD_HOME": t.TempDir()}, "", "register", token, "--api-url", f.server.URL)
		assertCode(t, r, exitError)
		if strings.Contains(r.stderr, token) {
			t.Errorf("stderr shows the token: %q", r.stderr)
		}
		if !strings.Contains(r.stderr, "ask an operator for a new one") {
			t.Errorf("stderr = %q, want the new-token hint", r.stderr)
		}
	})

	t.Run("token of another kind", func(t *testing.T) {
		f := newCLIFakeAPI(t)
		token := strings.Repeat("0f", 32)
		f.respond("POST /v1/bootstrap/"+token+"/register", 401,
			`{"error":"Invalid bootstrap token: this is an enrollment token; register with POST /v1/{vaultId}/enroll/register (keyward register --enroll --vault VAULT_ID)"}`)
		r := cliRun(t, map[string]string{"KEYWARD_HOME": t.TempDir()}, "", "register", token, "--api-url", f.server.URL)
		assertCode(t, r, exitError)
		if strings.Contains(r.stderr, "ask an operator for a new one") {
			t.Errorf("stderr = %q blames the token's state, not its route", r.stderr)
		}
		if !strings.Contains(r.stderr, "--enroll") {
			t.Errorf("stderr = %q, want the flag of the right route", r.stderr)
		}
	})
}

// allCommands returns cmd and every command below it.
func allCommands(cmd *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{cmd}
	for _, sub := range cmd.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

func TestCLI_HealthOfUnhealthyNode(t *testing.T) {
	f := newCLIFakeAPI(t)
	f.respond("GET /v1/sys/health", 503,
		`{"nodeId":"node3","state":"follower","leaderId":"","appliedIndex":40,"staleness":"7.2s","stalenessMs":7200,"ready":false,"healthy":false}`)

	r := cliRun(t, adminEnv(f), "", "health", "-o", "json")

	assertCode(t, r, exitError)
	assertBody(t, []byte(r.stdout),
		`{"nodeId":"node3","state":"follower","leaderId":"","appliedIndex":40,"staleness":"7.2s","stalenessMs":7200,"ready":false,"healthy":false}`)
	if !strings.Contains(r.stderr, "not healthy") {
		t.Errorf("stderr = %q, want it to say the node is not healthy", r.stderr)
	}
}

// writeCLIIdentity writes a machine identity whose apiUrl is apiURL under
// home, as registration would.
func writeCLIIdentity(t *testing.T, home, apiURL string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, "vaults", cliVault)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "private.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	id, _ := json.Marshal(map[string]string{
		"machineId": cliMachine, "machineName": "box", "vaultId": cliVault, "apiUrl": apiURL, "privateKeyPath": keyPath,
	})
	if err := os.WriteFile(filepath.Join(dir, "identity.json"), id, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCLI_IdempotencyKeyOnWrites(t *testing.T) {
	f := newCLIFakeAPI(t)
	route := "POST /v1/admin/vaults/" + cliVault + "/machines/" + cliMachine + "/approve"
	f.respond(route, 503, `{"error":"The write may or may not have been applied","code":"commit_indeterminate"}`)

	r := cliRun(t, adminEnv(f), "", "--idempotency-key", "retry-1", "machine", "approve", "--vault", cliVault, cliMachine)
	assertCode(t, r, exitError)
	if got := f.last(t).Header.Get("Idempotency-Key"); got != "retry-1-1" {
		t.Errorf("Idempotency-Key = %q, want retry-1-1", got)
	}
	if !strings.Contains(r.stderr, "--idempotency-key retry-1") {
		t.Errorf("stderr %q does not tell how to repeat the write safely", r.stderr)
	}

	// Without the flag each run picks its own random key.
	r = cliRun(t, adminEnv(f), "", "machine", "approve", "--vault", cliVault, cliMachine)
	assertCode(t, r, exitError)
	key := f.last(t).Header.Get("Idempotency-Key")
	if key == "" || !strings.HasSuffix(key, "-1") || !strings.Contains(r.stderr, "--idempotency-key "+strings.TrimSuffix(key, "-1")) {
		t.Errorf("key %q and stderr %q, want a random key that the hint repeats", key, r.stderr)
	}

	r = cliRun(t, adminEnv(f), "", "--idempotency-key", "has space", "machine", "approve", "--vault", cliVault, cliMachine)
	assertCode(t, r, exitUsage)
}
