package cluster

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// retention enforces Config.LogRetention. Raft alone truncates the log only
// after SnapshotThreshold new entries and always keeps TrailingLogs entries,
// so at a low write rate entries would stay on disk indefinitely.
//
// Every tick (LogRetention/4) it records the log's last index with the local
// monotonic time. An entry stored at time s is covered by a mark taken no
// later than s+tick, and that mark becomes due LogRetention/2 after it was
// taken, i.e. by a tick no later than s+2*tick+LogRetention/2 = s+LogRetention.
// A due mark's index is snapshotted (if the latest snapshot does not cover
// it yet) and the log is deleted up to it; DeleteRange purges the range
// from Pebble's files.
//
// Entries not yet applied locally (uncommitted, or a follower cut off from
// the leader) cannot be covered by a snapshot and stay until they are.
type retention struct {
	n      *Node
	max    time.Duration
	tick   time.Duration
	marks  []retentionMark
	stopCh chan struct{}
	done   chan struct{}
}

type retentionMark struct {
	at   time.Time
	last uint64
}

func newRetention(n *Node, max time.Duration) *retention {
	tick := max / 4
	if tick < 10*time.Millisecond {
		tick = 10 * time.Millisecond
	}
	return &retention{
		n:      n,
		max:    max,
		tick:   tick,
		stopCh: make(chan struct{}),
		done:   make(chan struct{}),
	}
}

func (r *retention) run() {
	defer close(r.done)
	t := time.NewTicker(r.tick)
	defer t.Stop()
	for {
		select {
		case <-r.stopCh:
			return
		case now := <-t.C:
			r.sweep(now)
		}
	}
}

// stop ends run and waits for a sweep in progress.
func (r *retention) stop() {
	close(r.stopCh)
	<-r.done
}

func (r *retention) sweep(now time.Time) {
	logger := r.n.logger
	last, err := r.n.logs.LastIndex()
	if err != nil {
		logger.Warn("log retention: read last index", "error", err)
		return
	}
	r.marks = append(r.marks, retentionMark{at: now, last: last})

	due := -1
	for i, m := range r.marks {
		if now.Sub(m.at) < r.max/2 {
			break
		}
		due = i
	}
	if due < 0 {
		return
	}
	// Keep the due mark until a newer one is due, so that a failed sweep is
	// retried on the next tick.
	r.marks = r.marks[due:]
	target := r.marks[0].last

	first, err := r.n.logs.FirstIndex()
	if err != nil {
		logger.Warn("log retention: read first index", "error", err)
		return
	}
	if first == 0 || first > target {
		return
	}
	snapIdx, err := r.latestSnapshotIndex()
	if err != nil {
		logger.Warn("log retention: list snapshots", "error", err)
		return
	}
	if snapIdx < target {
		err := r.n.raft.Snapshot().Error()
		if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
			logger.Warn("log retention: snapshot", "error", err)
			return
		}
		if snapIdx, err = r.latestSnapshotIndex(); err != nil {
			logger.Warn("log retention: list snapshots", "error", err)
			return
		}
	}
	upTo := min(target, snapIdx)
	if upTo < first {
		return
	}
	if err := r.n.logs.DeleteRange(first, upTo); err != nil {
		logger.Warn("log retention: delete entries", "from", first, "to", upTo, "error", err)
		return
	}
	logger.Debug("log retention: deleted entries", "from", first, "to", upTo)
}

func (r *retention) latestSnapshotIndex() (uint64, error) {
	metas, err := r.n.snaps.List()
	if err != nil || len(metas) == 0 {
		return 0, err
	}
	return metas[0].Index, nil
}
