package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// indexedPrefixes are the record kinds that the in-memory indexes are built
// from, in key order. Open scans only these, so the audit log, idempotency
// records and secret versions, most of a large store, are never read.
// Machines and bootstrap tokens are not among them: they are read from the
// store when needed.
var indexedPrefixes = []string{
	prefixAdminToken, prefixMeta, prefixProject, prefixSecret, prefixVault,
}

// loadIndexes fills ix, which is empty, from the records of r. It runs at
// Open, before the indexes are visible to readers.
func loadIndexes(r pebble.Reader, ix *indexes) (*indexes, error) {
	b := newIndexBuilder(ix)
	for _, prefix := range indexedPrefixes {
		if err := scanPrefix(r, prefix, b.add); err != nil {
			b.abort()
			return nil, err
		}
	}
	return b.finish(func(id SecretID, version int) ([]byte, bool, error) {
		var raw json.RawMessage
		found, err := getJSON(r, secretVersionKey(id, version), &raw)
		return raw, found, err
	})
}

// scanPrefix calls fn for every key with prefix, in key order. The slices
// passed to fn are valid only during the call.
func scanPrefix(r pebble.Reader, prefix string, fn func(key, value []byte) error) error {
	iter, err := r.NewIter(&pebble.IterOptions{
		LowerBound: []byte(prefix),
		UpperBound: []byte(prefixEnd(prefix)),
	})
	if err != nil {
		return fmt.Errorf("scan %s: %w", prefix, err)
	}
	for iter.First(); iter.Valid(); iter.Next() {
		value, err := iter.ValueAndErr()
		if err != nil {
			iter.Close()
			return fmt.Errorf("read %s: %w", iter.Key(), err)
		}
		if err := fn(iter.Key(), value); err != nil {
			iter.Close()
			return err
		}
	}
	return iter.Close()
}

// indexBuilder builds a new set of indexes from records handed to it in
// ascending key order, in one pass: Open feeds it from Pebble and Restore
// from the snapshot stream. Machines and bootstrap tokens, the kinds a
// large state has millions of, only reach it from a snapshot. There a
// pool of workers checks that each record decodes while the caller keeps
// reading, and nothing of them is held in memory. The other kinds are
// loaded in key order, because secrets need their project (proj/ sorts
// before sec/) and their current version (secv/ sorts after sec/).
type indexBuilder struct {
	ix *indexes
	// pending holds secrets that wait for their current version.
	pending map[SecretID]*Secret
	// prune and auditSeq are the meta records that Restore needs.
	prune    pruneRecord
	auditSeq uint64

	pool *decodePool
}

func newIndexBuilder(ix *indexes) *indexBuilder {
	return &indexBuilder{ix: ix, pending: make(map[SecretID]*Secret), pool: newDecodePool(ix)}
}

// add loads one record. It copies what it keeps, so key and value may be
// reused by the caller after it returns. Records of kinds that are not
// indexed are ignored.
func (b *indexBuilder) add(key, value []byte) error {
	if err := b.pool.failed(); err != nil {
		return err
	}
	slash := bytes.IndexByte(key, '/')
	if slash < 0 {
		return nil
	}
	var err error
	switch string(key[:slash+1]) {
	case prefixMachine:
		b.pool.queue(checkMachine, key, value)
	case prefixBootstrapToken:
		b.pool.queue(checkBootstrapTokenRecord, key, value)
	case prefixAdminToken:
		err = loadAdminToken(b.ix, value)
	case prefixMeta:
		err = b.addMeta(string(key), value)
	case prefixProject:
		err = loadProject(b.ix, value)
	case prefixSecret:
		err = b.addSecret(value)
	case prefixSecretVersion:
		err = b.addSecretVersion(string(key), value)
	case prefixVault:
		err = loadVault(b.ix, value)
	}
	if err != nil {
		return fmt.Errorf("load %s: %w", key, err)
	}
	return nil
}

func (b *indexBuilder) addMeta(key string, value []byte) error {
	switch key {
	case keyInit:
		var rec initRecord
		if err := json.Unmarshal(value, &rec); err != nil {
			return err
		}
		b.ix.initialized.Store(true)
	case keyRequestPrune:
		return json.Unmarshal(value, &b.prune)
	case keyAuditSeq:
		var rec auditSeqRecord
		if err := json.Unmarshal(value, &rec); err != nil {
			return err
		}
		b.auditSeq = rec.Last
	}
	return nil
}

func (b *indexBuilder) addSecret(value []byte) error {
	var s Secret
	if err := json.Unmarshal(value, &s); err != nil {
		return err
	}
	if _, ok := b.ix.projects.get(s.ProjectID); !ok {
		return fmt.Errorf("project %s of secret %s is missing", s.ProjectID, s.ID)
	}
	b.pending[s.ID] = &s
	return nil
}

// addSecretVersion publishes the secret whose current version key is key.
// Older versions are skipped.
func (b *indexBuilder) addSecretVersion(key string, value []byte) error {
	rest := strings.TrimPrefix(key, prefixSecretVersion)
	slash := strings.LastIndexByte(rest, '/')
	if slash < 0 {
		return nil
	}
	id := SecretID(rest[:slash])
	s, ok := b.pending[id]
	if !ok {
		return nil
	}
	if version, err := strconv.Atoi(rest[slash+1:]); err != nil || version != s.Version {
		return nil
	}
	delete(b.pending, id)
	return b.publishSecret(s, value)
}

func (b *indexBuilder) publishSecret(s *Secret, versionValue []byte) error {
	var v SecretVersion
	if err := json.Unmarshal(versionValue, &v); err != nil {
		return fmt.Errorf("version %d of secret %s: %w", s.Version, s.ID, err)
	}
	p, ok := b.ix.projects.get(s.ProjectID)
	if !ok {
		return fmt.Errorf("project %s of secret %s is missing", s.ProjectID, s.ID)
	}
	b.ix.publishSecret(&secretEntry{meta: s, current: v.Sealed, projectKey: p.WrappedKey})
	return nil
}

// versionLookup returns the stored value of a secret version.
type versionLookup func(id SecretID, version int) (value []byte, found bool, err error)

// finish waits for the workers and publishes the secrets still waiting for
// their current version, which it reads through lookup (nil when every
// version was handed to add). It fails on the first record that did not
// load.
func (b *indexBuilder) finish(lookup versionLookup) (*indexes, error) {
	if err := b.pool.wait(); err != nil {
		return nil, err
	}
	ids := make([]SecretID, 0, len(b.pending))
	for id := range b.pending {
		ids = append(ids, id)
	}
	slices.Sort(ids) // the first missing version reported is the same on every run
	for _, id := range ids {
		s := b.pending[id]
		var value []byte
		found := false
		if lookup != nil {
			var err error
			if value, found, err = lookup(id, s.Version); err != nil {
				return nil, err
			}
		}
		if !found {
			return nil, fmt.Errorf("current version %d of secret %s is missing", s.Version, s.ID)
		}
		if err := b.publishSecret(s, value); err != nil {
			return nil, err
		}
	}
	return b.ix, nil
}

// abort stops the workers after a failure outside the builder.
func (b *indexBuilder) abort() {
	b.pool.wait()
}

// decodeChunkRecords is the number of records handed to a worker at once,
// so that the channel costs little per record, and decodeChunkBytes the
// buffer a chunk starts with, enough for 256 machine records.
const (
	decodeChunkRecords = 256
	decodeChunkBytes   = 128 << 10
)

// recordLoader decodes one record and publishes it to ix.
type recordLoader func(ix *indexes, value []byte) error

// decodePool decodes and publishes records on one worker per CPU. Records
// are copied into chunks, because the caller reuses its buffers, and the
// workers hand each chunk back for reuse.
type decodePool struct {
	ix    *indexes
	jobs  chan *decodeChunk
	free  chan *decodeChunk
	wg    sync.WaitGroup
	chunk *decodeChunk

	mu  sync.Mutex
	err error
}

type decodeChunk struct {
	buf     []byte
	records []chunkRecord
}

// chunkRecord is one record of a chunk: its key and value are
// buf[start:mid] and buf[mid:end].
type chunkRecord struct {
	load            recordLoader
	start, mid, end int
}

func newDecodePool(ix *indexes) *decodePool {
	workers := runtime.GOMAXPROCS(0)
	p := &decodePool{
		ix:   ix,
		jobs: make(chan *decodeChunk, workers),
		// Chunks in use: one filling, one queued and one in work per worker.
		free: make(chan *decodeChunk, 2*workers+1),
	}
	for range workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

func (p *decodePool) work() {
	defer p.wg.Done()
	for c := range p.jobs {
		if p.failed() == nil {
			for _, r := range c.records {
				if err := r.load(p.ix, c.buf[r.mid:r.end]); err != nil {
					p.fail(fmt.Errorf("load %s: %w", c.buf[r.start:r.mid], err))
					break
				}
			}
		}
		c.buf, c.records = c.buf[:0], c.records[:0]
		select {
		case p.free <- c:
		default:
		}
	}
}

// queue adds a record to the current chunk and hands the chunk to the
// workers when it is full.
func (p *decodePool) queue(load recordLoader, key, value []byte) {
	if p.chunk == nil {
		select {
		case p.chunk = <-p.free:
		default:
			p.chunk = &decodeChunk{
				buf:     make([]byte, 0, decodeChunkBytes),
				records: make([]chunkRecord, 0, decodeChunkRecords),
			}
		}
	}
	c := p.chunk
	start := len(c.buf)
	c.buf = append(c.buf, key...)
	mid := len(c.buf)
	c.buf = append(c.buf, value...)
	c.records = append(c.records, chunkRecord{load: load, start: start, mid: mid, end: len(c.buf)})
	if len(c.records) == decodeChunkRecords {
		p.jobs <- c
		p.chunk = nil
	}
}

func (p *decodePool) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

func (p *decodePool) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// wait hands over the last chunk, stops the workers and returns the first
// error. Callers call it once: a second call would close a closed channel.
func (p *decodePool) wait() error {
	if p.chunk != nil {
		p.jobs <- p.chunk
		p.chunk = nil
	}
	close(p.jobs)
	p.wg.Wait()
	return p.failed()
}

func loadVault(ix *indexes, value []byte) error {
	var v Vault
	if err := json.Unmarshal(value, &v); err != nil {
		return err
	}
	allow, err := compileAllowlist(v.IPAllowlist)
	if err != nil {
		return err
	}
	ix.vaults.set(v.ID, &vaultEntry{vault: &v, allowlist: allow})
	return nil
}

func loadProject(ix *indexes, value []byte) error {
	var p Project
	if err := json.Unmarshal(value, &p); err != nil {
		return err
	}
	ix.publishProject(&p)
	return nil
}

// checkMachine checks that a machine record of a snapshot decodes into an
// entry. Machines are not loaded: the cache reads them from the store.
func checkMachine(_ *indexes, value []byte) error {
	_, err := decodeMachineEntry(value)
	return err
}

func loadAdminToken(ix *indexes, value []byte) error {
	var tok AdminToken
	if err := json.Unmarshal(value, &tok); err != nil {
		return err
	}
	ix.adminTokens.set(tok.Hash, &tok)
	return nil
}

// checkBootstrapTokenRecord checks that a bootstrap token record of a
// snapshot decodes. Tokens are not loaded: apply and the API read them
// from the store.
func checkBootstrapTokenRecord(_ *indexes, value []byte) error {
	var tok BootstrapToken
	return json.Unmarshal(value, &tok)
}
