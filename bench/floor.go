package bench

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"slices"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/keyward/keyward/guard"
)

// Floor measurement parameters.
const (
	// floorRounds is the number of timed rounds per verifier. The median
	// round is reported, so a neighbour process that takes the core for
	// part of the measurement moves the result less.
	floorRounds = 5
	// floorBatchSize is the batch the batch-verify figure uses.
	floorBatchSize = 64
	// fsyncSamples and fsyncBlock describe the fsync probe: that many
	// appends of one block, each followed by fsync.
	fsyncSamples = 50
	fsyncBlock   = 4096
)

// Floor is the host's own cost of the work every request must do, measured
// in the same run as the load.
type Floor struct {
	// Cores is the core count the per-second figures assume.
	Cores int `json:"cores"`
	// CPUs are the CPUs the verify times were measured on: the local
	// nodes' CPUs when the bench pinned the nodes to them. Empty means any
	// CPU of the bench process.
	CPUs []int `json:"cpus,omitempty"`
	// Verify times are the CPU time of one Ed25519 verification on one
	// core, in microseconds: Go's crypto/ed25519 and curve25519-voi with
	// the raw key, both with crypto/ed25519's cofactorless rule, and
	// curve25519-voi with an expanded (precomputed) public key as the
	// server verifies one signature, with the server's cofactored rule of
	// RFC 8032 (FIPS 186-5). VoiBatchVerifyMicros is curve25519-voi batch
	// verification of 64 signatures with expanded keys under that same
	// rule, per signature; the server batches the signatures of
	// concurrent requests.
	StdlibVerifyMicros      float64 `json:"stdlibVerifyMicros"`
	VoiVerifyMicros         float64 `json:"voiVerifyMicros"`
	VoiExpandedVerifyMicros float64 `json:"voiExpandedVerifyMicros"`
	VoiBatchVerifyMicros    float64 `json:"voiBatchVerifyMicros"`
	// VerifyFloorPerSecond is Cores divided by VoiExpandedVerifyMicros: the
	// rate of a loop that does nothing but verify one signature after
	// another on every core.
	VerifyFloorPerSecond float64 `json:"verifyFloorPerSecond"`
	// FsyncMedianMs is the median time to append 4 KiB to a file and
	// fsync it, in FsyncDir.
	FsyncMedianMs float64 `json:"fsyncMedianMs"`
	FsyncDir      string  `json:"fsyncDir"`
}

// measureFloor times the verifiers for about floorTime in total, on a
// thread pinned to cpus unless cpus is empty, and probes fsync in dir.
func measureFloor(cores int, cpus []int, floorTime time.Duration, dir string) (Floor, error) {
	f := Floor{Cores: cores, CPUs: cpus, FsyncDir: dir}
	var verifyErr error
	if err := runOnCPUs(cpus, func() { verifyErr = f.measureVerify(floorTime / 4) }); err != nil {
		return f, fmt.Errorf("time verification on CPUs %s: %w", formatCPUList(cpus), err)
	}
	if verifyErr != nil {
		return f, verifyErr
	}
	fsync, err := measureFsync(dir)
	if err != nil {
		return f, err
	}
	f.FsyncMedianMs = millis(fsync)
	return f, nil
}

// verifyCase is one signed message and the key that verifies it, in the
// forms each verifier takes.
type verifyCase struct {
	pub      ed25519.PublicKey
	expanded *guard.ExpandedPublicKey
	voiExp   *voi.ExpandedPublicKey
	msg, sig []byte
}

func newVerifyCase() (verifyCase, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return verifyCase{}, err
	}
	// The message has the shape and length of a real signed read.
	msg := guard.AppendCanonical(nil, []byte("GET"), []byte("/v1/secret/sk_0123456789"),
		[]byte("1767225600"), []byte("0123456789abcdef01234567"), nil)
	key, err := guard.ParsePublicKey(pub)
	if err != nil {
		return verifyCase{}, err
	}
	voiExp, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		return verifyCase{}, err
	}
	return verifyCase{pub: pub, expanded: key.Expand(), voiExp: voiExp, msg: msg, sig: ed25519.Sign(priv, msg)}, nil
}

func (f *Floor) measureVerify(perVerifier time.Duration) error {
	c, err := newVerifyCase()
	if err != nil {
		return fmt.Errorf("prepare verify floor: %w", err)
	}
	stdOpts := &voi.Options{Verify: voi.VerifyOptionsStdLib}
	verifiers := []struct {
		name   string
		into   *float64
		verify func() bool
		per    int
	}{
		{"crypto/ed25519", &f.StdlibVerifyMicros, func() bool { return ed25519.Verify(c.pub, c.msg, c.sig) }, 1},
		{"curve25519-voi", &f.VoiVerifyMicros, func() bool { return voi.VerifyWithOptions(voi.PublicKey(c.pub), c.msg, c.sig, stdOpts) }, 1},
		{"curve25519-voi expanded", &f.VoiExpandedVerifyMicros, func() bool { return c.expanded.Verify(c.msg, c.sig) }, 1},
		{"curve25519-voi batch", &f.VoiBatchVerifyMicros, c.batchVerifier(), floorBatchSize},
	}
	for _, v := range verifiers {
		per, err := timePerCall(v.verify, perVerifier)
		if err != nil {
			return fmt.Errorf("time %s verification: %w", v.name, err)
		}
		*v.into = float64(per) / float64(time.Microsecond) / float64(v.per)
	}
	f.VerifyFloorPerSecond = float64(f.Cores) * 1e6 / f.VoiExpandedVerifyMicros
	return nil
}

// batchVerifier returns a function that verifies floorBatchSize copies of
// c's signature in one batch, with the cofactored rule that batches need.
func (c verifyCase) batchVerifier() func() bool {
	opts := &voi.Options{Verify: voi.VerifyOptionsFIPS_186_5}
	return func() bool {
		v := voi.NewBatchVerifierWithCapacity(floorBatchSize)
		for range floorBatchSize {
			v.AddExpandedWithOptions(c.voiExp, c.msg, c.sig, opts)
		}
		return v.VerifyBatchOnly(rand.Reader)
	}
}

// timePerCall returns the median time of one call of fn over floorRounds
// rounds that together last about total. fn must return true: a false
// means the verifier rejected a valid signature, and the timing would
// measure the wrong path.
func timePerCall(fn func() bool, total time.Duration) (time.Duration, error) {
	if !fn() {
		return 0, fmt.Errorf("a valid signature was rejected")
	}
	roundTime := total / floorRounds
	rounds := make([]time.Duration, 0, floorRounds)
	for range floorRounds {
		calls := 0
		start := time.Now()
		for time.Since(start) < roundTime || calls == 0 {
			fn()
			calls++
		}
		rounds = append(rounds, time.Since(start)/time.Duration(calls))
	}
	return median(rounds), nil
}

// measureFsync returns the median time to append one block to a new file
// in dir and fsync it.
func measureFsync(dir string) (time.Duration, error) {
	file, err := os.CreateTemp(dir, ".keyward-bench-fsync-*")
	if err != nil {
		return 0, fmt.Errorf("create fsync probe file in %s: %w", dir, err)
	}
	defer os.Remove(file.Name())
	defer file.Close()

	block := make([]byte, fsyncBlock)
	samples := make([]time.Duration, 0, fsyncSamples)
	for range fsyncSamples {
		start := time.Now()
		if _, err := file.Write(block); err != nil {
			return 0, fmt.Errorf("write fsync probe %s: %w", file.Name(), err)
		}
		if err := file.Sync(); err != nil {
			return 0, fmt.Errorf("fsync probe %s: %w", file.Name(), err)
		}
		samples = append(samples, time.Since(start))
	}
	return median(samples), nil
}

// median returns the middle value of samples (the upper one of the two
// middle values for an even count). samples must not be empty, and it is
// sorted in place.
func median(samples []time.Duration) time.Duration {
	slices.Sort(samples)
	return samples[len(samples)/2]
}
