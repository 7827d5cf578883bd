package state

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/cockroachdb/pebble/v2"

	"github.com/skjold-alarm/skjold/core/breach"
)

// A snapshot stream is: the magic line, then records (uvarint key length, key, uvarint value length,
// value), then a zero key length and the SHA-256 of everything before it. Restore checks the hash before it
// replaces anything.
const snapshotMagic = "SKJOLD-SNAPSHOT 1\n"

// Snapshot is a consistent view of the state, written while applies go on.
type Snapshot struct {
	snap *pebble.Snapshot
}

// Snapshot captures the state as of the last applied entry.
func (m *Machine) Snapshot() (*Snapshot, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.db == nil {
		return nil, errors.New("state: closed")
	}
	return &Snapshot{snap: m.db.NewSnapshot()}, nil
}

// WriteTo streams the snapshot.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(cw, h), 1<<16)
	if _, err := bw.WriteString(snapshotMagic); err != nil {
		return cw.n, err
	}
	var lb [binary.MaxVarintLen64]byte
	err := scan(s.snap, "", func(k, v []byte) error {
		if _, err := bw.Write(lb[:binary.PutUvarint(lb[:], uint64(len(k)))]); err != nil {
			return err
		}
		bw.Write(k)
		bw.Write(lb[:binary.PutUvarint(lb[:], uint64(len(v)))])
		_, err := bw.Write(v)
		return err
	})
	if err != nil {
		return cw.n, fmt.Errorf("state snapshot: %w", err)
	}
	bw.WriteByte(0)
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	_, err = cw.Write(h.Sum(nil))
	return cw.n, err
}

// Release frees the snapshot.
func (s *Snapshot) Release() { s.snap.Close() }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Restore replaces the whole state with a snapshot stream. A damaged stream changes nothing.
func (m *Machine) Restore(r io.Reader) error {
	h := sha256.New()
	br := bufio.NewReaderSize(r, 1<<16)
	tr := &hashReader{r: br, h: h}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(tr, magic); err != nil || string(magic) != snapshotMagic {
		return fmt.Errorf("state restore: not a Skjold snapshot (bad header)")
	}
	b := m.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange([]byte{0}, []byte{0xff}, nil); err != nil {
		return err
	}
	schemaSeen := false
	for n := 0; ; n++ {
		kl, err := binary.ReadUvarint(tr)
		if err != nil {
			return fmt.Errorf("state restore: record %d: %w", n, err)
		}
		if kl == 0 {
			break
		}
		if kl > 1<<20 {
			return fmt.Errorf("state restore: record %d: key length %d is implausible", n, kl)
		}
		k := make([]byte, kl)
		if _, err := io.ReadFull(tr, k); err != nil {
			return fmt.Errorf("state restore: record %d: %w", n, err)
		}
		vl, err := binary.ReadUvarint(tr)
		if err != nil || vl > 1<<30 {
			return fmt.Errorf("state restore: record %d (%q): bad value length", n, k)
		}
		v := make([]byte, vl)
		if _, err := io.ReadFull(tr, v); err != nil {
			return fmt.Errorf("state restore: record %d (%q): %w", n, k, err)
		}
		if string(k) == kSchema {
			if string(v) != Schema {
				return fmt.Errorf("state restore: snapshot has schema %q; this version reads %q", v, Schema)
			}
			schemaSeen = true
		}
		b.Set(k, v, nil)
	}
	want := h.Sum(nil)
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(br, got); err != nil {
		return fmt.Errorf("state restore: missing checksum: %w", err)
	}
	if hex.EncodeToString(got) != hex.EncodeToString(want) {
		return fmt.Errorf("state restore: checksum mismatch: the snapshot is damaged")
	}
	if !schemaSeen {
		return fmt.Errorf("state restore: snapshot has no schema record")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("state restore: %w", err)
	}
	m.ev = breach.New(m.ev.Config())
	m.applied, m.outboxSeq, m.cursors = 0, 0, map[string]uint64{}
	if err := m.load(); err != nil {
		return fmt.Errorf("state restore: %w", err)
	}
	return nil
}

type hashReader struct {
	r *bufio.Reader
	h hash.Hash
}

func (t *hashReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.h.Write(p[:n])
	return n, err
}

func (t *hashReader) ReadByte() (byte, error) {
	c, err := t.r.ReadByte()
	if err == nil {
		t.h.Write([]byte{c})
	}
	return c, err
}

// Hash is the SHA-256 of every record, in key order: equal on two nodes exactly when their states are.
func (m *Machine) Hash() (string, error) {
	_, h, err := m.StateHash()
	return h, err
}

// Dump returns every record as key → value, for tests and diagnostics.
func (m *Machine) Dump() (map[string]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := map[string]string{}
	err := scan(m.db, "", func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	})
	return out, err
}
