package fsm

import (
	"net/netip"
	"time"
)

// lastSeenFutureSlack is how far after the command time a reported
// lastSeenAt may lie. Nodes whose clocks differ more than the clock-skew
// limit stop serving machines, so a larger gap means a bad report.
const lastSeenFutureSlack = int64(time.Minute / time.Millisecond)

// applyRecordLastSeen sets lastSeenAt and lastSeenIp of each machine whose
// report is newer than the stored one. Reports come from every node, so
// an older report that arrives later is skipped, as is a machine purged
// since. It writes no audit entry: the requests themselves are audited.
func applyRecordLastSeen(t *tx, c *Command) (any, error) {
	var p RecordLastSeenPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	if len(p.Entries) > MaxLastSeenBatch {
		return nil, rejectf(ErrInvalid, "%d last-seen entries in one command, limit %d", len(p.Entries), MaxLastSeenBatch)
	}
	for i, e := range p.Entries {
		if err := checkMachineID(e.MachineID); err != nil {
			return nil, err
		}
		if _, err := netip.ParseAddr(e.IP); err != nil {
			return nil, rejectf(ErrInvalid, "entries[%d] ip %q is not an IP address", i, e.IP)
		}
		if e.At <= 0 || e.At > c.Time+lastSeenFutureSlack {
			return nil, rejectf(ErrInvalid, "entries[%d] at %d is not between 1 and the command time %d plus a minute", i, e.At, c.Time)
		}
	}

	updated := 0
	for _, e := range p.Entries {
		m, ok := t.machine(e.MachineID)
		if !ok || e.At <= m.Machine.LastSeenAt {
			continue
		}
		t.updateMachine(m, func(m *Machine) {
			m.LastSeenAt = e.At
			m.LastSeenIP = e.IP
		})
		updated++
	}
	return map[string]int{"updated": updated}, nil
}
