package state

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Checkpoint writes a Pebble checkpoint of the state into dir, which must not exist yet (its parent is
// created if needed). The memtable is flushed first, so the checkpoint is made of sorted tables (hard
// links where dir is on the same file system as the state) and an almost empty WAL. The checkpoint is
// taken with no apply in progress: it holds exactly the state at one applied index, recorded in it,
// which HashDir reads back together with the state hash. Applies wait while it is taken.
//
// The checkpoint is a complete state directory: Open and HashDir accept it as it is.
func (m *Machine) Checkpoint(dir string) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.db == nil {
		return errors.New("state: closed")
	}
	if err := m.db.Flush(); err != nil {
		return fmt.Errorf("state: checkpoint: flush: %w", err)
	}
	if err := m.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("state: checkpoint into %s: %w", dir, err)
	}
	return nil
}
