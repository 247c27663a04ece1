package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// peerSender delivers event batches to one peer over the forwarding
// channel, one request at a time and in order. While a request is in
// flight new batches queue up, so under load each request carries many
// batches without any fixed delay. An unreachable peer is retried with a
// doubling pause, and its queue is bounded by peerQueueBytes.
type peerSender struct {
	node   *Node
	id     raft.ServerID
	wake   chan struct{}
	cancel context.CancelFunc

	mu sync.Mutex
	// addr is the peer's Raft address; gossip may change it.
	addr string
	// queue holds the batches not yet acknowledged, oldest first, and
	// queued their total size.
	queue  []*eventBlob
	queued int
}

func newPeerSender(n *Node, id raft.ServerID, addr string) *peerSender {
	return &peerSender{node: n, id: id, addr: addr, wake: make(chan struct{}, 1)}
}

func (s *peerSender) setAddr(addr string) {
	s.mu.Lock()
	s.addr = addr
	s.mu.Unlock()
}

// enqueue adds a batch and drops the oldest ones beyond peerQueueBytes.
func (s *peerSender) enqueue(b *eventBlob) {
	s.mu.Lock()
	s.queue = append(s.queue, b)
	s.queued += len(b.data)
	dropped := 0
	for s.queued > peerQueueBytes && len(s.queue) > 1 {
		s.queued -= len(s.queue[0].data)
		s.queue[0] = nil
		s.queue = s.queue[1:]
		dropped++
	}
	s.mu.Unlock()
	if dropped > 0 {
		s.node.metrics.eventsDropped.Add(float64(dropped))
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next returns the queued batches that fit in one request, the number of
// queue entries they cover (expired nonce batches are skipped, not sent)
// and the peer's address.
func (s *peerSender) next(now time.Time) ([]byte, int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nowMs := now.UnixMilli()
	var payload []byte
	batches := 0
	for _, b := range s.queue {
		if len(payload) > 0 && len(payload)+len(b.data) > maxEventFrame {
			break
		}
		batches++
		if b.expires != 0 && b.expires <= nowMs {
			continue
		}
		payload = append(payload, b.data...)
	}
	return payload, batches, s.addr
}

// done removes the first count queue entries once the peer acknowledged
// them.
func (s *peerSender) done(count int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < count && len(s.queue) > 0; i++ {
		s.queued -= len(s.queue[0].data)
		s.queue[0] = nil
		s.queue = s.queue[1:]
	}
}

func (s *peerSender) run(ctx context.Context) {
	pause := peerRetryInitial
	for {
		payload, batches, addr := s.next(time.Now())
		if batches == 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			}
			continue
		}
		if len(payload) > 0 {
			if err := s.send(ctx, addr, payload); err != nil {
				s.node.logger.Debug("peer events not delivered, retrying", keyPeerID, string(s.id), keyErr, err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(pause):
				}
				pause = min(2*pause, peerRetryMax)
				continue
			}
		}
		pause = peerRetryInitial
		s.done(batches)
	}
}

// peerRetryInitial is the first pause after a failed delivery.
const peerRetryInitial = 50 * time.Millisecond

func (s *peerSender) send(ctx context.Context, addr string, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.node.cfg.TransportTimeout)
	defer cancel()
	req := &request{kind: kindPeerEvents, hops: 1, timeout: timeLeft(ctx), origin: s.node.cfg.NodeID, payload: payload}
	res, err := s.node.forwarder.roundTrip(ctx, addr, req)
	if err != nil {
		return err
	}
	if res.status != statusOK {
		return errorFromStatus(res, string(s.id))
	}
	s.node.metrics.eventBatchesSent.Inc()
	return nil
}
