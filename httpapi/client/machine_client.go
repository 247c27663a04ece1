package client

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// MachineClient reads secrets as a registered machine: every request is
// signed with the machine's key. It is safe for concurrent use.
type MachineClient struct {
	transport *transport
	signer    *Signer
	identity  *Identity
	now       func() time.Time
}

// NewMachineClient returns a client for the machine described by id,
// signing with key. Requests go to id.APIURL unless [WithBaseURL] names
// another address. [WithToken] has no effect here.
func NewMachineClient(id *Identity, key ed25519.PrivateKey, opts ...Option) (*MachineClient, error) {
	if err := id.check(); err != nil {
		return nil, fmt.Errorf("machine identity: %w", err)
	}
	signer, err := NewSigner(id.MachineID, key)
	if err != nil {
		return nil, err
	}

	s := collectSettings(opts)
	base := id.APIURL
	if s.baseURL != "" {
		base = s.baseURL
	}
	t, err := newTransport(base, &s)
	if err != nil {
		return nil, err
	}
	return &MachineClient{transport: t, signer: signer, identity: id, now: s.now}, nil
}

// OpenMachineClient loads the identity file at path and its private key,
// and returns a client for it.
func OpenMachineClient(path string, opts ...Option) (*MachineClient, error) {
	id, err := LoadIdentity(path)
	if err != nil {
		return nil, err
	}
	key, err := id.PrivateKey()
	if err != nil {
		return nil, err
	}
	return NewMachineClient(id, key, opts...)
}

// Identity returns the machine's identity.
func (m *MachineClient) Identity() *Identity { return m.identity }

// Signer returns the machine's signer, for callers that build requests
// themselves.
func (m *MachineClient) Signer() *Signer { return m.signer }

// BaseURL returns the API address without a trailing slash.
func (m *MachineClient) BaseURL() string { return m.transport.base }

// Do sends one signed request to path (starting with "/", escaped, no
// query) with in encoded as the JSON body, and decodes a 2xx JSON response
// into out, like [Client.Do]. The signature covers the request path as it
// goes on the request line and the exact body bytes sent.
func (m *MachineClient) Do(ctx context.Context, method, path string, in, out any) error {
	body, err := encodeBody(in)
	if err != nil {
		return err
	}
	req, err := m.transport.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}

	signedPath := req.URL.RequestURI()
	if strings.ContainsAny(signedPath, "?#") {
		return invalidArgf("signed request path %q has a query; the machine protocol signs paths only", signedPath)
	}
	for name, values := range m.signer.SignRequest(method, signedPath, body, m.now()) {
		req.Header[name] = values
	}
	return m.transport.send(req, out)
}

func (m *MachineClient) call(ctx context.Context, method string, in, out any, segments ...string) error {
	path, err := routePath(segments...)
	if err != nil {
		return err
	}
	return m.Do(ctx, method, path, in, out)
}

// GetSecret returns a secret's current value. A structured secret's value
// is its JSON object as text; see [MachineClient.GetFields].
func (m *MachineClient) GetSecret(ctx context.Context, secretID string) (string, error) {
	var out struct {
		Value string `json:"value"`
	}
	if err := m.call(ctx, http.MethodGet, nil, &out, "secret", secretID); err != nil {
		return "", fmt.Errorf("read secret %s: %w", secretID, err)
	}
	return out.Value, nil
}

// GetFields returns the fields of a structured secret.
func (m *MachineClient) GetFields(ctx context.Context, secretID string) (map[string]string, error) {
	value, err := m.GetSecret(ctx, secretID)
	if err != nil {
		return nil, err
	}
	var fields map[string]string
	if err := json.Unmarshal([]byte(value), &fields); err != nil {
		return nil, fmt.Errorf("secret %s is not a structured secret (a JSON object of strings): %w", secretID, err)
	}
	return fields, nil
}

// ListSecrets returns the secrets the machine may read, without values.
func (m *MachineClient) ListSecrets(ctx context.Context) ([]MachineSecret, error) {
	var out struct {
		Secrets []MachineSecret `json:"secrets"`
	}
	if err := m.call(ctx, http.MethodGet, nil, &out, "secrets"); err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return out.Secrets, nil
}

// ListProjectSecrets returns the secrets of one project that the machine
// may read, without values.
func (m *MachineClient) ListProjectSecrets(ctx context.Context, projectID string) ([]MachineSecret, error) {
	var out struct {
		Secrets []MachineSecret `json:"secrets"`
	}
	if err := m.call(ctx, http.MethodPost, projectBody(projectID), &out, "secrets", "list"); err != nil {
		return nil, fmt.Errorf("list secrets of project %s: %w", projectID, err)
	}
	return out.Secrets, nil
}

// Export returns the secrets the machine may read with their values, from
// one project, or from every project when projectID is empty (then the
// request has an empty body).
func (m *MachineClient) Export(ctx context.Context, projectID string) ([]MachineSecret, error) {
	var in any
	if projectID != "" {
		in = projectBody(projectID)
	}
	var out struct {
		Secrets []MachineSecret `json:"secrets"`
	}
	if err := m.call(ctx, http.MethodPost, in, &out, "secrets", "export"); err != nil {
		return nil, fmt.Errorf("export secrets: %w", err)
	}
	return out.Secrets, nil
}

// Poll reports which of the watched secrets changed, were deleted or are no
// longer readable. Secrets absent from the response are unchanged.
func (m *MachineClient) Poll(ctx context.Context, secretIDs []string) (map[string]PollChange, error) {
	if secretIDs == nil {
		secretIDs = []string{}
	}
	in := struct {
		Watch []string `json:"watch"`
	}{secretIDs}
	var out struct {
		Changes map[string]PollChange `json:"changes"`
	}
	if err := m.call(ctx, http.MethodPost, in, &out, "secrets", "poll"); err != nil {
		return nil, fmt.Errorf("poll secrets: %w", err)
	}
	return out.Changes, nil
}

// VerifyAccess checks that the machine may use a project.
func (m *MachineClient) VerifyAccess(ctx context.Context, projectID string) (*AccessCheck, error) {
	var out AccessCheck
	if err := m.call(ctx, http.MethodPost, projectBody(projectID), &out, "verify-access"); err != nil {
		return nil, fmt.Errorf("verify access to project %s: %w", projectID, err)
	}
	return &out, nil
}

func projectBody(projectID string) any {
	return struct {
		ProjectID string `json:"projectId"`
	}{projectID}
}
