package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"
)

// runRegister measures registration: --machines bootstrap tokens are
// issued and keys generated first, then the registrations themselves are
// timed, --connections at a time.
func (r *runner) runRegister(ctx context.Context) error {
	start := time.Now()
	fx, err := r.createBase(ctx)
	if err != nil {
		return err
	}
	n := r.cfg.Machines
	tokens, err := r.issueTokens(ctx, fx, n)
	if err != nil {
		return err
	}
	bodies, err := registrationBodies(n)
	if err != nil {
		return err
	}
	r.report.Setup = &Setup{VaultID: fx.vaultID, Seconds: time.Since(start).Seconds()}

	conns := min(r.cfg.Connections, n)
	targets, err := r.targets(1, conns)
	if err != nil {
		return err
	}
	reg := &registrations{target: targets[0], tokens: tokens, bodies: bodies, resps: make([]fasthttp.Response, conns)}
	run, err := r.load(ctx, loadSpec{name: "register", connections: conns, limit: int64(n), send: reg.send})
	run.Nodes = 1
	r.report.Runs = append(r.report.Runs, run)
	if err != nil {
		return err
	}
	r.report.Register = &RegisterResult{Machines: n, RegistrationsPerSecond: run.PerSecond, Latency: run.Latency}
	return nil
}

// issueTokens creates n single-use bootstrap tokens.
func (r *runner) issueTokens(ctx context.Context, fx *fixture, n int) ([]string, error) {
	tokens := make([]string, n)
	p := r.progress("setup tokens", 0, int64(n))
	err := forEach(ctx, n, setupWorkers, p, func(ctx context.Context, i int) error {
		t, err := r.admin.CreateBootstrapToken(ctx, fx.vaultID)
		if err != nil {
			return err
		}
		tokens[i] = t.Token
		return nil
	})
	p.finish()
	if err != nil {
		return nil, fmt.Errorf("%w: issue bootstrap tokens: %v", ErrSetup, err)
	}
	return tokens, nil
}

// registrationBodies returns n registration request bodies, each with a
// new public key. The private keys are not kept: the scenario measures
// registration only.
func registrationBodies(n int) ([][]byte, error) {
	bodies := make([][]byte, n)
	for i := range bodies {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		bodies[i] = fmt.Appendf(nil, `{"publicKey":%q,"hostname":"bench-reg-%06d"}`, base64.StdEncoding.EncodeToString(pub), i)
	}
	return bodies, nil
}

// registrations sends POST /v1/bootstrap/{token}/register, request seq
// using token seq and body seq.
type registrations struct {
	target *target
	tokens []string
	bodies [][]byte
	resps  []fasthttp.Response
}

func (g *registrations) send(worker int, seq int64) (int, error) {
	req := g.target.newRequest(fasthttp.MethodPost, registerPath(g.tokens[seq], ""))
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(g.bodies[seq])
	resp := &g.resps[worker]
	if err := g.target.hc.Do(req, resp); err != nil {
		return 0, err
	}
	return resp.StatusCode(), nil
}
