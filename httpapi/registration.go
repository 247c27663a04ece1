package httpapi

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"text/template"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/guard"
)

// registerResponse is the body of a successful registration. The sh script
// turns it into identity.json by appending privateKeyPath, so it must stay
// one compact JSON object. ExpiresAt is set for temporary machines only.
type registerResponse struct {
	MachineID   string `json:"machineId"`
	MachineName string `json:"machineName"`
	VaultID     string `json:"vaultId"`
	APIURL      string `json:"apiUrl"`
	ExpiresAt   int64  `json:"expiresAt,omitempty"`
}

// registerRequest is the body sent by the scripts and `keyward register`.
type registerRequest struct {
	PublicKey string `json:"publicKey"`
	Hostname  string `json:"hostname"`
}

// bootstrapScript returns the handler of GET /v1/bootstrap/{token}[/ps]
// (kind standard) or GET /v1/{vaultId}/temp-bootstrap/{token}[/ps] (kind
// temp). The token is checked, not consumed: only registration consumes
// it, through Raft.
func (s *Server) bootstrapScript(kind string, tmpl *template.Template, contentType string) func(*request) error {
	return func(rc *request) error {
		bt, err := s.usableBootstrapToken(rc, kind)
		if err != nil {
			return err
		}
		apiURL, err := s.apiURL(rc)
		if err != nil {
			return err
		}

		script, err := renderScript(tmpl, scriptData{
			APIURL:      apiURL,
			VaultID:     string(bt.VaultID),
			RegisterURL: apiURL + registerPath(kind, bt.VaultID, rc.param("token")),
		})
		if err != nil {
			return fmt.Errorf("render bootstrap script: %w", err)
		}
		rc.ctx.SetStatusCode(fasthttp.StatusOK)
		rc.ctx.SetContentType(contentType)
		rc.ctx.SetBodyString(script)
		return nil
	}
}

// registerPath is the registration route for a token of kind.
func registerPath(kind string, vault fsm.VaultID, token string) string {
	if kind == fsm.TokenKindTemp {
		return "/v1/" + string(vault) + "/temp-bootstrap/" + token + "/register"
	}
	return "/v1/bootstrap/" + token + "/register"
}

// scriptPath is the route that serves the bootstrap script of a token.
func scriptPath(kind string, vault fsm.VaultID, token string) string {
	if kind == fsm.TokenKindTemp {
		return "/v1/" + string(vault) + "/temp-bootstrap/" + token
	}
	return "/v1/bootstrap/" + token
}

// wrongTokenRoute rejects a token sent to the registration route of
// another kind. The caller holds the token, so naming its kind reveals
// nothing new and points to the right route.
func wrongTokenRoute(routeKind, tokenKind string) error {
	route := map[string]string{
		fsm.TokenKindStandard:   "POST /v1/bootstrap/{token}/register (keyward register)",
		fsm.TokenKindTemp:       "POST /v1/{vaultId}/temp-bootstrap/{token}/register (keyward register --temp --vault VAULT_ID)",
		fsm.TokenKindEnrollment: "POST /v1/{vaultId}/enroll/register (keyward register --enroll --vault VAULT_ID)",
	}[tokenKind]
	if route == "" {
		return fail(ErrUnauthorized, "Invalid %s", fsm.TokenNoun(routeKind))
	}
	article := "a"
	if tokenKind == fsm.TokenKindEnrollment {
		article = "an"
	}
	return fail(ErrUnauthorized, "Invalid %s: this is %s %s; register with %s",
		fsm.TokenNoun(routeKind), article, fsm.TokenNoun(tokenKind), route)
}

// tokenNounTitle is fsm.TokenNoun with a capital first letter, to start a
// message.
func tokenNounTitle(kind string) string {
	noun := fsm.TokenNoun(kind)
	return strings.ToUpper(noun[:1]) + noun[1:]
}

// usableBootstrapToken looks up the route's token in the local state: 404
// when unknown, of another kind or of another vault; 410 when revoked, used
// or expired.
func (s *Server) usableBootstrapToken(rc *request, kind string) (*fsm.BootstrapToken, error) {
	token := rc.param("token")
	if !isBootstrapToken(token) {
		return nil, fail(ErrNotFound, "Bootstrap token not found; a token is 64 lower-case hex digits")
	}
	hash := hashToken(token)
	noun := tokenNounTitle(kind)
	bt, ok := s.sm.BootstrapTokenByHash(hash)
	if !ok || !hashesEqual(bt.Hash, hash) || bt.Kind != kind || !s.tokenInRouteVault(rc, bt) {
		return nil, fail(ErrNotFound, "%s not found", noun)
	}

	switch tokenStatus(bt, rc.now.UnixMilli()) {
	case tokenStatusRevoked:
		return nil, fail(ErrGone, "%s has been revoked; ask an operator for a new one", noun)
	case tokenStatusUsed:
		return nil, fail(ErrGone, "%s has already been used; ask an operator for a new one", noun)
	case tokenStatusExpired:
		return nil, fail(ErrGone, "%s expired at %s; ask an operator for a new one", noun, formatMs(bt.ExpiresAt))
	}
	return bt, nil
}

// tokenInRouteVault reports whether a temp route's {vaultId} names the
// token's vault; standard routes carry no vault.
func (s *Server) tokenInRouteVault(rc *request, bt *fsm.BootstrapToken) bool {
	vault := rc.param("vaultId")
	return vault == "" || vault == string(bt.VaultID)
}

// register returns the handler of POST …/{token}/register for kind. The
// request is checked here (body, key, token form) and the token is then
// consumed by a Raft command. Of two nodes that receive the same token at
// once, exactly one registers a machine and the other responds 401.
func (s *Server) register(kind string) func(*request) error {
	return func(rc *request) error {
		in, key, err := s.readRegisterRequest(rc)
		if err != nil {
			return err
		}
		token := rc.param("token")
		if !isBootstrapToken(token) {
			return fail(ErrUnauthorized, "Invalid bootstrap token")
		}
		hash := hashToken(token)
		// A token known locally must match the route. One not known yet may
		// still exist on the leader, so the command decides.
		if bt, ok := s.sm.BootstrapTokenByHash(hash); ok && (bt.Kind != kind || !s.tokenInRouteVault(rc, bt)) {
			if bt.Kind != kind {
				return wrongTokenRoute(kind, bt.Kind)
			}
			return fail(ErrUnauthorized, "Invalid %s", fsm.TokenNoun(kind))
		}
		vaultID := rc.param("vaultId")
		if vaultID != "" && !isVaultID(vaultID) {
			return fail(ErrNotFound, "Vault %s not found", clip(vaultID))
		}
		apiURL, err := s.apiURL(rc)
		if err != nil {
			return err
		}

		m, err := s.proposeRegistration(rc, registration{
			kind: kind, tokenHash: hash, vault: fsm.VaultID(vaultID), key: key, hostname: in.Hostname,
		})
		if err != nil {
			return err
		}
		return writeCreated(rc, registerResponse{
			MachineID: string(m.ID), MachineName: m.Name, VaultID: string(m.VaultID),
			APIURL: apiURL, ExpiresAt: m.ExpiresAt,
		})
	}
}

func (s *Server) readRegisterRequest(rc *request) (registerRequest, *guard.PublicKey, error) {
	var in registerRequest
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return in, nil, err
	}
	key, err := parseRegisterKey(in.PublicKey)
	if err != nil {
		return in, nil, err
	}
	if err := checkName("hostname", in.Hostname, maxHostnameLength); err != nil {
		return in, nil, err
	}
	return in, key, nil
}

// parseRegisterKey decodes the publicKey field of a registration: the
// standard base64 of a raw 32-byte Ed25519 key.
func parseRegisterKey(text string) (*guard.PublicKey, error) {
	if text == "" {
		return nil, fail(ErrBadRequest, "publicKey is required: the standard base64 of the raw 32-byte Ed25519 public key")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil {
		return nil, fail(guard.ErrInvalidPublicKey, "publicKey is not standard base64; send the raw 32-byte Ed25519 public key in standard base64")
	}
	key, err := guard.ParsePublicKey(raw)
	if err != nil {
		return nil, fail(guard.ErrInvalidPublicKey, "publicKey is not a usable Ed25519 key: %s", clientMessage(err, 0))
	}
	return key, nil
}

// registration is one request to register a machine with a token.
type registration struct {
	kind      string
	tokenHash string
	// vault is the route's vault; empty on the standard route, whose
	// token alone names the vault.
	vault    fsm.VaultID
	key      *guard.PublicKey
	hostname string
	// name is the machine name asked for; a temporary machine takes the
	// name fixed when its token was issued instead.
	name string
}

// proposeRegistration consumes one use of the token and creates the
// machine: pending for standard and temp tokens, active for enrollment
// tokens. A standard machine is named after its host, and a temporary one
// takes the name chosen when its token was issued. An enrolled machine
// takes the name in its request, or else its host name.
func (s *Server) proposeRegistration(rc *request, r registration) (*fsm.Machine, error) {
	machineID := newMachineID()
	payload := fsm.RegisterMachinePayload{
		TokenHash: r.tokenHash,
		VaultID:   r.vault,
		MachineID: machineID,
		PublicKey: r.key.Bytes(),
		Hostname:  r.hostname,
	}
	switch r.kind {
	case fsm.TokenKindStandard:
		payload.Name = r.hostname
	case fsm.TokenKindEnrollment:
		payload.Name = r.name
	}
	hostname := r.hostname

	client, _ := s.clientAddress(rc)
	actor := fsm.Actor{Kind: actorMachine, ID: string(machineID), SourceIP: addrText(client)}
	resp, err := s.propose(rc, proposal{typ: fsm.CmdRegisterMachine, actor: actor, payload: payload, fresh: true})
	if err != nil {
		return nil, err
	}
	var m fsm.Machine
	if err := decodeResponse(resp, &m); err != nil {
		return nil, err
	}

	action := ActionMachineRegister
	if m.Kind == fsm.KindTemp {
		action = ActionTempMachineCreate
	}
	ev := s.machineEvent(rc, action, severityMedium, &m)
	ev.Fields = map[string]any{"hostname": hostname, "kind": m.Kind, "status": m.Status}
	if m.ExpiresAt != 0 {
		ev.Fields["expiresAt"] = m.ExpiresAt
	}
	s.audit(ev)
	return &m, nil
}

// apiURL returns the base URL that machines should use: Config.APIURL, or
// else the origin that served this request. The Host header is checked
// because its value is pasted into a script: only letters, digits, '.',
// '-', ':' and IPv6 brackets pass. The scheme is https when the connection
// is TLS, or when a trusted proxy sent X-Forwarded-Proto: https.
func (s *Server) apiURL(rc *request) (string, error) {
	if s.cfg.APIURL != "" {
		return strings.TrimRight(s.cfg.APIURL, "/"), nil
	}
	host := rc.ctx.Request.Header.Host()
	if !validHost(host) {
		return "", fail(ErrBadRequest, "Host header %q is not a valid host[:port]; set --api-url on the server to avoid depending on it", clip(string(host)))
	}

	scheme := "http"
	_, proxy := s.clientAddress(rc)
	if rc.ctx.IsTLS() {
		scheme = "https"
	} else if proxy.IsValid() && bytes.EqualFold(rc.ctx.Request.Header.Peek(fasthttp.HeaderXForwardedProto), []byte("https")) {
		scheme = "https"
	}
	return scheme + "://" + string(host), nil
}

// validHost accepts 1 to 255 characters of [A-Za-z0-9.:-[]].
func validHost(host []byte) bool {
	if len(host) == 0 || len(host) > 255 {
		return false
	}
	for _, c := range host {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '-' || c == ':' || c == '[' || c == ']'
		if !ok {
			return false
		}
	}
	return true
}
