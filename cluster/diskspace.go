package cluster

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// startSpacePoll is how often WaitForStartSpace reads the free space again.
const startSpacePoll = 2 * time.Second

// WaitForStartSpace blocks until the volume of dataDir has at least a
// quarter of reserve bytes free, logging every 30 s while it waits, and
// returns nil, or the context's error when ctx ends first. It first
// deletes the reserve file that a previous run allocated (half the
// reserve), which is usually enough to go on at once.
//
// Call it before opening the state machine. Pebble replays its write-ahead
// log into a new table when it opens and treats a failed write there as
// fatal, so without the wait a node started on a full volume would crash
// on every start. A quarter of the reserve (8 MiB by default) holds
// Pebble's preallocated WAL and the table it flushes while it opens.
// A volume that does not report its free space, and a zero reserve, do
// not wait.
func WaitForStartSpace(ctx context.Context, dataDir string, reserve int64, logger *slog.Logger) error {
	need := uint64(reserve / 4)
	var lastLog time.Time
	for {
		free, err := freeDiskBytes(dataDir)
		if err != nil || free >= need {
			return nil
		}
		// The reserve file is kept for this moment; the node allocates it
		// again once the volume has room.
		path := filepath.Join(dataDir, reserveFileName)
		if err := os.Remove(path); err == nil {
			logger.Warn("deleted the disk reserve file to start on a full volume", "path", path, "free", formatBytes(free))
			continue
		}
		if time.Since(lastLog) >= 30*time.Second {
			lastLog = time.Now()
			logger.Error("data volume is full; waiting for free space before opening the stores",
				"data_dir", dataDir, "free", formatBytes(free), "need", formatBytes(need))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(startSpacePoll):
		}
	}
}
