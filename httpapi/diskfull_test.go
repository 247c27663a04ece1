package httpapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/cluster"
)

func TestErrors_DiskFullIsInsufficientStorage(t *testing.T) {
	err := applyError(fmt.Errorf("%w: node n2: the volume of data dir /var/lib/keyward has 0 bytes free", cluster.ErrDiskFull), 10*time.Second)
	status, code := statusFor(err)
	if status != fasthttp.StatusInsufficientStorage || code != "insufficient_storage" {
		t.Errorf("status of a disk-full write = %d %q, want 507 insufficient_storage", status, code)
	}
	msg := clientMessage(err, status)
	for _, want := range []string{"not applied", "n2", "/var/lib/keyward", "Retry"} {
		if !strings.Contains(msg, want) {
			t.Errorf("client message %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "cluster: ") {
		t.Errorf("client message %q keeps the package prefix", msg)
	}
}
