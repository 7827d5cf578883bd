package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Entry is one committed log entry handed to the state machine.
type Entry struct {
	Index uint64
	Term  uint64
	Data  []byte
}

// StateMachine is what the cluster needs of the replicated state.
type StateMachine interface {
	// ApplyEntries applies committed entries in order. It must be atomic per
	// call together with the index of the last entry, and must skip entries
	// whose Index <= AppliedIndex() (replay after restart). It returns one
	// result per entry (nil, an error value, or any response object); results
	// are handed back to the proposer by Node.Apply.
	ApplyEntries(entries []Entry) []any
	// AppliedIndex is the index of the last entry applied (durably).
	AppliedIndex() uint64
	// Snapshot captures a consistent, point-in-time view, including the
	// applied index; it is written later, concurrently with ApplyEntries.
	Snapshot() (StateSnapshot, error)
	// Restore replaces the whole state (and the applied index) with a
	// snapshot stream written by StateSnapshot.WriteTo.
	Restore(r io.Reader) error
}

// StateSnapshot is a point-in-time view of the state machine.
type StateSnapshot interface {
	WriteTo(w io.Writer) (int64, error)
	Release()
}

// Every snapshot stream starts with a fixed header recording the state
// machine's applied index at the time of the snapshot. It lets Open decide
// without reading the whole stream whether the state machine is already at
// or past the snapshot (the normal case, no restore) or behind it.
const (
	snapshotMagic     = "SKJSNAP"
	snapshotVersion   = byte(1)
	snapshotHeaderLen = len(snapshotMagic) + 1 + 8
)

func encodeSnapshotHeader(applied uint64) []byte {
	h := make([]byte, snapshotHeaderLen)
	copy(h, snapshotMagic)
	h[len(snapshotMagic)] = snapshotVersion
	binary.BigEndian.PutUint64(h[len(snapshotMagic)+1:], applied)
	return h
}

// readSnapshotHeader consumes the header from r and returns the applied
// index it records.
func readSnapshotHeader(r io.Reader) (uint64, error) {
	h := make([]byte, snapshotHeaderLen)
	if _, err := io.ReadFull(r, h); err != nil {
		return 0, fmt.Errorf("%w: snapshot header: %v", ErrCorrupt, err)
	}
	if string(h[:len(snapshotMagic)]) != snapshotMagic {
		return 0, fmt.Errorf("%w: snapshot does not start with the %q header", ErrCorrupt, snapshotMagic)
	}
	if v := h[len(snapshotMagic)]; v != snapshotVersion {
		return 0, fmt.Errorf("%w: unknown snapshot header version %d", ErrCorrupt, v)
	}
	return binary.BigEndian.Uint64(h[len(snapshotMagic)+1:]), nil
}

// fsmAdapter adapts a StateMachine to raft.BatchingFSM.
type fsmAdapter struct {
	sm        StateMachine
	logger    hclog.Logger
	onApplied func() // called after the state machine changed; may be nil
}

func (f *fsmAdapter) applied() {
	if f.onApplied != nil {
		f.onApplied()
	}
}

var _ raft.BatchingFSM = (*fsmAdapter)(nil)

// ApplyBatch passes the LogCommand entries of logs to the state machine and
// returns its results in position; other entry types get nil.
func (f *fsmAdapter) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	entries := make([]Entry, 0, len(logs))
	pos := make([]int, 0, len(logs))
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		entries = append(entries, Entry{Index: l.Index, Term: l.Term, Data: l.Data})
		pos = append(pos, i)
	}
	if len(entries) == 0 {
		return out
	}
	res := f.sm.ApplyEntries(entries)
	f.applied()
	if len(res) != len(entries) {
		f.logger.Error("state machine returned a wrong number of results",
			"entries", len(entries), "results", len(res))
	}
	for i, p := range pos {
		if i < len(res) {
			out[p] = res[i]
		} else {
			out[p] = fmt.Errorf("cluster: state machine returned no result for entry %d", entries[i].Index)
		}
	}
	return out
}

// Apply implements raft.FSM for single entries.
func (f *fsmAdapter) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// Snapshot is called by raft on its FSM goroutine, so the applied index read
// here is the one the state machine's snapshot captures.
func (f *fsmAdapter) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.sm.Snapshot()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{snap: s, applied: f.sm.AppliedIndex()}, nil
}

// Restore replaces the state machine's state with a snapshot stream (from the
// local snapshot store or sent by the leader).
func (f *fsmAdapter) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	defer f.applied()
	return restoreStateMachine(f.sm, rc)
}

func restoreStateMachine(sm StateMachine, r io.Reader) error {
	want, err := readSnapshotHeader(r)
	if err != nil {
		return err
	}
	if err := sm.Restore(r); err != nil {
		return fmt.Errorf("cluster: state machine restore: %w", err)
	}
	if got := sm.AppliedIndex(); got != want {
		return fmt.Errorf("cluster: state machine reports applied index %d after restoring a snapshot taken at applied index %d", got, want)
	}
	return nil
}

type fsmSnapshot struct {
	snap    StateSnapshot
	applied uint64
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	err := func() error {
		if _, err := sink.Write(encodeSnapshotHeader(s.applied)); err != nil {
			return err
		}
		_, err := s.snap.WriteTo(sink)
		return err
	}()
	if err != nil {
		return errors.Join(fmt.Errorf("cluster: write snapshot: %w", err), sink.Cancel())
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.snap.Release() }
