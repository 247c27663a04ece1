package fsm

import (
	"fmt"
	"log/slog"
)

// pebbleLogger sends Pebble's own messages to slog, so they share the
// process's handler instead of Pebble's default of the log package.
type pebbleLogger struct {
	log *slog.Logger
}

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "source", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "source", "pebble")
}

// Fatalf logs and panics: Pebble calls it on corruption it cannot recover
// from, and expects the call not to return.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "source", "pebble")
	panic("fsm: pebble: " + msg)
}
