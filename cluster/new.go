package cluster

import (
	"log/slog"

	"github.com/keyward/keyward/fsm"
)

// New validates cfg and returns a node that replicates into sm. It does no
// I/O; Start does. A nil logger discards logs.
func New(cfg Config, sm *fsm.FSM, logger *slog.Logger) (*Node, error) {
	if sm == nil {
		return newNode(cfg, nil, logger)
	}
	return newNode(cfg, sm, logger)
}
