package bench

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"testing"
	"time"

	"github.com/keyward/keyward/guard"
)

func testMachines(t *testing.T, n int) []machineKey {
	t.Helper()
	out := make([]machineKey, n)
	for i := range out {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = machineKey{id: "00000000-0000-4000-8000-00000000000" + strconv.Itoa(i), key: priv}
	}
	return out
}

// verifies reports whether h is a valid signature of a GET of path by
// machine m, checked the way the server checks it.
func verifies(t *testing.T, m machineKey, path string, h signedHeaders) bool {
	t.Helper()
	key, err := guard.ParsePublicKey(m.key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(string(h.signature[:]))
	if err != nil {
		t.Fatalf("signature %q is not standard base64: %v", h.signature, err)
	}
	msg := guard.AppendCanonical(nil, []byte("GET"), []byte(path), []byte(strconv.FormatInt(h.timestamp, 10)), h.nonce[:], nil)
	return key.Verify(msg, sig)
}

func TestSigner_SignaturesVerifyAsTheServerChecks(t *testing.T) {
	machines := testMachines(t, 3)
	s := newSigner("/v1/secret/sk_0123456789", machines)
	now := time.Unix(1_800_000_000, 0)
	var msg []byte
	for m := range machines {
		var h signedHeaders
		msg = s.sign(&h, m, now, msg)
		if int(h.machine) != m || h.timestamp != now.Unix() {
			t.Errorf("headers name machine %d at %d, want %d at %d", h.machine, h.timestamp, m, now.Unix())
		}
		if !verifies(t, machines[m], s.path, h) {
			t.Errorf("signature of machine %d does not verify", m)
		}
		if verifies(t, machines[(m+1)%len(machines)], s.path, h) {
			t.Errorf("signature of machine %d verifies under another machine's key", m)
		}
	}
}

func TestSigner_NoncesAreUniqueAndValid(t *testing.T) {
	n := newNonceSource()
	seen := map[string]bool{}
	for range 10_000 {
		var nonce [nonceLen]byte
		n.next(&nonce)
		s := string(nonce[:])
		if seen[s] {
			t.Fatalf("nonce %q repeated", s)
		}
		seen[s] = true
		for _, c := range nonce {
			if c <= ' ' || c > '~' || c == ':' {
				t.Fatalf("nonce %q has byte %q outside printable ASCII without ':'", s, c)
			}
		}
	}
}

func TestPresignPool_FillTakeAndReuse(t *testing.T) {
	machines := testMachines(t, 2)
	pool := newPresignPool(newSigner("/v1/secret/sk_0123456789", machines))
	signed := 0
	pool.fill(10, func() { signed++ })
	if signed != 10 {
		t.Fatalf("fill(10) signed %d, want 10", signed)
	}

	var h signedHeaders
	nonces := map[[nonceLen]byte]bool{}
	for i := range 4 {
		if !pool.take(&h) {
			t.Fatalf("take %d failed with 10 signed", i)
		}
		nonces[h.nonce] = true
		if !verifies(t, machines[h.machine], pool.signer.path, h) {
			t.Errorf("presigned entry %d does not verify", i)
		}
	}

	// Six are left: asking for eight signs only two more, and none of the
	// four already taken comes back.
	signed = 0
	pool.fill(8, func() { signed++ })
	if signed != 2 {
		t.Errorf("top-up to 8 with 6 left signed %d, want 2", signed)
	}
	for i := range 8 {
		if !pool.take(&h) {
			t.Fatalf("take %d after top-up failed", i)
		}
		if nonces[h.nonce] {
			t.Errorf("entry with nonce %q was handed out twice", h.nonce)
		}
		nonces[h.nonce] = true
	}
	if pool.take(&h) {
		t.Error("take succeeded on an empty pool")
	}
}

func TestPresignCount(t *testing.T) {
	cases := []struct {
		name  string
		rate  float64
		floor float64
		d     time.Duration
		want  int
	}{
		{"open loop uses the schedule", 1000, 80_000, 5 * time.Second, 5001},
		{"closed loop uses the floor", 0, 10_000, 2 * time.Second, 20_001},
		{"capped", 0, 80_000, time.Minute, maxPresigned},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := presignCount(c.rate, c.floor, c.d); got != c.want {
				t.Errorf("presignCount = %d, want %d", got, c.want)
			}
		})
	}
}
