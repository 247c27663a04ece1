package faulttest

import (
	"context"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/keyward/keyward/fsm"
)

// initialValue is the first value of every secret the workload updates.
const initialValue = "initial"

// workload runs concurrent clients against every node and records what
// they saw: secret updates for the linearizability check, secret creations
// for the durability check, and signed reads.
type workload struct {
	c       *testCluster
	f       fixture
	secrets []secretRef // updated by the writers, all starting as initialValue
	reader  machine     // granted every secret in secrets
	hist    *history
	reads   probeLog

	mu sync.Mutex
	// failures are responses that no fault may cause, such as a 500 or a 404.
	failures []string
	// created are the ids of secrets whose creation was acknowledged.
	created []string
	counts  map[string]int
}

// newWorkload creates n secrets to update and a machine that may read them.
func newWorkload(c *testCluster, leader *node, f fixture, n int) *workload {
	c.t.Helper()
	w := &workload{c: c, f: f, hist: newHistory(), counts: map[string]int{}}
	var ids []string
	for i := range n {
		s := c.createSecret(leader, f, fmt.Sprintf("register-%d", i), initialValue)
		if len(w.secrets) > 0 && s.version != w.secrets[0].version {
			c.t.Fatalf("new secrets start at versions %d and %d; the model needs one initial version",
				w.secrets[0].version, s.version)
		}
		w.secrets = append(w.secrets, s)
		ids = append(ids, s.id)
	}
	w.reader = c.registerMachine(leader, f, "reader", ids...)
	for _, s := range w.secrets {
		c.waitRead(w.reader, s.id, initialValue)
	}
	return w
}

// run starts the clients and returns a function that stops them and waits
// until every request in flight has returned; calling it again does
// nothing. Writers: two per node. Readers: one per node. Creator: one,
// round robin over the nodes.
func (w *workload) run() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := 0
	for _, n := range w.c.nodes {
		for range 2 {
			wg.Add(1)
			go w.write(ctx, &wg, client, n)
			client++
		}
		wg.Add(1)
		go w.read(ctx, &wg, n)
	}
	wg.Add(1)
	go w.create(ctx, &wg)
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
}

// write updates random secrets through n with unique values until ctx
// ends. Requests in flight are not cancelled by ctx, so that stopping the
// workload adds no unknown outcomes.
func (w *workload) write(ctx context.Context, wg *sync.WaitGroup, client int, n *node) {
	defer wg.Done()
	for seq := 0; ctx.Err() == nil; seq++ {
		secret := w.secrets[mathrand.IntN(len(w.secrets))]
		in := registerInput{secretID: secret.id, write: true, value: fmt.Sprintf("c%d-%d", client, seq)}
		reqCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		call := w.hist.now()
		status, body, err := w.c.admin(reqCtx, n, http.MethodPut, w.f.secretPath(secret.id), map[string]any{"value": in.value})
		ret := w.hist.now()
		cancel()

		out, sent := w.classifyWrite(n, status, body, err)
		if sent {
			w.hist.add(client, in, out, call, ret)
		}
		pause := time.Duration(10+mathrand.IntN(20)) * time.Millisecond
		if !sent || out.outcome == outcomeUnknown {
			// The node is down or has no leader: do not spin.
			pause = 100 * time.Millisecond
		}
		sleepCtx(ctx, pause)
	}
}

// classifyWrite turns an update's response into an outcome. sent is false
// when the connection was refused, so the write certainly did not happen
// and is left out of the history.
func (w *workload) classifyWrite(n *node, status int, body []byte, err error) (out registerOutput, sent bool) {
	switch {
	case err != nil && refused(err):
		w.count("write refused connection")
		return out, false
	case err != nil:
		w.count("write no response")
		return registerOutput{outcome: outcomeUnknown}, true
	case status == http.StatusOK:
		var s struct {
			Version int `json:"version"`
		}
		if err := decode(body, &s); err != nil || s.Version == 0 {
			w.fail("update on %s: 200 without a version: %s", n.name, clip(body))
			return registerOutput{outcome: outcomeUnknown}, true
		}
		w.count("write ok")
		return registerOutput{outcome: outcomeOK, version: s.Version}, true
	case status == http.StatusConflict:
		w.count("write conflict")
		return registerOutput{outcome: outcomeConflict}, true
	case status == http.StatusServiceUnavailable || status == http.StatusBadGateway || status == http.StatusGatewayTimeout:
		w.count(fmt.Sprintf("write %d", status))
		return registerOutput{outcome: outcomeUnknown}, true
	default:
		w.fail("update on %s: status %d %s", n.name, status, clip(body))
		return registerOutput{outcome: outcomeUnknown}, true
	}
}

// read sends signed reads of random secrets to n until ctx ends.
func (w *workload) read(ctx context.Context, wg *sync.WaitGroup, n *node) {
	defer wg.Done()
	for ctx.Err() == nil {
		secret := w.secrets[mathrand.IntN(len(w.secrets))]
		p := readProbe(n, "reader", w.reader, secret.id)
		w.reads.add(p)
		sleepCtx(ctx, 10*time.Millisecond)
	}
}

// create creates secrets through each node in turn until ctx ends and
// records the ids whose creation was acknowledged.
func (w *workload) create(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; ctx.Err() == nil; i++ {
		n := w.c.nodes[i%len(w.c.nodes)]
		reqCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		status, body, err := w.c.admin(reqCtx, n, http.MethodPost, w.f.secretsPath(),
			map[string]any{"name": fmt.Sprintf("created-%d", i), "value": fmt.Sprintf("created value %d", i)})
		cancel()
		switch {
		case err != nil:
			w.count("create no response")
		case status == http.StatusCreated:
			var s struct {
				ID string `json:"id"`
			}
			if err := decode(body, &s); err != nil || s.ID == "" {
				w.fail("create on %s: 201 without an id: %s", n.name, clip(body))
				break
			}
			w.mu.Lock()
			w.created = append(w.created, s.ID)
			w.mu.Unlock()
		case status == http.StatusServiceUnavailable || status == http.StatusBadGateway || status == http.StatusGatewayTimeout:
			w.count(fmt.Sprintf("create %d", status))
		default:
			w.fail("create on %s: status %d %s", n.name, status, clip(body))
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

func (w *workload) count(what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counts[what]++
}

func (w *workload) fail(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failures = append(w.failures, fmt.Sprintf(format, args...))
}

// reportFailures fails the test with the responses that no fault may cause.
func (w *workload) reportFailures(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	const shown = 20
	for i, f := range w.failures {
		if i == shown {
			t.Errorf("… and %d more unexpected responses", len(w.failures)-shown)
			break
		}
		t.Errorf("unexpected response: %s", f)
	}
	t.Logf("write and create outcomes: %v", w.counts)
}

// checkReads checks every signed read. A 200 carries the initial value or
// one written by an update called before the read returned. No node
// returns an older version of a secret after a newer one. Any other
// response is a 503, or there is none. It returns the probes per node for
// further checks.
func (w *workload) checkReads(t *testing.T) map[*node][]probe {
	t.Helper()
	calls := map[string]int64{} // value -> call time of the update that wrote it
	versions := map[string]int{}
	for _, op := range w.hist.operations() {
		in := op.Input.(registerInput)
		calls[in.value] = op.Call
		if out := op.Output.(registerOutput); out.outcome == outcomeOK {
			versions[in.value] = out.version
		}
	}
	versions[initialValue] = w.secrets[0].version

	byNode := map[*node][]probe{}
	bad := 0
	for _, n := range w.c.nodes {
		newest := map[string]probe{} // secret id -> read of the newest version seen on n
		byNode[n] = w.reads.matching(n, "reader")
		for _, p := range byNode[n] {
			msg := w.checkRead(p, calls, versions, newest)
			if msg == "" {
				continue
			}
			if bad < 20 {
				t.Errorf("read of %s on %s sent at %s: %s", p.secretID, n.name, p.sent.Format("15:04:05.000"), msg)
			}
			bad++
		}
	}
	if bad > 20 {
		t.Errorf("… %d bad reads in all", bad)
	}
	return byNode
}

func (w *workload) checkRead(p probe, calls map[string]int64, versions map[string]int, newest map[string]probe) string {
	if p.unavailable() {
		return ""
	}
	if p.status != http.StatusOK {
		return fmt.Sprintf("status %d; a read may only succeed or be unavailable (503)", p.status)
	}
	if p.value != initialValue {
		call, ok := calls[p.value]
		if !ok {
			return fmt.Sprintf("value %q was never written", p.value)
		}
		if returned := int64(p.done.Sub(w.hist.start)); call > returned {
			return fmt.Sprintf("value %q was read before the update that wrote it was called", p.value)
		}
	}
	version, known := versions[p.value]
	if !known {
		return ""
	}
	if prev, seen := newest[p.secretID]; seen && version < versions[prev.value] {
		return fmt.Sprintf("value %q (version %d) after value %q (version %d) read at %s on the same node; writes: %s; %s",
			p.value, version, prev.value, versions[prev.value], prev.sent.Format("15:04:05.000"),
			w.describeWrite(p.value), w.describeWrite(prev.value))
	}
	newest[p.secretID] = p
	return ""
}

// describeWrite names the update that wrote value, for error messages.
func (w *workload) describeWrite(value string) string {
	for _, op := range w.hist.operations() {
		in := op.Input.(registerInput)
		if in.value != value {
			continue
		}
		out := op.Output.(registerOutput)
		ret := "never"
		if op.Return != neverReturned {
			ret = w.hist.start.Add(time.Duration(op.Return)).Format("15:04:05.000")
		}
		return fmt.Sprintf("client %d wrote %q: %s v%d, called %s, returned %s", op.ClientId, value, out.outcome, out.version,
			w.hist.start.Add(time.Duration(op.Call)).Format("15:04:05.000"), ret)
	}
	return fmt.Sprintf("no update wrote %q", value)
}

// longestOutage returns the longest time between two successful reads in
// probes, counted from since, and the number of successful reads after since.
func longestOutage(probes []probe, since, until time.Time) (time.Duration, int) {
	last := since
	var longest time.Duration
	served := 0
	for _, p := range probes {
		if p.sent.Before(since) || p.sent.After(until) || p.status != http.StatusOK {
			continue
		}
		served++
		if gap := p.done.Sub(last); gap > longest {
			longest = gap
		}
		last = p.done
	}
	if gap := until.Sub(last); gap > longest {
		longest = gap
	}
	return longest, served
}

// checkFinalState waits until the nodes converge, then reads every secret
// on every node and adds each read to the history as an operation after
// all others. It checks that every acknowledged update's version and every
// acknowledged creation is present on every node.
func (w *workload) checkFinalState(t *testing.T) {
	t.Helper()
	w.c.waitLeader(w.c.nodes...)
	w.c.waitConverged()

	acked := map[string]map[int]bool{} // secret -> acknowledged versions
	for _, op := range w.hist.operations() {
		in := op.Input.(registerInput)
		if out := op.Output.(registerOutput); out.outcome == outcomeOK {
			if acked[in.secretID] == nil {
				acked[in.secretID] = map[int]bool{}
			}
			acked[in.secretID][out.version] = true
		}
	}

	readers := len(w.c.nodes) * 2
	for i, n := range w.c.nodes {
		for _, s := range w.secrets {
			call := w.hist.now()
			version, present := w.versionsOn(t, n, s.id)
			status, value, err := readSecret(context.Background(), n, w.reader, s.id)
			if err != nil || status != http.StatusOK {
				t.Fatalf("final read of %s on %s: status %d %v", s.id, n.name, status, err)
			}
			w.hist.add(readers+i, registerInput{secretID: s.id},
				registerOutput{outcome: outcomeOK, version: version, value: value}, call, w.hist.now())
			for v := range acked[s.id] {
				// Only the last fsm.MaxSecretVersions versions are kept. An
				// older acknowledged version is proven applied by the
				// current version, because each update names the version
				// it replaces.
				switch {
				case v > version:
					t.Errorf("%s is at version %d of %s, before the acknowledged version %d", n.name, version, s.id, v)
				case v > version-fsm.MaxSecretVersions && !present[v]:
					t.Errorf("%s lacks acknowledged version %d of %s", n.name, v, s.id)
				}
			}
		}
		w.mu.Lock()
		created := append([]string(nil), w.created...)
		w.mu.Unlock()
		for _, id := range created {
			status, body, err := w.c.admin(context.Background(), n, http.MethodGet, w.f.secretPath(id), nil)
			if err != nil || status != http.StatusOK {
				t.Errorf("%s lacks secret %s whose creation was acknowledged: status %d %s %v", n.name, id, status, clip(body), err)
			}
		}
	}
	t.Logf("%d acknowledged creations present on every node", len(w.created))
}

// versionsOn returns the current version of a secret on n and the set of
// versions in its history.
func (w *workload) versionsOn(t *testing.T, n *node, secretID string) (int, map[int]bool) {
	t.Helper()
	var current struct {
		Version int `json:"version"`
	}
	w.c.mustAdmin(n, http.StatusOK, http.MethodGet, w.f.secretPath(secretID), nil, &current)
	var list struct {
		Versions []struct {
			Version int `json:"version"`
		} `json:"versions"`
	}
	w.c.mustAdmin(n, http.StatusOK, http.MethodGet, w.f.secretPath(secretID)+"/versions", nil, &list)
	present := map[int]bool{}
	for _, v := range list.Versions {
		present[v.Version] = true
	}
	return current.Version, present
}

// checkLinearizable runs porcupine over the recorded history. On a
// violation it writes the visualization to a file and names it.
func (w *workload) checkLinearizable(t *testing.T) {
	t.Helper()
	ops, pruned := pruneUnappliedWrites(w.hist.operations(), w.secrets[0].version)
	model := secretRegisterModel(registerState{version: w.secrets[0].version, value: initialValue})
	start := time.Now()
	result, info := porcupine.CheckOperationsVerbose(model, ops, checkerTimeout)
	t.Logf("porcupine checked %d operations (%d unknown writes pruned) in %s: %s",
		len(ops), pruned, time.Since(start).Round(time.Millisecond), result)
	if result == porcupine.Ok {
		return
	}
	path := filepath.Join(os.TempDir(), w.c.runID+"-history.html")
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		t.Errorf("write the history visualization: %v", err)
	}
	if result == porcupine.Illegal {
		t.Errorf("the history of secret updates is not linearizable; visualization in %s", path)
		return
	}
	t.Errorf("porcupine did not decide within %s (%s); visualization in %s", checkerTimeout, result, path)
}

// checkerTimeout bounds the linearizability check.
const checkerTimeout = 90 * time.Second

// pruneUnappliedWrites removes the writes with an unknown outcome on every
// secret where none of them can have taken effect, and returns the
// remaining operations and the number removed. Each applied update raises
// a secret's version by exactly one, so when the final version read back
// equals the initial version plus the acknowledged updates, every unknown
// update on that secret failed. Pruning them keeps the check fast: an
// operation that never returns is concurrent with everything after its
// call, which the checker must try at every point. Pruning hides no
// violation: a linearization of the pruned history, followed by the pruned
// writes, is one of the full history.
func pruneUnappliedWrites(ops []porcupine.Operation, initialVersion int) ([]porcupine.Operation, int) {
	acked := map[string]int{}
	final := map[string]int{}
	for _, op := range ops {
		in := op.Input.(registerInput)
		out := op.Output.(registerOutput)
		switch {
		case !in.write:
			final[in.secretID] = max(final[in.secretID], out.version)
		case out.outcome == outcomeOK:
			acked[in.secretID]++
		}
	}
	kept := make([]porcupine.Operation, 0, len(ops))
	pruned := 0
	for _, op := range ops {
		in := op.Input.(registerInput)
		out := op.Output.(registerOutput)
		noneApplied := final[in.secretID] == initialVersion+acked[in.secretID]
		if in.write && out.outcome == outcomeUnknown && noneApplied {
			pruned++
			continue
		}
		kept = append(kept, op)
	}
	return kept, pruned
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
