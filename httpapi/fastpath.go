package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	mathrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward/guard"
)

// This file holds the parts of the request path that run for every request
// and are built to allocate nothing: the pooled request and machine-call
// state, request ids, interned machine ids, and the metric series resolved
// ahead of time.

// requestPool recycles request values. A request is returned by
// releaseRequest once its handler and metrics are done, so nothing may
// keep a *request past the handler. Asynchronous work receives copies.
var requestPool = sync.Pool{New: func() any { return newPooledRequest() }}

// newPooledRequest returns a request with its own id generator. The
// generator is ChaCha8, a cryptographically strong stream, seeded from
// crypto/rand, so request ids are as unpredictable as UUIDs from
// crypto/rand while costing no system call.
func newPooledRequest() *request {
	var seed [32]byte
	// crypto/rand.Read aborts the program rather than return an error.
	_, _ = rand.Read(seed[:])
	return &request{ids: mathrand.NewChaCha8(seed)}
}

// acquireRequest returns a cleared request with a fresh id.
func acquireRequest() *request {
	rc := requestPool.Get().(*request)
	rc.newID()
	return rc
}

// releaseRequest clears rc, so that it keeps no request data alive, and
// returns it to the pool.
func releaseRequest(rc *request) {
	ids := rc.ids
	*rc = request{ids: ids}
	requestPool.Put(rc)
}

// newID sets rc.id to a new random UUID (version 4) in its canonical text
// form. The string is the request's one allocation that outlives it,
// because the audit events of the request keep it.
func (rc *request) newID() {
	var u [16]byte
	var text [36]byte
	for i := 0; i < 16; i += 8 {
		v := rc.ids.Uint64()
		for j := range 8 {
			u[i+j] = byte(v >> (8 * j))
		}
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	hex.Encode(text[0:8], u[0:4])
	text[8] = '-'
	hex.Encode(text[9:13], u[4:6])
	text[13] = '-'
	hex.Encode(text[14:18], u[6:8])
	text[18] = '-'
	hex.Encode(text[19:23], u[8:10])
	text[23] = '-'
	hex.Encode(text[24:], u[10:])
	rc.id = string(text[:])
}

// machineCallPool recycles machineCall values. signed returns each one
// with releaseMachineCall when its handler returns.
var machineCallPool = sync.Pool{New: func() any { return new(machineCall) }}

// releaseMachineCall clears mc, so that it keeps no machine entry or
// request body alive, and returns it to the pool.
func releaseMachineCall(mc *machineCall) {
	*mc = machineCall{}
	machineCallPool.Put(mc)
}

// internShards is the number of independently locked parts of an
// internTable. It is a power of two, so the shard is picked with a mask.
const internShards = 16

// maxInternedMachineIDs bounds machineIDs. Each entry is a 36-byte id
// string and its map slot, an estimated 100 bytes, so the table stays
// under about 7 MB.
const maxInternedMachineIDs = 1 << 16

// machineIDs interns the id text of each machine that passed checks 1 to
// 9, so that its later requests find the id string without copying it out
// of the request. Only authenticated machines are added, so a client
// cannot fill the table with ids of its own. Every Server in the process
// shares it, which is harmless because the entries are immutable strings
// that equal their keys.
var machineIDs = newInternTable(maxInternedMachineIDs)

// internTable maps a string's text to one shared copy of it. A shard that
// reaches its limit is emptied before the next insert, which costs at most
// one allocation per request until the ids in use are added again.
type internTable struct {
	seed       maphash.Seed
	shardLimit int
	shards     [internShards]internShard
}

type internShard struct {
	mu      sync.RWMutex
	strings map[string]string
	// Padding keeps neighbouring shards' locks off one cache line.
	_ [32]byte
}

// newInternTable returns a table of at most limit strings. A limit below
// the shard count is raised to one string per shard.
func newInternTable(limit int) *internTable {
	t := &internTable{seed: maphash.MakeSeed(), shardLimit: max(limit/internShards, 1)}
	for i := range t.shards {
		t.shards[i].strings = make(map[string]string)
	}
	return t
}

// lookup returns the interned string whose text is text, without
// allocating.
func (t *internTable) lookup(text []byte) (string, bool) {
	sh := &t.shards[maphash.Bytes(t.seed, text)&(internShards-1)]
	sh.mu.RLock()
	s, ok := sh.strings[string(text)]
	sh.mu.RUnlock()
	return s, ok
}

// add interns s. s must not alias a mutable buffer, such as a request
// buffer, because later lookups return it.
func (t *internTable) add(s string) {
	sh := &t.shards[maphash.String(t.seed, s)&(internShards-1)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.strings[s]; ok {
		return
	}
	if len(sh.strings) >= t.shardLimit {
		clear(sh.strings)
	}
	sh.strings[s] = s
}

// maxStatus bounds the status codes whose request counters are cached.
const maxStatus = 600

// requestSeries caches the metric series that every request updates, so
// that finishing a request looks no label values up and allocates nothing.
type requestSeries struct {
	metrics *metrics
	// requests holds a prometheus.Counter per plane and status code,
	// created on first use.
	requests [planeCount][maxStatus]atomic.Value
	duration [planeCount]prometheus.Observer
	// machine holds the counter of each machine result.
	machine map[string]prometheus.Counter
}

// planeCount is the number of plane values.
const planeCount = int(planeAdmin) + 1

func newRequestSeries(m *metrics) *requestSeries {
	rs := &requestSeries{metrics: m, machine: map[string]prometheus.Counter{}}
	for p := range planeCount {
		rs.duration[p] = m.httpDuration.WithLabelValues(plane(p).String())
	}
	for _, result := range []string{
		resultOK, resultBadRequest, resultUnauthorized, resultForbidden, resultBlocked,
		resultLocked, resultNotFound, resultUnavailable, resultError,
	} {
		rs.machine[result] = m.machineRequests.WithLabelValues(result)
	}
	return rs
}

// requestCounter returns the counter of requests of plane p that ended
// with status.
func (rs *requestSeries) requestCounter(p plane, status int) prometheus.Counter {
	if status < 0 || status >= maxStatus || int(p) >= planeCount {
		return rs.metrics.httpRequests.WithLabelValues(p.String(), strconv.Itoa(status))
	}
	slot := &rs.requests[p][status]
	if c, ok := slot.Load().(prometheus.Counter); ok {
		return c
	}
	c := rs.metrics.httpRequests.WithLabelValues(p.String(), strconv.Itoa(status))
	slot.Store(c)
	return c
}

// machineCounter returns the counter of signed requests with result.
func (rs *requestSeries) machineCounter(result string) prometheus.Counter {
	if c, ok := rs.machine[result]; ok {
		return c
	}
	return rs.metrics.machineRequests.WithLabelValues(result)
}

// registerVerifyMetrics exports the counts of the key cache and of the
// batch verifier.
func registerVerifyMetrics(reg prometheus.Registerer, cache *guard.KeyCache, verifier *guard.BatchVerifier) error {
	stat := func(pick func(guard.KeyCacheStats) float64) func() float64 {
		return func() float64 { return pick(cache.Stats()) }
	}
	batch := func(pick func(guard.BatchStats) uint64) func() float64 {
		return func() float64 { return float64(pick(verifier.Stats())) }
	}
	collectors := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_verify_batches_total",
			Help: "Signature verifications run, each of one signature or of a batch of concurrent requests' signatures.",
		}, batch(func(st guard.BatchStats) uint64 { return st.Batches })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_verify_signatures_total",
			Help: "Signatures verified, alone or in batches; divided by keyward_verify_batches_total it is the mean batch size.",
		}, batch(func(st guard.BatchStats) uint64 { return st.Signatures })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_verify_batch_failures_total",
			Help: "Batches that held an invalid signature, so that each of their signatures was verified again on its own.",
		}, batch(func(st guard.BatchStats) uint64 { return st.Failures })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_key_cache_entries",
			Help: "Expanded Ed25519 public keys held by the verification key cache.",
		}, stat(func(st guard.KeyCacheStats) float64 { return float64(st.Entries) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyward_key_cache_capacity",
			Help: "Most expanded public keys the verification key cache holds (--key-cache-bytes divided by the bytes charged per key).",
		}, stat(func(st guard.KeyCacheStats) float64 { return float64(st.Capacity) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_key_cache_hits_total",
			Help: "Signature verifications that found the machine's expanded key in the cache.",
		}, stat(func(st guard.KeyCacheStats) float64 { return float64(st.Hits) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_key_cache_misses_total",
			Help: "Signature verifications that expanded the machine's key because the cache did not hold it.",
		}, stat(func(st guard.KeyCacheStats) float64 { return float64(st.Misses) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_key_cache_evictions_total",
			Help: "Expanded keys dropped from the verification key cache to make room for others.",
		}, stat(func(st guard.KeyCacheStats) float64 { return float64(st.Evictions) })),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("httpapi: register verification metrics: %w", err)
		}
	}
	return nil
}
