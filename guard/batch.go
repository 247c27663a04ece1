package guard

import (
	"runtime"
	"sync"
	"sync/atomic"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// DefaultMaxBatch is the default largest batch of a BatchVerifier. On the
// host of docs/benchmarks.md a batch of 32 costs about 0.56 of a single
// verification per signature and one of 64 about 0.54
// (BenchmarkVerifyPerSignature). So 32 keeps most of the gain while a
// batch holds its requests half as long as one of 64.
const DefaultMaxBatch = 32

// BatchVerifier verifies the signatures of concurrent requests together
// when several are waiting, and each on its own otherwise. A request that
// finds a free verifier slot (one per core by default) yields once, so that
// the goroutines ready to run can queue their signatures, and then
// verifies its own with those queued. No request waits for a timer or to
// fill a batch, so at low load every verification is a single one. Under
// load, requests queue while the slots are busy, and the next batch takes
// up to maxBatch of them. A request waits at most for the batches ahead of
// it in the queue.
//
// A batch uses the same rule as a single verification (see the package
// documentation), and a batch that fails is verified one signature at a
// time, so every request gets the result of the single check. A
// BatchVerifier is safe for concurrent use.
type BatchVerifier struct {
	maxBatch int
	maxSlots int

	mu sync.Mutex
	// queue holds the requests waiting for a slot, oldest first.
	queue []*batchJob
	// slots is the number of requests verifying a batch now.
	slots int

	batches    atomic.Uint64
	signatures atomic.Uint64
	failures   atomic.Uint64
}

// batchJob is one waiting verification. It is pooled, and done carries one
// signal per use.
type batchJob struct {
	key *ExpandedPublicKey
	msg []byte
	sig [SignatureSize]byte
	ok  bool
	// done receives jobVerified when another request verified this job, or
	// jobLead when this job's request is to verify the next batch itself.
	done chan jobSignal
}

type jobSignal uint8

const (
	jobVerified jobSignal = iota + 1
	jobLead
)

var batchJobs = sync.Pool{New: func() any { return &batchJob{done: make(chan jobSignal, 1)} }}

// batchScratch is the reusable state of one batch.
type batchScratch struct {
	jobs     []*batchJob
	verifier *voi.BatchVerifier
}

// NewBatchVerifier returns a verifier that batches up to maxBatch
// signatures and runs up to slots batches at once. A maxBatch of 1 or less
// verifies every signature on its own. A slots below 1 means one per core
// (runtime.GOMAXPROCS).
func NewBatchVerifier(maxBatch, slots int) *BatchVerifier {
	if maxBatch < 1 {
		maxBatch = 1
	}
	if slots < 1 {
		slots = runtime.GOMAXPROCS(0)
	}
	return &BatchVerifier{maxBatch: maxBatch, maxSlots: slots}
}

// Verify reports whether sig is a valid signature of msg under key, with
// the rule of ExpandedPublicKey.Verify. msg must stay unchanged until
// Verify returns, because whichever request verifies the batch reads it.
func (v *BatchVerifier) Verify(key *ExpandedPublicKey, msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	if v.maxBatch == 1 {
		v.count(1)
		return key.Verify(msg, sig)
	}

	job := batchJobs.Get().(*batchJob)
	job.key, job.msg, job.ok = key, msg, false
	copy(job.sig[:], sig)

	v.mu.Lock()
	if v.slots < v.maxSlots {
		v.slots++
		v.mu.Unlock()
		v.lead(job)
	} else {
		v.queue = append(v.queue, job)
		v.mu.Unlock()
		if <-job.done == jobLead {
			v.lead(job)
		}
	}

	ok := job.ok
	job.key, job.msg = nil, nil
	batchJobs.Put(job)
	return ok
}

// lead verifies own, which holds a slot and is not queued, together with
// up to maxBatch-1 queued jobs. Then it hands the slot to the oldest job
// still queued, or frees it. Each request therefore verifies at most one
// batch, and the slot count stays constant while requests queue.
func (v *BatchVerifier) lead(own *batchJob) {
	// Let the goroutines that are ready to run reach Verify and queue
	// first. With as many slots as cores, the slot holders would otherwise
	// keep every core busy verifying, and no request could queue behind
	// them. When nothing else is ready, this returns at once.
	runtime.Gosched()
	scratch := v.takeBatch(own)
	done := false
	defer func() {
		if !done {
			// The verification panicked. Fail the queued requests of the
			// batch rather than leave them waiting, and pass the slot on.
			for _, job := range scratch.jobs[1:] {
				job.ok = false
				job.done <- jobVerified
			}
			v.passSlot()
		}
	}()
	v.verifyBatch(scratch)
	done = true

	for _, job := range scratch.jobs[1:] {
		job.done <- jobVerified
	}
	clear(scratch.jobs)
	scratch.jobs = scratch.jobs[:0]
	scratch.verifier.Reset()
	batchScratches.Put(scratch)
	v.passSlot()
}

// passSlot hands the caller's slot to the oldest queued job, or frees it
// when none is queued.
func (v *BatchVerifier) passSlot() {
	v.mu.Lock()
	if len(v.queue) == 0 {
		v.slots--
		v.mu.Unlock()
		return
	}
	next := v.queue[0]
	v.dequeueLocked(1)
	v.mu.Unlock()
	next.done <- jobLead
}

var batchScratches = sync.Pool{New: func() any { return &batchScratch{verifier: voi.NewBatchVerifier()} }}

// takeBatch returns own followed by the oldest queued jobs, removed from
// the queue.
func (v *BatchVerifier) takeBatch(own *batchJob) *batchScratch {
	scratch := batchScratches.Get().(*batchScratch)
	scratch.jobs = append(scratch.jobs, own)
	v.mu.Lock()
	n := min(len(v.queue), v.maxBatch-1)
	scratch.jobs = append(scratch.jobs, v.queue[:n]...)
	v.dequeueLocked(n)
	v.mu.Unlock()
	return scratch
}

// dequeueLocked removes the first n jobs of the queue, keeping its array.
func (v *BatchVerifier) dequeueLocked(n int) {
	rest := copy(v.queue, v.queue[n:])
	clear(v.queue[rest:])
	v.queue = v.queue[:rest]
}

// minBatchCheck is the smallest number of signatures checked with one
// batch equation. BenchmarkVerifyPerSignature measured a batch of two at
// 21 to 23 µs per signature against 21 µs for a single verification, and
// one of three at 19 µs, so two signatures are verified one at a time.
const minBatchCheck = 3

// verifyBatch sets ok on every job of scratch. Fewer than minBatchCheck
// jobs are verified one at a time. More are checked at once, and one
// signature at a time if that check fails, so that each job gets its own
// result.
func (v *BatchVerifier) verifyBatch(scratch *batchScratch) {
	jobs := scratch.jobs
	v.count(len(jobs))
	if len(jobs) < minBatchCheck {
		for _, job := range jobs {
			job.ok = job.key.Verify(job.msg, job.sig[:])
		}
		return
	}

	bv := scratch.verifier
	for _, job := range jobs {
		bv.AddExpandedWithOptions(job.key.expanded, job.msg, job.sig[:], verifyOptions)
	}
	// A nil reader makes curve25519-voi draw the random weights from
	// crypto/rand.
	if bv.VerifyBatchOnly(nil) {
		for _, job := range jobs {
			job.ok = true
		}
		return
	}
	v.failures.Add(1)
	for _, job := range jobs {
		job.ok = job.key.Verify(job.msg, job.sig[:])
	}
}

func (v *BatchVerifier) count(n int) {
	v.batches.Add(1)
	v.signatures.Add(uint64(n))
}

// BatchStats counts a BatchVerifier's work since it was created.
type BatchStats struct {
	// Batches counts verifications run, a single signature included, and
	// Signatures the signatures they covered.
	Batches, Signatures uint64
	// Failures counts batches whose joint check failed, so that each of
	// their signatures was verified again on its own.
	Failures uint64
}

// Stats returns the current counts.
func (v *BatchVerifier) Stats() BatchStats {
	return BatchStats{Batches: v.batches.Load(), Signatures: v.signatures.Load(), Failures: v.failures.Load()}
}
