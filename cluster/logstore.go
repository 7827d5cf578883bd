package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Key layout of the Pebble instance behind LogStore. Every key starts with a
// prefix byte; log keys continue with the big-endian index so that Pebble's
// byte order is index order.
const (
	prefixMeta   byte = 0x00
	prefixLog    byte = 0x01
	prefixStable byte = 0x02
)

// logStoreVersion is the layout version recorded under metaVersionKey.
const logStoreVersion byte = 1

// logEntryVersion is the first byte of every encoded log entry.
const logEntryVersion byte = 1

// logEntryHeaderLen is version(1) + index(8) + term(8) + type(1) + appendedAt(8).
const logEntryHeaderLen = 1 + 8 + 8 + 1 + 8

var metaVersionKey = []byte{prefixMeta, 'v', 'e', 'r', 's', 'i', 'o', 'n'}

// errKeyNotFound is returned by the StableStore methods for a missing key.
// Raft compares the message literally ("not found"), so it must not change.
var errKeyNotFound = errors.New("not found")

// ErrCorrupt is wrapped by every error that reports undecodable or
// inconsistent data on disk.
var ErrCorrupt = errors.New("corrupt data")

// LogStore is a raft.LogStore and raft.StableStore on its own Pebble
// instance. Writes that raft relies on for safety (StoreLogs, Set,
// SetUint64, DeleteRange) are synced before they return.
//
// DeleteRange also forces the deleted range out of Pebble's files (memtable
// flush, compaction of the range, WAL rotation) so that truncated entries do
// not linger on disk; see DESIGN.md.
type LogStore struct {
	db   *pebble.DB
	path string

	// purgeMu serialises the flush/compaction that follows a DeleteRange.
	purgeMu sync.Mutex

	// mu is held shared by every operation and exclusively by Close, so
	// that a call racing with Close gets ErrClosed instead of a Pebble panic.
	mu       sync.RWMutex
	closed   bool
	closeErr error
}

// ErrClosed is returned by LogStore methods after Close.
var ErrClosed = errors.New("cluster: log store is closed")

func (s *LogStore) acquire() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *LogStore) release() { s.mu.RUnlock() }

var (
	_ raft.LogStore    = (*LogStore)(nil)
	_ raft.StableStore = (*LogStore)(nil)
)

// OpenLogStore opens or creates a LogStore in dir. An existing directory must
// hold a Pebble database written by this type; anything else is reported as
// an error naming the path.
func OpenLogStore(dir string) (*LogStore, error) {
	return openLogStore(dir, nil)
}

func openLogStore(dir string, logger hclog.Logger) (*LogStore, error) {
	if dir == "" {
		return nil, errors.New("cluster: log store directory is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: create raft log directory %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cluster: read raft log directory %s: %w", dir, err)
	}
	existed := len(ents) > 0
	opts := &pebble.Options{
		FS:     noRecycleFS{vfs.Default},
		Logger: pebbleLogger{logger},
		// Raft keeps few entries around; a small cache is plenty.
		Cache: pebble.NewCache(8 << 20),
	}
	defer opts.Cache.Unref()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: open raft log %s: %w", dir, err)
	}
	s := &LogStore{db: db, path: dir}
	if err := s.checkVersion(existed); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// checkVersion writes the layout version into a newly created store and
// refuses an existing store without it (or with an unknown one): a database
// that existed before but lost its version key has lost data, and must not
// be taken for a fresh one.
func (s *LogStore) checkVersion(existed bool) error {
	v, closer, err := s.db.Get(metaVersionKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		empty, err := s.isEmpty()
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("cluster: raft log %s: %w: database has data but no layout version key", s.path, ErrCorrupt)
		}
		if existed {
			return fmt.Errorf("cluster: raft log %s: %w: existing database has no layout version key (data lost, or an interrupted first start: then remove the directory)", s.path, ErrCorrupt)
		}
		if err := s.db.Set(metaVersionKey, []byte{logStoreVersion}, pebble.Sync); err != nil {
			return fmt.Errorf("cluster: raft log %s: write layout version: %w", s.path, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("cluster: raft log %s: read layout version: %w", s.path, err)
	}
	defer closer.Close()
	if len(v) != 1 || v[0] != logStoreVersion {
		return fmt.Errorf("cluster: raft log %s: %w: unknown layout version %x (supported: %d)", s.path, ErrCorrupt, v, logStoreVersion)
	}
	return nil
}

func (s *LogStore) isEmpty() (bool, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return false, fmt.Errorf("cluster: raft log %s: %w", s.path, err)
	}
	empty := !it.First()
	if err := it.Close(); err != nil {
		return false, fmt.Errorf("cluster: raft log %s: %w", s.path, err)
	}
	return empty, nil
}

// Path returns the directory of the store.
func (s *LogStore) Path() string { return s.path }

// Close closes the Pebble instance. It is safe to call more than once.
func (s *LogStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.closeErr
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		s.closeErr = fmt.Errorf("cluster: close raft log %s: %w", s.path, err)
	}
	return s.closeErr
}

func logKey(index uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

// logUpperBound is the first key after every log key.
var logUpperBound = []byte{prefixLog + 1}

func (s *LogStore) boundIndex(last bool) (uint64, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixLog},
		UpperBound: logUpperBound,
	})
	if err != nil {
		return 0, fmt.Errorf("cluster: raft log %s: %w", s.path, err)
	}
	var ok bool
	if last {
		ok = it.Last()
	} else {
		ok = it.First()
	}
	var idx uint64
	if ok {
		k := it.Key()
		if len(k) != 9 {
			_ = it.Close()
			return 0, fmt.Errorf("cluster: raft log %s: %w: log key %x has length %d", s.path, ErrCorrupt, k, len(k))
		}
		idx = binary.BigEndian.Uint64(k[1:])
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("cluster: raft log %s: %w", s.path, err)
	}
	return idx, nil
}

// FirstIndex returns the first index written, or 0 for an empty log.
func (s *LogStore) FirstIndex() (uint64, error) { return s.boundIndex(false) }

// LastIndex returns the last index written, or 0 for an empty log.
func (s *LogStore) LastIndex() (uint64, error) { return s.boundIndex(true) }

// GetLog reads the entry at index into log. A missing entry gives
// raft.ErrLogNotFound; an undecodable one an error wrapping ErrCorrupt that
// names the index.
func (s *LogStore) GetLog(index uint64, log *raft.Log) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	v, closer, err := s.db.Get(logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("cluster: raft log %s: read entry %d: %w", s.path, index, err)
	}
	defer closer.Close()
	if err := decodeLog(v, log); err != nil {
		return fmt.Errorf("cluster: raft log %s: entry %d: %w: %v", s.path, index, ErrCorrupt, err)
	}
	if log.Index != index {
		return fmt.Errorf("cluster: raft log %s: entry %d: %w: stored entry claims index %d", s.path, index, ErrCorrupt, log.Index)
	}
	return nil
}

// StoreLog stores a single entry.
func (s *LogStore) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs stores entries in one synced batch.
func (s *LogStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	b := s.db.NewBatch()
	defer b.Close()
	var key [9]byte
	key[0] = prefixLog
	var buf []byte
	for _, l := range logs {
		binary.BigEndian.PutUint64(key[1:], l.Index)
		buf = encodeLog(buf[:0], l)
		// Set copies key and value into the batch.
		if err := b.Set(key[:], buf, nil); err != nil {
			return fmt.Errorf("cluster: raft log %s: store entry %d: %w", s.path, l.Index, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("cluster: raft log %s: store entries %d-%d: %w", s.path, logs[0].Index, logs[len(logs)-1].Index, err)
	}
	return nil
}

// DeleteRange deletes the entries min..max inclusive with a synced range
// tombstone, then purges the range from Pebble's files.
func (s *LogStore) DeleteRange(min, max uint64) error {
	if min > max {
		return nil
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	lo := logKey(min)
	hi := logUpperBound
	if max != math.MaxUint64 {
		hi = logKey(max + 1)
	}
	if err := s.db.DeleteRange(lo, hi, pebble.Sync); err != nil {
		return fmt.Errorf("cluster: raft log %s: delete entries %d-%d: %w", s.path, min, max, err)
	}
	if err := s.purge(lo, hi); err != nil {
		return fmt.Errorf("cluster: raft log %s: purge entries %d-%d: %w", s.path, min, max, err)
	}
	return nil
}

// purge makes deleted data physically disappear: compacting the range
// flushes the memtable holding the tombstone and rewrites every table that
// overlaps it without the deleted keys; the second flush rotates the WAL so
// that the log file that carried the deleted entries is dropped (noRecycleFS
// removes recycled WAL files instead of overwriting them in place).
func (s *LogStore) purge(lo, hi []byte) error {
	s.purgeMu.Lock()
	defer s.purgeMu.Unlock()
	if err := s.db.Compact(context.Background(), lo, hi, false); err != nil {
		return err
	}
	return s.db.Flush()
}

func stableKey(key []byte) []byte {
	k := make([]byte, 1+len(key))
	k[0] = prefixStable
	copy(k[1:], key)
	return k
}

// Set stores a stable-store value (synced).
func (s *LogStore) Set(key []byte, val []byte) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	if err := s.db.Set(stableKey(key), val, pebble.Sync); err != nil {
		return fmt.Errorf("cluster: raft log %s: set %q: %w", s.path, key, err)
	}
	return nil
}

// Get returns a stable-store value; a missing key gives an error whose
// message is "not found", as raft expects.
func (s *LogStore) Get(key []byte) ([]byte, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	return s.get(key)
}

func (s *LogStore) get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(stableKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: raft log %s: get %q: %w", s.path, key, err)
	}
	out := bytes.Clone(v)
	if out == nil {
		out = []byte{}
	}
	return out, closer.Close()
}

// SetUint64 stores a stable-store integer (synced).
func (s *LogStore) SetUint64(key []byte, val uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], val)
	return s.Set(key, b[:])
}

// GetUint64 returns a stable-store integer; see Get for missing keys.
func (s *LogStore) GetUint64(key []byte) (uint64, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	return s.getUint64(key)
}

func (s *LogStore) getUint64(key []byte) (uint64, error) {
	v, err := s.get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("cluster: raft log %s: key %q: %w: value has %d bytes, want 8", s.path, key, ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Verify decodes every stored log entry and stable value it knows the shape
// of, and reports the first problem. Open runs it before starting raft so
// that damage is reported up front rather than in the middle of replication.
func (s *LogStore) Verify() error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixLog},
		UpperBound: logUpperBound,
	})
	if err != nil {
		return fmt.Errorf("cluster: raft log %s: %w", s.path, err)
	}
	var (
		l    raft.Log
		prev uint64
	)
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 9 {
			_ = it.Close()
			return fmt.Errorf("cluster: raft log %s: %w: log key %x has length %d", s.path, ErrCorrupt, k, len(k))
		}
		idx := binary.BigEndian.Uint64(k[1:])
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("cluster: raft log %s: read entry %d: %w", s.path, idx, err)
		}
		if err := decodeLog(v, &l); err != nil {
			_ = it.Close()
			return fmt.Errorf("cluster: raft log %s: entry %d: %w: %v", s.path, idx, ErrCorrupt, err)
		}
		if l.Index != idx {
			_ = it.Close()
			return fmt.Errorf("cluster: raft log %s: entry %d: %w: stored entry claims index %d", s.path, idx, ErrCorrupt, l.Index)
		}
		if prev != 0 && idx != prev+1 {
			_ = it.Close()
			return fmt.Errorf("cluster: raft log %s: %w: gap between entries %d and %d", s.path, ErrCorrupt, prev, idx)
		}
		prev = idx
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("cluster: raft log %s: %w", s.path, err)
	}
	for _, key := range [][]byte{[]byte("CurrentTerm"), []byte("LastVoteTerm")} {
		if _, err := s.getUint64(key); err != nil && !errors.Is(err, errKeyNotFound) {
			return err
		}
	}
	return nil
}

// encodeLog appends the version-1 encoding of l to dst:
//
//	version(1) index(8) term(8) type(1) appendedAt(8, UnixNano; MinInt64 = zero time)
//	uvarint(len data) data uvarint(len extensions) extensions
func encodeLog(dst []byte, l *raft.Log) []byte {
	var hdr [logEntryHeaderLen]byte
	hdr[0] = logEntryVersion
	binary.BigEndian.PutUint64(hdr[1:9], l.Index)
	binary.BigEndian.PutUint64(hdr[9:17], l.Term)
	hdr[17] = byte(l.Type)
	at := int64(math.MinInt64)
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	binary.BigEndian.PutUint64(hdr[18:26], uint64(at))
	dst = append(dst, hdr[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(l.Data)))
	dst = append(dst, l.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(l.Extensions)))
	dst = append(dst, l.Extensions...)
	return dst
}

// decodeLog decodes v into l. The returned slices do not alias v.
func decodeLog(v []byte, l *raft.Log) error {
	if len(v) < logEntryHeaderLen {
		return fmt.Errorf("value has %d bytes, shorter than the %d-byte header", len(v), logEntryHeaderLen)
	}
	if v[0] != logEntryVersion {
		return fmt.Errorf("unknown entry encoding version %d", v[0])
	}
	typ := raft.LogType(v[17])
	if typ > raft.LogConfiguration {
		return fmt.Errorf("unknown log type %d", v[17])
	}
	rest := v[logEntryHeaderLen:]
	dataLen, n := binary.Uvarint(rest)
	if n <= 0 || dataLen > uint64(len(rest)-n) {
		return errors.New("bad data length")
	}
	rest = rest[n:]
	data := rest[:dataLen]
	rest = rest[dataLen:]
	extLen, n := binary.Uvarint(rest)
	if n <= 0 || extLen > uint64(len(rest)-n) {
		return errors.New("bad extensions length")
	}
	rest = rest[n:]
	ext := rest[:extLen]
	if len(rest) != int(extLen) {
		return fmt.Errorf("%d trailing bytes", len(rest)-int(extLen))
	}

	// One allocation for both byte slices; capacities are capped so that an
	// append to one cannot overwrite the other.
	buf := make([]byte, len(data)+len(ext))
	copy(buf, data)
	copy(buf[len(data):], ext)
	l.Index = binary.BigEndian.Uint64(v[1:9])
	l.Term = binary.BigEndian.Uint64(v[9:17])
	l.Type = typ
	l.Data, l.Extensions = nil, nil
	if len(data) > 0 {
		l.Data = buf[:len(data):len(data)]
	}
	if len(ext) > 0 {
		l.Extensions = buf[len(data):]
	}
	l.AppendedAt = time.Time{}
	if at := int64(binary.BigEndian.Uint64(v[18:26])); at != math.MinInt64 {
		l.AppendedAt = time.Unix(0, at)
	}
	return nil
}

// noRecycleFS never reuses an obsolete WAL file in place: Pebble would
// overwrite it from the start and leave the tail of old entries readable
// until overwritten. The vfs.FS contract allows creating a fresh file
// instead, provided the old one is removed.
type noRecycleFS struct{ vfs.FS }

func (fs noRecycleFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if err := fs.FS.Remove(oldname); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	return fs.FS.Create(newname, category)
}

// pebbleLogger sends Pebble's messages to an hclog logger (or drops them).
type pebbleLogger struct{ l hclog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l != nil {
		p.l.Debug(fmt.Sprintf(format, args...))
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	if p.l != nil {
		p.l.Error(fmt.Sprintf(format, args...))
	}
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.l != nil {
		p.l.Error(msg)
	}
	panic(msg)
}
