package httpapi

import (
	"strings"
	"testing"
	"time"
)

func TestConfig_TimestampWindowRange(t *testing.T) {
	for _, window := range []time.Duration{time.Second, 5 * time.Minute, time.Hour} {
		cfg := DefaultConfig()
		cfg.TimestampWindow = window
		if err := cfg.Validate(); err != nil {
			t.Errorf("window %s: Validate() = %v, want nil", window, err)
		}
	}
	for _, window := range []time.Duration{-time.Second, 0, time.Millisecond, 999 * time.Millisecond, time.Hour + time.Second} {
		cfg := DefaultConfig()
		cfg.TimestampWindow = window
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "TimestampWindow "+window.String()) {
			t.Errorf("window %s: Validate() = %v, want an error naming TimestampWindow and the value", window, err)
		}
	}
}
