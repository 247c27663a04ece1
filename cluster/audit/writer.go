package audit

import (
	"context"
	"errors"
	"time"

	"github.com/keyward/keyward/fsm"
)

// writeJob is a batch of entries to propose, or, with done set, a marker
// that the writer closes once every earlier batch was written.
type writeJob struct {
	entries []fsm.AuditEntry
	done    chan struct{}
}

// retryWait is the pause between proposals while no leader takes them.
const retryWait = 250 * time.Millisecond

// writer proposes batches in order until the loop closes the channel.
func (r *Recorder) writer() {
	defer r.wg.Done()
	for job := range r.batches {
		if job.done != nil {
			close(job.done)
			continue
		}
		r.write(job.entries)
	}
}

// write proposes one batch, retrying while the cluster has no leader. An
// outcome that Raft cannot tell (leadership lost mid-commit) is proposed
// again: the log may then hold the batch twice, with the same UUIDs, which
// is preferred over losing it. The recorder stops retrying when closed.
func (r *Recorder) write(entries []fsm.AuditEntry) {
	payload := fsm.AuditAppendPayload{Entries: entries}
	for attempt := 0; ; attempt++ {
		err := r.propose(payload)
		if err == nil {
			r.metrics.Written.Add(float64(len(entries)))
			return
		}
		if !retryable(err) || r.stopping() {
			r.logger.Error("audit batch lost", "entries", len(entries), "err", err)
			r.drop(int64(len(entries)))
			return
		}
		if attempt%20 == 0 {
			r.logger.Warn("audit batch not written, retrying", "entries", len(entries), "err", err)
		}
		select {
		case <-time.After(retryWait):
		case <-r.stop:
		}
	}
}

func (r *Recorder) propose(p fsm.AuditAppendPayload) error {
	cmd, err := fsm.NewCommand(fsm.CmdAuditAppend, r.cfg.Now().UnixMilli(), fsm.Actor{Kind: fsm.ActorSystem, ID: "audit-recorder"}, p)
	if err != nil {
		return err
	}
	cmd.Node = r.cfg.NodeID
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ApplyTimeout)
	defer cancel()
	resp, err := r.node.Apply(ctx, cmd)
	if err != nil {
		return err
	}
	if err := resp.Err(); err != nil {
		return &rejection{err}
	}
	return nil
}

func (r *Recorder) stopping() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// retryable reports whether a failed proposal may succeed later. A
// rejection by the state machine or an encoding error is final. Any other
// error comes from the cluster (no leader, an unknown outcome, a timeout)
// and may pass.
func retryable(err error) bool {
	var rejected *rejection
	return !errors.As(err, &rejected) && !errors.Is(err, fsm.ErrInvalid)
}

// rejection is a command that the state machine refused.
type rejection struct{ err error }

func (r *rejection) Error() string { return r.err.Error() }
func (r *rejection) Unwrap() error { return r.err }
