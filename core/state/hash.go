package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// Every record the machine stores is replicated: orders, devices, fixes, alarms, repeats, the outbox,
// the hook cursors (moved by receipt entries) and the meta records (schema, applied index, evaluator,
// outbox sequence) are all written by applying log entries and by nothing else. The state hash therefore
// covers every record. Two nodes that applied the same log up to the same index have the same hash,
// whatever the batching; a node that restored a snapshot or a backup taken at that index too.
//
// The hash is the SHA-256 of the records in key order, each as uvarint(len(key)) key uvarint(len(value))
// value. Hash is the same without the index.

// StateHash returns the applied index and the state hash, both taken from one consistent view of the
// store: the hash is exactly that of the state at the index. Applies are held up only while the view is
// taken, not while it is hashed.
func (m *Machine) StateHash() (index uint64, hash string, err error) {
	m.mu.RLock()
	if m.db == nil {
		m.mu.RUnlock()
		return 0, "", errors.New("state: closed")
	}
	snap := m.db.NewSnapshot()
	m.mu.RUnlock()
	defer snap.Close()
	return hashRecords(snap)
}

// HashDir opens the state store in dir read-only (a stopped node's state directory, or an unpacked
// backup) and returns its applied index and state hash, as StateHash would for a machine on it. Nothing
// in dir is written. A directory that holds no state store, another schema or damaged files is an error.
func HashDir(dir string) (index uint64, hash string, err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, "", fmt.Errorf("state: %w", err)
	}
	if !fi.IsDir() {
		return 0, "", fmt.Errorf("state: %s is not a directory", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, "", fmt.Errorf("state: %w", err)
	}
	hasManifest, hasLock := false, false
	for _, e := range ents {
		switch {
		case strings.HasPrefix(e.Name(), "MANIFEST-"):
			hasManifest = true
		case e.Name() == "LOCK":
			hasLock = true
		}
	}
	if !hasManifest {
		return 0, "", fmt.Errorf("state: %s holds no state store (no MANIFEST)", dir)
	}
	// Damaged files are reported by the read that meets them, as an error; the default reaction (the
	// logger's Fatalf) is for a live store.
	db, err := pebble.Open(dir, &pebble.Options{
		ReadOnly:      true,
		Logger:        quietLogger{},
		EventListener: &pebble.EventListener{DataCorruption: func(pebble.DataCorruptionInfo) {}},
	})
	if err != nil {
		return 0, "", fmt.Errorf("state: open %s read-only: %w", dir, err)
	}
	index, hash, err = hashRecords(db)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("state: close %s: %w", dir, cerr)
	}
	// Pebble takes its lock (which keeps a node from writing meanwhile) even read-only, creating the
	// LOCK file; a directory that had none is left as it was.
	if !hasLock {
		os.Remove(filepath.Join(dir, "LOCK"))
	}
	if err != nil {
		return 0, "", fmt.Errorf("state: %s: %w", dir, err)
	}
	return index, hash, nil
}

// hashRecords hashes every record of r and reads the applied index from the same view. It refuses a
// store without this version's schema record: its hash would compare to nothing.
func hashRecords(r reader) (uint64, string, error) {
	h := sha256.New()
	var lb [binary.MaxVarintLen64]byte
	var index uint64
	var schema []byte
	err := scan(r, "", func(k, v []byte) error {
		h.Write(lb[:binary.PutUvarint(lb[:], uint64(len(k)))])
		h.Write(k)
		h.Write(lb[:binary.PutUvarint(lb[:], uint64(len(v)))])
		h.Write(v)
		switch string(k) {
		case kApplied:
			if len(v) != 8 {
				return fmt.Errorf("applied index record is %d bytes, want 8", len(v))
			}
			index = binary.BigEndian.Uint64(v)
		case kSchema:
			schema = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return 0, "", fmt.Errorf("state hash: %w", err)
	}
	switch {
	case schema == nil:
		return 0, "", errors.New("state hash: no schema record: not a Skjold state store, or damaged")
	case string(schema) != Schema:
		return 0, "", fmt.Errorf("state hash: written with state schema %q; this version reads %q", schema, Schema)
	}
	return index, hex.EncodeToString(h.Sum(nil)), nil
}
