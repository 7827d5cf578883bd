package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Backoff between attempts of an operation that must run on the leader.
const (
	retryMinDelay = 10 * time.Millisecond
	retryMaxDelay = 250 * time.Millisecond
)

var errNoLeader = errors.New("cluster: no known leader")

// onLeader runs local when this node leads, otherwise calls method with body
// on the leader. It tries again, after a short backoff or as soon as the
// leader changes, while there is no leader, the node asked was not (or no
// longer) the leader, or the request certainly did not reach it. With
// idempotent set it also tries again when the outcome of an attempt is
// unknown (the leader lost leadership or the connection broke during the
// call). It gives up when ctx ends or the node shuts down.
func (n *Node) onLeader(ctx context.Context, method string, body []byte, idempotent bool, local func(context.Context) ([]byte, error)) ([]byte, error) {
	delay := retryMinDelay
	var last error
	for {
		if n.isShutdown.Load() {
			return nil, ErrShutdown
		}
		if err := ctx.Err(); err != nil {
			return nil, giveUp(err, last)
		}
		n.mu.Lock()
		changed := n.leaderChanged
		n.mu.Unlock()

		var err error
		if n.IsLeader() {
			var out []byte
			if out, err = local(ctx); err == nil {
				return out, nil
			}
			if !errors.Is(err, ErrNotLeader) && !(idempotent && errors.Is(err, ErrLeadershipLost)) {
				return nil, err
			}
		} else if id, addr := n.Leader(); id != "" && id != n.cfg.NodeID {
			var out []byte
			var sent bool
			if out, sent, err = n.call(ctx, addr, method, body); err == nil {
				return out, nil
			}
			if !retryRemote(err, sent, idempotent) {
				return nil, err
			}
		} else {
			err = errNoLeader
		}
		last = err
		n.logger.Debug("operation on the leader: trying again", "method", method, "error", err, "delay", delay)
		t := time.NewTimer(delay)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
		case <-n.ctx.Done():
		}
		t.Stop()
		delay = min(2*delay, retryMaxDelay)
	}
}

// retryRemote says whether a failed call to the leader may be made again:
// the node was not the leader or was shutting down before acting on the
// request, or the request never left this node.
func retryRemote(err error, sent, idempotent bool) bool {
	var re *RemoteError
	if errors.As(err, &re) {
		switch re.kind {
		case kindNotLeader, kindShutdown:
			return true
		case kindLeadershipLost:
			return idempotent
		}
		return false
	}
	if errors.Is(err, ErrUnreachable) {
		return !sent || idempotent
	}
	return false
}

func giveUp(ctxErr, last error) error {
	if last == nil {
		return ctxErr
	}
	return fmt.Errorf("cluster: %w (last attempt: %v)", ctxErr, last)
}

// Propose applies data on the leader, wherever it is, and returns the state
// machine's result: with a local Apply when this node leads, otherwise by
// forwarding it to the leader, which applies it and sends back the result
// encoded with Config.Results. It returns once the entry is committed and
// applied on the leader (not necessarily here yet: use ReadBarrier).
//
// While there is no leader, or the node asked turns out not to be the
// leader, or the request certainly did not reach it, Propose tries again
// (short backoff) until ctx ends. It never proposes twice: when the outcome
// is unknown it returns an error instead, wrapping ErrLeadershipLost
// (leadership lost or the leader shut down while committing) or
// ErrUnreachable (the connection to the leader broke during the call), or
// ctx's error; the entry may then still be committed. ErrResult (wrapped)
// means the entry was applied but its result did not survive the codec.
func (n *Node) Propose(ctx context.Context, data []byte) (any, error) {
	var res any
	var local bool
	out, err := n.onLeader(ctx, methodPropose, data, false, func(ctx context.Context) ([]byte, error) {
		r, err := n.Apply(ctx, data)
		res, local = r, err == nil
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	if local {
		return res, nil
	}
	r, err := n.results().Decode(out)
	if err != nil {
		return nil, fmt.Errorf("%w: decode: %v", ErrResult, err)
	}
	return r, nil
}

func (n *Node) servePropose(ctx context.Context, data []byte) ([]byte, error) {
	res, err := n.Apply(ctx, data)
	if err != nil {
		return nil, err
	}
	b, err := n.results().Encode(res)
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %v", ErrResult, err)
	}
	return b, nil
}

func (n *Node) results() ResultCodec {
	if n.cfg.Results != nil {
		return n.cfg.Results
	}
	return DefaultResults{}
}

// DefaultResults is the ResultCodec used when Config.Results is nil. It
// carries nil and error values (as an error with the same message) only;
// any other result fails with ErrResult.
type DefaultResults struct{}

func (DefaultResults) Encode(v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return []byte{}, nil
	case error:
		return append([]byte{'E'}, v.Error()...), nil
	}
	return nil, fmt.Errorf("no Config.Results to encode a %T", v)
}

func (DefaultResults) Decode(b []byte) (any, error) {
	switch {
	case len(b) == 0:
		return nil, nil
	case b[0] == 'E':
		return errors.New(string(b[1:])), nil
	}
	return nil, fmt.Errorf("unknown result encoding %q", b[0])
}

// ReadBarrier makes this node's state linearizable for the reads that
// follow it: it asks the leader (itself, or forwarded) for a read index —
// the leader confirms it still leads (VerifyLeader) and reports how far its
// state machine has applied — then waits until the local state machine has
// applied that far. After it returns, the local state reflects every write
// acknowledged before the call. It tries again while there is no leader
// until ctx ends.
func (n *Node) ReadBarrier(ctx context.Context) error {
	out, err := n.onLeader(ctx, methodReadIndex, nil, true, func(ctx context.Context) ([]byte, error) {
		return n.serveReadIndex(ctx)
	})
	if err != nil {
		return err
	}
	if len(out) != 8 {
		return fmt.Errorf("cluster: read index reply of %d bytes", len(out))
	}
	return n.waitApplied(ctx, binary.BigEndian.Uint64(out))
}

// serveReadIndex runs on the leader. The first read of a term waits for a
// raft barrier: a new leader may not have applied entries that its
// predecessor committed and acknowledged. Later reads only confirm
// leadership. The index is the state machine's own applied index (raft's
// advances before the state machine has applied an entry); every node
// applies the same entries at the same indexes, so it means the same
// everywhere.
func (n *Node) serveReadIndex(ctx context.Context) ([]byte, error) {
	if !n.IsLeader() {
		return nil, n.mapErr(raft.ErrNotLeader)
	}
	term := n.raft.CurrentTerm()
	if n.barrierTerm.Load() != term {
		if err := n.Barrier(ctx); err != nil {
			return nil, err
		}
		n.barrierTerm.Store(term)
	}
	if err := n.wait(ctx, n.raft.VerifyLeader()); err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(nil, n.sm.AppliedIndex()), nil
}

// waitApplied waits until the state machine's applied index reaches idx.
func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	for {
		n.appliedMu.Lock()
		ch := n.appliedCh
		n.appliedMu.Unlock()
		cur := n.sm.AppliedIndex()
		if cur >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting to apply up to index %d (at %d): %w", idx, cur, ctx.Err())
		case <-n.ctx.Done():
			return ErrShutdown
		}
	}
}

// notifyApplied wakes waitApplied; the FSM calls it after every change.
func (n *Node) notifyApplied() {
	n.appliedMu.Lock()
	close(n.appliedCh)
	n.appliedCh = make(chan struct{})
	n.appliedMu.Unlock()
}
