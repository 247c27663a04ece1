package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/keyward/keyward/guard"
	"github.com/keyward/keyward/httpapi/client"
)

const (
	// setupWorkers is the number of admin calls in flight while the bench
	// creates its objects. Writes are serialised by the Raft leader, so
	// more only queue there.
	setupWorkers = 32
	// readyTimeout bounds the wait for every target to serve a read of
	// the objects just created (replication to followers).
	readyTimeout = 30 * time.Second
	// blockedCIDR is the only address range the flood scenario's machine
	// may read from: a documentation range (RFC 5737) that the bench's
	// loopback requests never come from, so each is blocked.
	blockedCIDR = "192.0.2.0/24"
)

// fixture is the set of objects a scenario created on the target.
type fixture struct {
	vaultID   string
	projectID string
	// secretID is the secret every bench machine may read.
	secretID string
	// readers are the machines registered to read it.
	readers *readSet
}

// Setup describes what the bench created before measuring.
type Setup struct {
	VaultID  string  `json:"vaultId"`
	Machines int     `json:"machines"`
	Seconds  float64 `json:"seconds"`
}

// createBase creates a vault, a project and the secret the machines read.
func (r *runner) createBase(ctx context.Context) (*fixture, error) {
	// Vault names are unique, so the name carries nanoseconds for runs that
	// start within one second.
	name := "keyward-bench-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	vault, err := r.admin.CreateVault(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	project, err := r.admin.CreateProject(ctx, vault.ID, "bench")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	secret, err := r.admin.CreateSecret(ctx, vault.ID, project.ID, "bench-read",
		client.SecretValue{Value: "a value of typical size for a database password"})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	return &fixture{vaultID: vault.ID, projectID: project.ID, secretID: secret.ID}, nil
}

// registerMachines registers n machines the way an operator would: a
// bootstrap token each, registration with a key generated here, then
// approve, attach the project and grant the read secret.
func (r *runner) registerMachines(ctx context.Context, fx *fixture, n int) ([]machineKey, error) {
	machines := make([]machineKey, n)
	p := r.progress("setup machines", 0, int64(n))
	err := forEach(ctx, n, setupWorkers, p, func(ctx context.Context, i int) error {
		token, err := r.admin.CreateBootstrapToken(ctx, fx.vaultID)
		if err != nil {
			return err
		}
		m, err := r.register(ctx, registerPath(token.Token, ""), fmt.Sprintf("bench-%06d", i))
		if err != nil {
			return err
		}
		machines[i] = m
		return r.activate(ctx, fx, m.id)
	})
	p.finish()
	if err != nil {
		return nil, fmt.Errorf("%w: register machines: %v", ErrSetup, err)
	}
	return machines, nil
}

// registerBlockedMachine registers a temporary machine whose IP guardrail
// admits only blockedCIDR, and grants it the read secret: every read it
// signs from this host is blocked by the guardrail and audited.
func (r *runner) registerBlockedMachine(ctx context.Context, fx *fixture) (machineKey, error) {
	token, err := r.admin.IssueTempToken(ctx, fx.vaultID, client.TempTokenRequest{
		Name:       "bench-blocked",
		Purpose:    "bench: blocked requests beside normal reads",
		Lifetime:   client.Lifetime{Hours: 2},
		Guardrails: &guard.Guardrails{IPAllowlist: &guard.IPAxis{CIDRs: []string{blockedCIDR}}},
	})
	if err != nil {
		return machineKey{}, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	m, err := r.register(ctx, registerPath(token.Token, fx.vaultID), "bench-blocked")
	if err != nil {
		return machineKey{}, fmt.Errorf("%w: register blocked machine: %v", ErrSetup, err)
	}
	if err := r.activate(ctx, fx, m.id); err != nil {
		return machineKey{}, fmt.Errorf("%w: activate blocked machine: %v", ErrSetup, err)
	}
	return m, nil
}

// registerPath returns the registration route of a standard token, or of
// a temporary-machine token when vaultID is set.
func registerPath(token, vaultID string) string {
	if vaultID != "" {
		return "/v1/" + vaultID + "/temp-bootstrap/" + token + "/register"
	}
	return "/v1/bootstrap/" + token + "/register"
}

// register generates a key and registers it at path.
func (r *runner) register(ctx context.Context, path, hostname string) (machineKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return machineKey{}, err
	}
	in := map[string]string{"publicKey": base64.StdEncoding.EncodeToString(pub), "hostname": hostname}
	var out struct {
		MachineID string `json:"machineId"`
	}
	if err := r.unauthenticated.Do(ctx, http.MethodPost, path, in, &out); err != nil {
		return machineKey{}, fmt.Errorf("register %s: %w", hostname, err)
	}
	return machineKey{id: out.MachineID, key: priv}, nil
}

// activate approves a machine, attaches the project and grants the secret.
func (r *runner) activate(ctx context.Context, fx *fixture, machineID string) error {
	if _, err := r.admin.ApproveMachine(ctx, fx.vaultID, machineID); err != nil {
		return err
	}
	if _, err := r.admin.AttachProject(ctx, fx.vaultID, machineID, fx.projectID); err != nil {
		return err
	}
	_, err := r.admin.SetGrants(ctx, fx.vaultID, machineID, []string{fx.secretID})
	return err
}

// createWriteSecrets creates n secrets for admin writers, one per writer,
// so that concurrent updates never conflict on a version.
func (r *runner) createWriteSecrets(ctx context.Context, fx *fixture, n int) ([]string, error) {
	ids := make([]string, n)
	p := r.progress("setup secrets", 0, int64(n))
	err := forEach(ctx, n, setupWorkers, p, func(ctx context.Context, i int) error {
		s, err := r.admin.CreateSecret(ctx, fx.vaultID, fx.projectID, fmt.Sprintf("bench-write-%04d", i), client.SecretValue{Value: "v0"})
		if err != nil {
			return err
		}
		ids[i] = s.ID
		return nil
	})
	p.finish()
	if err != nil {
		return nil, fmt.Errorf("%w: create secrets: %v", ErrSetup, err)
	}
	return ids, nil
}

// waitReadable sends signed reads of the set's first machine to every
// target until each returns want, so that load starts only after
// followers have applied the setup.
func waitReadable(ctx context.Context, set *readSet, targets []*target, want int) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	first := newSigner(set.signer.path, set.signer.machines[:1])
	for _, t := range targets {
		probe := newSignedReads(first, nil, []*target{t}, 1)
		for {
			status, err := probe.send(0, 0)
			if err == nil && status == want {
				break
			}
			if sleepErr := sleepCtx(ctx, 100*time.Millisecond); sleepErr != nil {
				return fmt.Errorf("%w: %s did not return %d to a signed read within %s (last: status %d, error %v)",
					ErrSetup, t.url, want, readyTimeout, status, err)
			}
		}
	}
	return nil
}

// forEach calls fn for 0..n-1 on workers goroutines and returns the first
// error, after which no new call starts.
func forEach(ctx context.Context, n, workers int, p *progress, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				err := fn(ctx, i)
				p.add(err == nil)
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	// Only the parent can have cancelled ctx here: the deferred cancel has
	// not run and no call failed.
	return ctx.Err()
}
