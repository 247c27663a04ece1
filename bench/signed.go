package bench

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/guard"
	"github.com/keyward/keyward/httpapi/client"
)

const (
	// nonceLen is the length of a bench nonce: 8 hex characters chosen at
	// random for each nonce source, then a 16-hex-character counter. A
	// source never repeats a nonce, and two sources share a prefix with
	// probability 2^-32.
	nonceLen = 24
	// signatureLen is the standard base64 length of a 64-byte signature.
	signatureLen = 88
	// presignMaxAge is the age of the oldest presigned request still
	// sent. The server accepts timestamps within 300 s by default, so
	// older presigned requests are signed again when sent.
	presignMaxAge = 240 * time.Second
	// maxPresigned bounds the presigned pool: each entry is 128 bytes.
	maxPresigned = 500_000
)

// machineKey is a registered machine and its private key.
type machineKey struct {
	id  string
	key ed25519.PrivateKey
}

// nonceSource hands out unique nonces. It is safe for concurrent use.
type nonceSource struct {
	prefix  [8]byte
	counter atomic.Uint64
}

func newNonceSource() *nonceSource {
	var random [4]byte
	// crypto/rand.Read aborts the program rather than return an error.
	_, _ = rand.Read(random[:])
	n := &nonceSource{}
	hex.Encode(n.prefix[:], random[:])
	return n
}

// next writes a fresh nonce into dst.
func (n *nonceSource) next(dst *[nonceLen]byte) {
	copy(dst[:8], n.prefix[:])
	var count [8]byte
	binary.BigEndian.PutUint64(count[:], n.counter.Add(1))
	hex.Encode(dst[8:], count[:])
}

// signedHeaders are the varying parts of one signed request. The struct
// holds no pointers, so a large presigned pool costs the garbage
// collector nothing to scan.
type signedHeaders struct {
	machine   int32
	timestamp int64
	nonce     [nonceLen]byte
	signature [signatureLen]byte
}

// signer signs GET requests for one path as any of a set of machines.
type signer struct {
	path     string
	machines []machineKey
	nonces   *nonceSource
}

func newSigner(path string, machines []machineKey) *signer {
	return &signer{path: path, machines: machines, nonces: newNonceSource()}
}

// sign fills h for machine m at now, reusing msgBuf for the signed bytes,
// and returns the buffer for the next call.
func (s *signer) sign(h *signedHeaders, m int, now time.Time, msgBuf []byte) []byte {
	h.machine = int32(m)
	h.timestamp = now.Unix()
	s.nonces.next(&h.nonce)
	var ts [20]byte
	msgBuf = guard.AppendCanonical(msgBuf[:0], []byte(fasthttp.MethodGet), []byte(s.path),
		strconv.AppendInt(ts[:0], h.timestamp, 10), h.nonce[:], nil)
	base64.StdEncoding.Encode(h.signature[:], ed25519.Sign(s.machines[m].key, msgBuf))
	return msgBuf
}

// presignPool holds requests signed ahead of the runs that send them. The
// runs of a scenario share one pool, so what one run leaves unused the
// next one sends. take is safe for concurrent use. fill is not, so it
// runs between load runs.
type presignPool struct {
	signer  *signer
	entries []signedHeaders
	next    atomic.Int64
}

func newPresignPool(s *signer) *presignPool {
	return &presignPool{signer: s}
}

// take copies the next unused entry into h, or returns false when none is
// left.
func (p *presignPool) take(h *signedHeaders) bool {
	i := p.next.Add(1) - 1
	if i >= int64(len(p.entries)) {
		return false
	}
	*h = p.entries[i]
	return true
}

// fill drops the used and stale entries and signs new ones, on every
// core, until n unused entries remain (at most maxPresigned). It calls
// done after each new signature.
func (p *presignPool) fill(n int, done func()) {
	n = min(n, maxPresigned)
	now := time.Now()
	used := min(int(p.next.Load()), len(p.entries))
	kept := slices.DeleteFunc(slices.Clone(p.entries[used:]), func(h signedHeaders) bool {
		return now.Sub(time.Unix(h.timestamp, 0)) > presignMaxAge/2
	})
	p.next.Store(0)
	if len(kept) >= n {
		p.entries = kept
		return
	}

	entries := make([]signedHeaders, n)
	copy(entries, kept)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var msg []byte
			for i := len(kept) + g; i < n; i += workers {
				msg = p.signer.sign(&entries[i], i%len(p.signer.machines), now, msg)
				done()
			}
		}()
	}
	wg.Wait()
	p.entries = entries
}

// signedReads sends signed GET requests, rotating through the signer's
// machines, to targets (worker w uses target w mod len(targets)).
type signedReads struct {
	signer  *signer
	pool    *presignPool
	workers []*readWorker

	// presigned and inline count the requests sent from the pool and
	// signed while the run was going on (the pool was empty, or an entry
	// was too old).
	presigned atomic.Int64
	inline    atomic.Int64
}

// readWorker is the per-worker state: its own request and response,
// reused for every request, and buffers for inline signing.
type readWorker struct {
	target  *target
	req     *fasthttp.Request
	resp    *fasthttp.Response
	machine int
	msg     []byte
	ts      []byte
}

// newSignedReads returns a sender with workers workers. pool may be nil,
// and then every request is signed when it is sent.
func newSignedReads(s *signer, pool *presignPool, targets []*target, workers int) *signedReads {
	r := &signedReads{signer: s, pool: pool}
	for w := range workers {
		t := targets[w%len(targets)]
		req := t.newRequest(fasthttp.MethodGet, s.path)
		r.workers = append(r.workers, &readWorker{target: t, req: req, resp: &fasthttp.Response{}, machine: w % len(s.machines)})
	}
	return r
}

// headers returns the signature headers for worker w's next request: the
// next presigned one while they last and are fresh, else a new signature.
func (s *signedReads) headers(w *readWorker, h *signedHeaders) {
	now := time.Now()
	if s.pool != nil && s.pool.take(h) && now.Sub(time.Unix(h.timestamp, 0)) < presignMaxAge {
		s.presigned.Add(1)
		return
	}
	s.inline.Add(1)
	w.machine = (w.machine + len(s.workers)) % len(s.signer.machines)
	w.msg = s.signer.sign(h, w.machine, now, w.msg)
}

// describe records in run how the run's requests were signed.
func (s *signedReads) describe(run *LoadRun) {
	run.Presigned, run.SignedInline = s.presigned.Load(), s.inline.Load()
}

// targets returns the distinct targets of the workers, in order.
func (s *signedReads) targets() []*target {
	var out []*target
	for _, w := range s.workers {
		if len(out) > 0 && out[0] == w.target {
			break
		}
		out = append(out, w.target)
	}
	return out
}

// send is the requestFunc of a signed-read load run.
func (s *signedReads) send(worker int, _ int64) (int, error) {
	w := s.workers[worker]
	var h signedHeaders
	s.headers(w, &h)
	hdr := &w.req.Header
	hdr.Set(client.HeaderMachineID, s.signer.machines[h.machine].id)
	w.ts = strconv.AppendInt(w.ts[:0], h.timestamp, 10)
	hdr.SetBytesV(client.HeaderTimestamp, w.ts)
	hdr.SetBytesV(client.HeaderNonce, h.nonce[:])
	hdr.SetBytesV(client.HeaderSignature, h.signature[:])
	if err := w.target.doRead(w.req, w.resp); err != nil {
		return 0, err
	}
	return w.resp.StatusCode(), nil
}

// presignCount returns how many requests to sign ahead for a run. An
// open-loop run needs its scheduled count. A closed-loop run gets what it
// would send at the verify floor rate, which a server verifying one
// signature at a time cannot exceed. Both are capped at maxPresigned.
func presignCount(rate, floorPerSecond float64, d time.Duration) int {
	n := rate * d.Seconds()
	if rate <= 0 {
		n = floorPerSecond * d.Seconds()
	}
	return int(min(n+1, maxPresigned))
}
