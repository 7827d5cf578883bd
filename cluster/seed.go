package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// seedKeyCurrentTerm is raft's stable-store key for the current term (raft does not export it; the name is
// part of raft's on-disk format).
var seedKeyCurrentTerm = []byte("CurrentTerm")

// seedTerm is the term of the seeded snapshot, and the current term Seed records: the first election on
// the seeded node is for term 2.
const seedTerm = 1

// Seed prepares dir, which must not exist or be empty, as the Config.Dir of a single-voter cluster that
// already holds sm's state: the node nodeID, reached by the others at addr, is its only voter. A node
// opened on dir with that NodeID elects itself, without Bootstrap (and Bootstrap set does nothing over
// it), and goes on at the entry after sm's applied index; other servers join it and catch up from the
// seeded snapshot. This is how a backup of the state becomes a cluster again.
//
// The directory gets the layout Open expects (the format marker, an empty log store holding the current
// term, the snapshot store) and one snapshot at raft index = sm.AppliedIndex(), term 1, whose
// configuration is the single voter and whose content is sm's snapshot with the usual header. sm must
// not be applied to meanwhile, and must have applied at least one entry. On failure nothing is left in
// dir.
func Seed(dir, nodeID, addr string, sm StateMachine) (err error) {
	switch {
	case sm == nil:
		return errors.New("cluster: seed: nil state machine")
	case dir == "" || nodeID == "" || addr == "":
		return errors.New("cluster: seed: the directory, node ID and address are required")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("cluster: seed: address %q is not host:port: %w", addr, err)
	}
	applied := sm.AppliedIndex()
	if applied == 0 {
		return errors.New("cluster: seed: the state machine has applied no entry; start an empty node with bootstrap instead")
	}
	ents, err := os.ReadDir(dir)
	created := errors.Is(err, os.ErrNotExist)
	switch {
	case created:
	case err != nil:
		return fmt.Errorf("cluster: seed: %w", err)
	case len(ents) > 0:
		return fmt.Errorf("cluster: seed: %s is not empty (it holds %q): refusing to seed over existing data", dir, ents[0].Name())
	}
	defer func() {
		if err != nil {
			cleanSeed(dir, created)
		}
	}()

	if err := prepareDir(dir); err != nil {
		return err
	}
	logger := hclog.NewNullLogger()
	logs, err := openLogStore(filepath.Join(dir, "log"), logger)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := logs.Close(); err == nil {
			err = cerr
		}
	}()
	// As raft.BootstrapCluster does: the log's state starts in term 1.
	if err := logs.SetUint64(seedKeyCurrentTerm, seedTerm); err != nil {
		return fmt.Errorf("cluster: seed: %w", err)
	}
	snapDir := filepath.Join(dir, "snapshots")
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, snapshotRetain, logger)
	if err != nil {
		return fmt.Errorf("cluster: seed: snapshot store %s: %w", snapDir, err)
	}

	snap, err := sm.Snapshot()
	if err != nil {
		return fmt.Errorf("cluster: seed: state machine snapshot: %w", err)
	}
	if got := sm.AppliedIndex(); got != applied {
		snap.Release()
		return fmt.Errorf("cluster: seed: the state machine applied entries while being seeded (index %d, then %d)", applied, got)
	}
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter,
		ID:       raft.ServerID(nodeID),
		Address:  raft.ServerAddress(addr),
	}}}
	// The store encodes the voters in its legacy peers field through a transport; an in-memory one,
	// used for nothing else, does that.
	_, trans := raft.NewInmemTransport(raft.ServerAddress(addr))
	defer trans.Close()
	sink, err := snaps.Create(raft.SnapshotVersionMax, applied, seedTerm, conf, applied, trans)
	if err != nil {
		snap.Release()
		return fmt.Errorf("cluster: seed: create snapshot in %s: %w", snapDir, err)
	}
	fs := &fsmSnapshot{snap: snap, applied: applied}
	err = fs.Persist(sink)
	fs.Release()
	if err != nil {
		return fmt.Errorf("cluster: seed: %w", err)
	}

	// What Open will check, checked now.
	if err := logs.Verify(); err != nil {
		return err
	}
	if err := reconcile(sm, logs, snaps, snapDir, logger); err != nil {
		return fmt.Errorf("cluster: seed: the seeded directory does not open: %w", err)
	}
	if has, err := raft.HasExistingState(logs, logs, snaps); err != nil || !has {
		return fmt.Errorf("cluster: seed: raft does not see the seeded state in %s (%v)", dir, err)
	}
	return syncDir(dir)
}

// cleanSeed removes what a failed Seed wrote: the whole directory if Seed created it, else its contents.
func cleanSeed(dir string, created bool) {
	if created {
		os.RemoveAll(dir)
		return
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
