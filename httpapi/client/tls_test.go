package client

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestClient_CAFileTrustsServer(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"nodeId":"n1","state":"leader","leaderId":"n1","appliedIndex":7}`)
	}))
	t.Cleanup(srv.Close)

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("with CA file", func(t *testing.T) {
		c, err := New(srv.URL, WithCAFile(caFile))
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.Health(context.Background())
		if err != nil {
			t.Fatalf("Health: %v", err)
		}
		if h.AppliedIndex != 7 || h.State != "leader" {
			t.Errorf("health = %+v", h)
		}
	})

	t.Run("without CA file", func(t *testing.T) {
		c, err := New(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Health(context.Background()); err == nil {
			t.Errorf("a server with an unknown CA was trusted")
		}
	})

	t.Run("file without certificates", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "empty.pem")
		if err := os.WriteFile(empty, []byte("nothing here\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := New(srv.URL, WithCAFile(empty)); err == nil {
			t.Errorf("New accepted a CA file without certificates")
		}
	})
}
