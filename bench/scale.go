package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/fsm/seal"
)

const (
	// scaleBatchMachines is the number of machines whose commands are
	// encoded and applied together.
	scaleBatchMachines = 512
	// scaleApplyBatch is the number of log entries per ApplyBatch call. It
	// is Keyward's default raft-max-append-entries, so the FSM applies
	// batches of the size a follower receives under load.
	scaleApplyBatch = 256
	// scaleEnrollmentUses is the number of machines that enroll with each
	// enrollment token of the enrollment setup: the most one token allows.
	scaleEnrollmentUses = fsm.MaxEnrollmentUses
	// Fixed identifiers of the scale state. Each state lives in its own
	// folder, so they never meet.
	scaleVault   fsm.VaultID   = "vault_benchscale000001"
	scaleProject fsm.ProjectID = "proj_benchscale"
	scaleSecret  fsm.SecretID  = "sk_benchscale"
)

// Scale setups: how the scale scenario registers its machines.
const (
	// ScaleSetupStandard gives each machine a standard bootstrap token, the
	// registration, approval, a project attachment and a grant: five log
	// entries per machine.
	ScaleSetupStandard = "standard"
	// ScaleSetupEnrollment enrolls machines with enrollment tokens of
	// scaleEnrollmentUses uses each, which make every machine active with
	// the project and the grant at registration: one log entry per machine
	// and one per token.
	ScaleSetupEnrollment = "enrollment"
)

// ScaleResult is the scale scenario's result, one point per state size.
type ScaleResult struct {
	// Setup is ScaleSetupStandard or ScaleSetupEnrollment.
	Setup string       `json:"setup"`
	Sizes []ScalePoint `json:"sizes"`
	// RatioReopenLargestToSmallest is the re-open time of the largest
	// state divided by that of the smallest.
	RatioReopenLargestToSmallest float64 `json:"ratioReopenLargestToSmallest,omitempty"`
}

// ScalePoint describes a state of Machines active machines, each attached
// to one project and granted one secret, built with the result's Setup.
type ScalePoint struct {
	Machines              int     `json:"machines"`
	Entries               int     `json:"entries"`
	BuildSeconds          float64 `json:"buildSeconds"`
	ApplyEntriesPerSecond float64 `json:"applyEntriesPerSecond"`
	// HeapInUseBytes is the Go heap in use after garbage collection with
	// the state open, minus the same figure before it was opened, and
	// BytesPerMachine is that divided by Machines. Pebble v2 allocates
	// its block cache and memtables with C malloc in cgo builds, outside
	// the Go heap, so ResidentBytes is the measure that includes them.
	HeapInUseBytes  int64   `json:"heapInUseBytes"`
	BytesPerMachine float64 `json:"bytesPerMachine"`
	// ReopenBytesPerMachine is the same measure after the store was
	// closed and opened again, as after a restart.
	ReopenBytesPerMachine float64 `json:"reopenBytesPerMachine"`
	// ResidentBytes is the process's resident set size (VmRSS) with the
	// state open, after the freed heap was returned to the operating
	// system: the Go heap, Pebble's memory outside it, and the runtime.
	ResidentBytes int64 `json:"residentBytes,omitempty"`
	SnapshotBytes int64 `json:"snapshotBytes"`
	// SnapshotSeconds is the time to stream the snapshot to a file.
	SnapshotSeconds float64 `json:"snapshotSeconds"`
	// RestoreSeconds is the time to restore the snapshot into an empty
	// store.
	RestoreSeconds         float64 `json:"restoreSeconds"`
	RatioRestoreToSnapshot float64 `json:"ratioRestoreToSnapshot"`
	// ReopenSeconds is the time to open the store and load its indexes,
	// the state-dependent part of a restart.
	ReopenSeconds float64 `json:"reopenSeconds"`
}

// runScale builds each state size in-process and measures it.
func (r *runner) runScale(ctx context.Context) error {
	res := &ScaleResult{Setup: r.cfg.ScaleSetup}
	r.report.Scale = res
	for _, n := range r.cfg.ScaleMachines {
		if err := ctx.Err(); err != nil {
			return err
		}
		pt, err := r.measureScale(n)
		if err != nil {
			return fmt.Errorf("scale %d machines: %w", n, err)
		}
		res.Sizes = append(res.Sizes, pt)
	}
	first, last := res.Sizes[0], res.Sizes[len(res.Sizes)-1]
	if len(res.Sizes) > 1 && first.ReopenSeconds > 0 {
		res.RatioReopenLargestToSmallest = last.ReopenSeconds / first.ReopenSeconds
	}
	return r.writePlots()
}

func (r *runner) measureScale(n int) (ScalePoint, error) {
	dir, err := os.MkdirTemp(r.workDir(), "keyward-bench-scale-")
	if err != nil {
		return ScalePoint{}, err
	}
	defer os.RemoveAll(dir)

	s := &scaleState{n: n, dir: dir, setup: r.cfg.ScaleSetup, point: ScalePoint{Machines: n}}
	build := r.progress(fmt.Sprintf("scale %d: build", n), 0, int64(n))
	s.progress = build
	err = s.build()
	build.finish()
	if err != nil {
		s.closeLive()
		return ScalePoint{}, err
	}

	steps := []struct {
		name string
		run  func() error
	}{{"snapshot", s.snapshot}, {"re-open", s.reopen}, {"restore", s.restore}}
	for _, step := range steps {
		p := r.progress(fmt.Sprintf("scale %d: %s", n, step.name), 0, -1)
		err := step.run()
		p.finish()
		if err != nil {
			s.closeLive()
			return ScalePoint{}, fmt.Errorf("%s: %w", step.name, err)
		}
	}
	return s.point, nil
}

// scaleState is one state being built and measured.
type scaleState struct {
	n        int
	dir      string
	setup    string
	keyring  *seal.Keyring
	live     *fsm.FSM
	baseline int64
	point    ScalePoint
	// progress counts the machines applied.
	progress *progress
	// proposer state: the next log index and the command time.
	index uint64
	now   int64
}

func (s *scaleState) liveDir() string      { return filepath.Join(s.dir, "live") }
func (s *scaleState) restoreDir() string   { return filepath.Join(s.dir, "restored") }
func (s *scaleState) snapshotPath() string { return filepath.Join(s.dir, "snapshot") }

func (s *scaleState) closeLive() {
	if s.live != nil {
		s.live.Close()
		s.live = nil
	}
}

// build opens a store and applies the commands of n machines.
func (s *scaleState) build() error {
	root := make([]byte, seal.KeySize)
	_, _ = rand.Read(root)
	keyring, err := seal.NewKeyring(root)
	if err != nil {
		return err
	}
	s.keyring = keyring
	s.baseline = heapInUse()
	s.now = time.Now().UnixMilli()

	start := time.Now()
	if s.live, err = fsm.Open(fsm.Config{Dir: s.liveDir(), Keyring: keyring}, nil); err != nil {
		return err
	}
	if err := s.applyBase(); err != nil {
		return err
	}
	if err := s.applyAllMachines(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	s.point.Entries = int(s.index)
	s.point.BuildSeconds = elapsed.Seconds()
	s.point.ApplyEntriesPerSecond = float64(s.index) / elapsed.Seconds()

	s.point.HeapInUseBytes = heapInUse() - s.baseline
	s.point.BytesPerMachine = float64(s.point.HeapInUseBytes) / float64(s.n)
	s.point.ResidentBytes = residentBytes()
	return checkMachines(s.live, s.n, "after the build")
}

// checkMachines fails unless f holds n active machines, each attached to
// the scale project and granted the scale secret.
func checkMachines(f *fsm.FSM, n int, when string) error {
	machines := f.Machines(scaleVault)
	if len(machines) != n {
		return fmt.Errorf("%s the state has %d machines, expected %d", when, len(machines), n)
	}
	for _, e := range machines {
		m := e.Machine
		if m.Status != fsm.StatusActive || !slices.Equal(m.Projects, []fsm.ProjectID{scaleProject}) ||
			!slices.Equal(m.Grants, []fsm.SecretID{scaleSecret}) {
			return fmt.Errorf("%s machine %s is %s with projects %v and grants %v, expected active with %s and %s",
				when, m.ID, m.Status, m.Projects, m.Grants, scaleProject, scaleSecret)
		}
	}
	return nil
}

// applyBase creates the vault, project and secret the machines use.
func (s *scaleState) applyBase() error {
	wrapped, err := s.keyring.NewProjectKey()
	if err != nil {
		return err
	}
	sealed, err := s.keyring.Seal(wrapped, string(scaleSecret), []byte("scale secret value"))
	if err != nil {
		return err
	}
	entries, err := s.entries(
		command{fsm.CmdCreateVault, fsm.CreateVaultPayload{ID: scaleVault, Name: "bench scale"}},
		command{fsm.CmdCreateProject, fsm.CreateProjectPayload{ID: scaleProject, VaultID: scaleVault, Name: "bench", WrappedKey: wrapped}},
		command{fsm.CmdCreateSecret, fsm.CreateSecretPayload{ID: scaleSecret, ProjectID: scaleProject, Name: "bench", Type: fsm.SecretTypeSecret, Sealed: sealed}},
	)
	if err != nil {
		return err
	}
	return s.apply(entries)
}

type command struct {
	typ     fsm.CommandType
	payload any
}

// entries encodes commands as the next log entries.
func (s *scaleState) entries(cmds ...command) ([]*raft.Log, error) {
	out := make([]*raft.Log, 0, len(cmds))
	actor := fsm.Actor{Kind: "user", ID: "bench", SourceIP: "127.0.0.1"}
	for _, c := range cmds {
		cmd, err := fsm.NewCommand(c.typ, s.now, actor, c.payload)
		if err != nil {
			return nil, err
		}
		cmd.Node = "bench"
		data, err := fsm.EncodeCommand(cmd)
		if err != nil {
			return nil, err
		}
		s.index++
		out = append(out, &raft.Log{Index: s.index, Term: 1, Type: raft.LogCommand, Data: data})
	}
	return out, nil
}

// apply applies entries in batches of scaleApplyBatch and fails on the
// first rejected command.
func (s *scaleState) apply(entries []*raft.Log) error {
	for len(entries) > 0 {
		batch := entries[:min(scaleApplyBatch, len(entries))]
		entries = entries[len(batch):]
		for i, res := range s.live.ApplyBatch(batch) {
			if resp, ok := res.(*fsm.Response); ok && resp.Code != "" {
				return fmt.Errorf("entry %d rejected: %s: %s", batch[i].Index, resp.Code, resp.Message)
			}
		}
	}
	return nil
}

// scaleChunk is the log entries of a run of machines, or the error that
// stopped their encoding.
type scaleChunk struct {
	entries  []*raft.Log
	machines int
	err      error
}

// applyAllMachines applies the entries of every machine. One goroutine
// generates keys and encodes the entries of the next machines while this
// one applies the current ones, as a leader encodes while its followers
// apply.
func (s *scaleState) applyAllMachines() error {
	chunks := make(chan scaleChunk, 2)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(chunks)
		for first := 0; first < s.n; first += scaleBatchMachines {
			last := min(first+scaleBatchMachines, s.n)
			entries, err := s.machineEntries(first, last)
			select {
			case chunks <- scaleChunk{entries: entries, machines: last - first, err: err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		if c.err != nil {
			return c.err
		}
		if err := s.apply(c.entries); err != nil {
			return err
		}
		if s.progress != nil {
			s.progress.done.Add(int64(c.machines))
		}
	}
	return nil
}

// machineEntries encodes the entries that set up machines first..last-1.
func (s *scaleState) machineEntries(first, last int) ([]*raft.Log, error) {
	keys := publicKeys(last - first)
	var cmds []command
	for i, key := range keys {
		n := first + i
		if s.setup == ScaleSetupEnrollment {
			cmds = append(cmds, s.enrollmentCommands(n, key)...)
		} else {
			cmds = append(cmds, s.standardCommands(n, key)...)
		}
	}
	return s.entries(cmds...)
}

func scaleMachineID(n int) fsm.MachineID {
	return fsm.MachineID(fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n))
}

// standardCommands registers machine n with its own standard token, then
// approves it, attaches the project and grants the secret.
func (s *scaleState) standardCommands(n int, key []byte) []command {
	id := scaleMachineID(n)
	token := tokenHash(fmt.Sprintf("bench-scale-token-%d", n))
	return []command{
		{fsm.CmdCreateBootstrapToken, fsm.CreateBootstrapTokenPayload{Token: fsm.BootstrapToken{
			ID: fmt.Sprintf("bt_%d", n), Hash: token, VaultID: scaleVault, Kind: fsm.TokenKindStandard,
			ExpiresAt: s.now + time.Hour.Milliseconds(), MaxUses: 1,
		}}},
		{fsm.CmdRegisterMachine, fsm.RegisterMachinePayload{
			TokenHash: token, VaultID: scaleVault, MachineID: id, PublicKey: key, Hostname: fmt.Sprintf("bench-%07d", n),
		}},
		{fsm.CmdSetMachineStatus, fsm.SetMachineStatusPayload{VaultID: scaleVault, MachineID: id, Action: fsm.ActionApprove}},
		{fsm.CmdAttachProject, fsm.MachineProjectPayload{VaultID: scaleVault, MachineID: id, ProjectID: scaleProject}},
		{fsm.CmdSetGrants, fsm.SetGrantsPayload{VaultID: scaleVault, MachineID: id, SecretIDs: []fsm.SecretID{scaleSecret}}},
	}
}

// enrollmentCommands enrolls machine n with the enrollment token of its
// group of scaleEnrollmentUses machines, creating the token first for the
// group's first machine.
func (s *scaleState) enrollmentCommands(n int, key []byte) []command {
	group := n / scaleEnrollmentUses
	token := tokenHash(fmt.Sprintf("bench-scale-enrollment-%d", group))
	var cmds []command
	if n%scaleEnrollmentUses == 0 {
		cmds = append(cmds, command{fsm.CmdCreateBootstrapToken, fsm.CreateBootstrapTokenPayload{Token: fsm.BootstrapToken{
			ID: fmt.Sprintf("et_%d", group), Hash: token, VaultID: scaleVault, Kind: fsm.TokenKindEnrollment,
			ExpiresAt: s.now + 24*time.Hour.Milliseconds(), MaxUses: scaleEnrollmentUses,
			Lifetime:   &fsm.Lifetime{Months: 1},
			ProjectIDs: []fsm.ProjectID{scaleProject}, SecretIDs: []fsm.SecretID{scaleSecret},
		}}})
	}
	return append(cmds, command{fsm.CmdRegisterMachine, fsm.RegisterMachinePayload{
		TokenHash: token, VaultID: scaleVault, MachineID: scaleMachineID(n), PublicKey: key, Hostname: fmt.Sprintf("bench-%07d", n),
	}})
}

// snapshot streams a snapshot of the live store to a file.
func (s *scaleState) snapshot() error {
	file, err := os.Create(s.snapshotPath())
	if err != nil {
		return err
	}
	start := time.Now()
	snap, err := s.live.Snapshot()
	if err != nil {
		file.Close()
		return err
	}
	defer snap.Release()
	if err := snap.Persist(&fileSink{File: file}); err != nil {
		return err
	}
	s.point.SnapshotSeconds = time.Since(start).Seconds()

	info, err := os.Stat(s.snapshotPath())
	if err != nil {
		return err
	}
	s.point.SnapshotBytes = info.Size()
	return nil
}

// reopen closes the live store and times opening it again.
func (s *scaleState) reopen() error {
	s.closeLive()
	start := time.Now()
	f, err := fsm.Open(fsm.Config{Dir: s.liveDir(), Keyring: s.keyring}, nil)
	if err != nil {
		return err
	}
	s.point.ReopenSeconds = time.Since(start).Seconds()
	s.live = f
	s.point.ReopenBytesPerMachine = float64(heapInUse()-s.baseline) / float64(s.n)
	s.closeLive()
	return nil
}

// restore times restoring the snapshot into an empty store.
func (s *scaleState) restore() error {
	f, err := fsm.Open(fsm.Config{Dir: s.restoreDir(), Keyring: s.keyring}, nil)
	if err != nil {
		return err
	}
	defer f.Close()
	file, err := os.Open(s.snapshotPath())
	if err != nil {
		return err
	}
	start := time.Now()
	if err := f.Restore(file); err != nil {
		return err
	}
	s.point.RestoreSeconds = time.Since(start).Seconds()
	if s.point.SnapshotSeconds > 0 {
		s.point.RatioRestoreToSnapshot = s.point.RestoreSeconds / s.point.SnapshotSeconds
	}
	return checkMachines(f, s.n, "after the restore")
}

// fileSink is a raft.SnapshotSink that writes to a file.
type fileSink struct{ *os.File }

func (s *fileSink) ID() string    { return "bench" }
func (s *fileSink) Cancel() error { return s.File.Close() }

var _ raft.SnapshotSink = (*fileSink)(nil)

// publicKeys returns n new Ed25519 public keys, generated on every core.
func publicKeys(n int) [][]byte {
	keys := make([][]byte, n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += workers {
				pub, _, _ := ed25519.GenerateKey(rand.Reader)
				keys[i] = pub
			}
		}()
	}
	wg.Wait()
	return keys
}

// tokenHash returns the stored form of a bootstrap token.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// heapInUse returns runtime.MemStats.HeapInuse after two collections, so
// that objects freed by finalizers in the first are gone too.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// residentBytes returns the VmRSS of this process on Linux, else zero. It
// first returns the heap that the garbage collector freed to the operating
// system, so that the figure is the memory in use rather than the peak of
// the build.
func residentBytes() int64 {
	debug.FreeOSMemory()
	return procKiB("/proc/self/status", "VmRSS") * 1024
}
