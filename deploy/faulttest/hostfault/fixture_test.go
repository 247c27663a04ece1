package hostfault

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// secretValue is the value of the fixture's secret.
const secretValue = "s3cr3t-value"

// fixture is what every scenario starts from: a vault, a project and one
// secret in it.
type fixture struct {
	vaultID   string
	projectID string
	secretID  string
}

// setup initialises the cluster through n and creates the fixture.
func (c *cluster) setup(n *node) fixture {
	c.t.Helper()
	var initResp struct {
		RootToken string `json:"rootToken"`
	}
	c.mustAdmin(n, http.StatusOK, http.MethodPost, "/v1/sys/init", map[string]any{}, &initResp)
	if !strings.HasPrefix(initResp.RootToken, "kwt_") {
		c.t.Fatalf("init returned root token %q without the kwt_ prefix", initResp.RootToken)
	}
	c.token = initResp.RootToken
	// The admin API returns 503 until the node has applied what its leader
	// held when the node asked, which may trail the election.
	c.waitReady(n)
	var f fixture
	var obj struct {
		ID string `json:"id"`
	}
	c.mustAdmin(n, http.StatusCreated, http.MethodPost, "/v1/admin/vaults", map[string]any{"name": "disk"}, &obj)
	f.vaultID = obj.ID
	c.mustAdmin(n, http.StatusCreated, http.MethodPost, "/v1/admin/vaults/"+f.vaultID+"/projects",
		map[string]any{"name": "workload"}, &obj)
	f.projectID = obj.ID
	c.mustAdmin(n, http.StatusCreated, http.MethodPost,
		"/v1/admin/vaults/"+f.vaultID+"/projects/"+f.projectID+"/secrets",
		map[string]any{"name": "db-password", "value": secretValue}, &obj)
	f.secretID = obj.ID
	return f
}

func (f fixture) machinePath(machineID string) string {
	return "/v1/admin/vaults/" + f.vaultID + "/machines/" + machineID
}

// machine is a workload identity: its id and Ed25519 private key.
type machine struct {
	id   string
	priv ed25519.PrivateKey
}

// registerTemp registers a temporary machine that expires in a day, which
// the tests extend, through n, approves it and grants it the secret.
// guardrails, when not nil, are set on the machine.
func (c *cluster) registerTemp(n *node, f fixture, name string, guardrails map[string]any) machine {
	c.t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	c.mustAdmin(n, http.StatusCreated, http.MethodPost, "/v1/admin/vaults/"+f.vaultID+"/temp-tokens",
		map[string]any{"name": name, "lifetime": map[string]int{"days": 1}, "tokenTtl": "1h"}, &tok)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	var reg struct {
		MachineID string `json:"machineId"`
	}
	token := c.token
	c.token = ""
	c.mustAdmin(n, http.StatusCreated, http.MethodPost, "/v1/"+f.vaultID+"/temp-bootstrap/"+tok.Token+"/register",
		map[string]any{"publicKey": base64.StdEncoding.EncodeToString(pub), "hostname": name}, &reg)
	c.token = token
	m := machine{id: reg.MachineID, priv: priv}
	base := f.machinePath(m.id)
	c.mustAdmin(n, http.StatusOK, http.MethodPost, base+"/approve", map[string]any{}, nil)
	c.mustAdmin(n, http.StatusOK, http.MethodPost, base+"/projects", map[string]any{"projectId": f.projectID}, nil)
	c.mustAdmin(n, http.StatusOK, http.MethodPut, base+"/grants", map[string]any{"secretIds": []string{f.secretID}}, nil)
	if guardrails != nil {
		c.mustAdmin(n, http.StatusOK, http.MethodPut, base+"/guardrails", guardrails, nil)
	}
	return m
}

// blockLoopback is a guardrail that blocks every request the tests send,
// since they all come from 127.0.0.1.
var blockLoopback = map[string]any{"ipAllowlist": map[string]any{"cidrs": []string{"203.0.113.0/24"}}}

// signedRequest is a signed machine request as it goes on the wire, kept so
// that a test can replay it byte for byte.
type signedRequest struct {
	method  string
	path    string
	headers map[string]string
}

// sign builds the signature headers over
// METHOD:PATH:TIMESTAMP:NONCE:hex(sha256(body)) for an empty body, with a
// fresh random nonce.
func (m machine) sign(method, path string, now time.Time) signedRequest {
	ts := strconv.FormatInt(now.Unix(), 10)
	nonceBytes := make([]byte, 16)
	_, _ = rand.Read(nonceBytes)
	nonce := hex.EncodeToString(nonceBytes)
	sum := sha256.Sum256(nil)
	msg := method + ":" + path + ":" + ts + ":" + nonce + ":" + hex.EncodeToString(sum[:])
	sig := ed25519.Sign(m.priv, []byte(msg))
	return signedRequest{method: method, path: path, headers: map[string]string{
		"X-Machine-Id": m.id,
		"X-Timestamp":  ts,
		"X-Nonce":      nonce,
		"X-Signature":  base64.StdEncoding.EncodeToString(sig),
	}}
}

// send sends r to n and returns the status and body. err is set only when
// no response arrived.
func (r signedRequest) send(ctx context.Context, n *node) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, r.method, n.url()+r.path, bytes.NewReader(nil))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, raw, err
}

// readSecret sends a freshly signed read of the fixture's secret to n.
func readSecret(ctx context.Context, n *node, m machine, f fixture) (int, []byte, error) {
	return m.sign(http.MethodGet, "/v1/secret/"+f.secretID, time.Now()).send(ctx, n)
}

// waitServes waits until every node serves the secret to m.
func (c *cluster) waitServes(m machine, f fixture) {
	c.t.Helper()
	for _, n := range c.nodes {
		eventually(c.t, 20*time.Second, n.id+" serving the secret", func() string {
			status, body, err := readSecret(context.Background(), n, m, f)
			if err != nil || status != http.StatusOK {
				return fmt.Sprintf("status %d %s %v", status, body, err)
			}
			var out struct {
				Value string `json:"value"`
			}
			if err := json.Unmarshal(body, &out); err != nil || out.Value != secretValue {
				return fmt.Sprintf("body %s, want value %q", body, secretValue)
			}
			return ""
		})
	}
}

// extend extends m by a minute through n with reason as its label, and
// returns the status and body.
func (c *cluster) extend(ctx context.Context, n *node, f fixture, m machine, reason string) (int, []byte, error) {
	return c.admin(ctx, n, http.MethodPost, f.machinePath(m.id)+"/extend",
		map[string]any{"duration": "1m", "reason": reason})
}

// extensionReasons returns the reasons of m's extensions as n reports them.
func (c *cluster) extensionReasons(n *node, f fixture, m machine) map[string]bool {
	c.t.Helper()
	var out struct {
		Extensions []struct {
			Reason string `json:"reason"`
		} `json:"extensions"`
	}
	c.mustAdmin(n, http.StatusOK, http.MethodGet, f.machinePath(m.id)+"/extensions", nil, &out)
	reasons := make(map[string]bool, len(out.Extensions))
	for _, e := range out.Extensions {
		reasons[e.Reason] = true
	}
	return reasons
}

// waitConverged waits until every node among reports the same checksum.
func (c *cluster) waitConverged(among ...*node) {
	c.t.Helper()
	if len(among) == 0 {
		among = c.nodes
	}
	eventually(c.t, clusterTimeout, "the nodes to converge", func() string {
		sums := map[string]string{}
		for _, n := range among {
			var s struct {
				Checksum string `json:"checksum"`
			}
			status, body, err := c.admin(context.Background(), n, http.MethodGet, "/v1/sys/checksum", nil)
			if err != nil || status != http.StatusOK || json.Unmarshal(body, &s) != nil {
				return fmt.Sprintf("%s: checksum status %d %v", n.id, status, err)
			}
			sums[n.id] = s.Checksum
		}
		for _, sum := range sums {
			for _, other := range sums {
				if sum != other {
					return fmt.Sprintf("checksums differ: %v", sums)
				}
			}
		}
		return ""
	})
}
