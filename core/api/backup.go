package api

import (
	"archive/tar"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/skjold-alarm/skjold/core/state"
)

// A backup is a gzipped tar: BackupManifestName first, then the files of a Pebble checkpoint of the
// state under BackupStateDir/. The state hash in the manifest is computed from the checkpoint itself,
// so a restore can check the unpacked files against it.
const (
	BackupFormat       = "skjold-backup 1"
	BackupManifestName = "MANIFEST.json"
	BackupStateDir     = "state"
)

// BackupManifest describes a backup.
type BackupManifest struct {
	Format       string    `json:"format"` // BackupFormat
	Node         string    `json:"node"`   // the node it was taken on
	AppliedIndex uint64    `json:"applied_index"`
	StateHash    string    `json:"state_hash"` // as GET /v1/state/hash reports it at AppliedIndex
	StateSchema  string    `json:"state_schema"`
	Created      time.Time `json:"created"` // the node's clock
	Version      string    `json:"version,omitempty"`
}

// BackupScratch is implemented by a backend that names the directory for the temporary checkpoint of
// GET /v1/backup. It should be on the state's file system, where the checkpoint is made of hard links;
// elsewhere (the default is the system's temporary directory) the state is copied there first.
type BackupScratch interface {
	BackupScratchDir() string
}

// backup streams a backup of a fresh checkpoint; the checkpoint is removed afterwards. A failure after
// the answer has started aborts the connection, so the client sees an incomplete archive, never a
// short but well-formed one.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	scratch := os.TempDir()
	if bs, ok := s.b.(BackupScratch); ok && bs.BackupScratchDir() != "" {
		scratch = bs.BackupScratchDir()
		if err := os.MkdirAll(scratch, 0o700); err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "backup: "+err.Error(), "")
			return
		}
	}
	tmp, err := os.MkdirTemp(scratch, "skjold-backup-")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "backup: "+err.Error(), "")
		return
	}
	defer os.RemoveAll(tmp)
	ck := filepath.Join(tmp, BackupStateDir)
	if err := s.b.Machine().Checkpoint(ck); err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "backup: "+err.Error(), "")
		return
	}
	idx, hash, err := state.HashDir(ck)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "backup: "+err.Error(), "")
		return
	}
	ents, err := os.ReadDir(ck)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "backup: "+err.Error(), "")
		return
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			writeError(w, http.StatusInternalServerError, "internal", fmt.Sprintf("backup: checkpoint holds %q, which is not a regular file", e.Name()), "")
			return
		}
	}
	man := BackupManifest{
		Format:       BackupFormat,
		Node:         s.b.Health().Node,
		AppliedIndex: idx,
		StateHash:    hash,
		StateSchema:  state.Schema,
		Created:      s.b.Now().UTC(),
		Version:      buildVersion(),
	}
	mj, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "backup: "+err.Error(), "")
		return
	}
	mj = append(mj, '\n')

	h := w.Header()
	h.Set("Content-Type", "application/gzip")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="skjold-%s-%d.tar.gz"`, man.Node, idx))
	h.Set("X-Skjold-Applied-Index", strconv.FormatUint(idx, 10))
	h.Set("X-Skjold-State-Hash", hash)
	w.WriteHeader(http.StatusOK)
	if err := writeBackup(w, man, mj, ck, ents); err != nil {
		s.log.Error("backup aborted", "applied_index", idx, "err", err)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("backup sent", "applied_index", idx, "state_hash", hash, "by", principal(r, ""))
}

func writeBackup(w io.Writer, man BackupManifest, manifest []byte, dir string, ents []os.DirEntry) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	hdr := func(name string, size int64) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: man.Created}
	}
	if err := tw.WriteHeader(hdr(BackupManifestName, int64(len(manifest)))); err != nil {
		return err
	}
	if _, err := tw.Write(manifest); err != nil {
		return err
	}
	for _, e := range ents {
		if err := addFile(tw, hdr, filepath.Join(dir, e.Name()), BackupStateDir+"/"+e.Name()); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func addFile(tw *tar.Writer, hdr func(string, int64) *tar.Header, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	// The checkpoint's files do not change; a size that does would make the header lie.
	if err := tw.WriteHeader(hdr(name, fi.Size())); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// buildVersion is the module version the binary was built from, or its VCS revision.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev[:min(12, len(rev))] + dirty
}

// ErrBadBackup is wrapped by every UnpackBackup error about the archive itself: damaged, incomplete,
// altered, or not a backup.
var ErrBadBackup = errors.New("not a usable backup")

// maxManifest bounds the manifest read into memory.
const maxManifest = 1 << 20

// UnpackBackup reads a backup archive from r, writes the state's files into dir/BackupStateDir (dir
// must exist; that subdirectory must not) and verifies them: the archive must be complete (gzip
// checksum, tar structure), hold a manifest of this format and schema and nothing but regular files
// under BackupStateDir/, and the unpacked state must have the manifest's applied index and state hash
// (state.HashDir). It returns the manifest. On error the caller removes dir: what was unpacked is not to
// be used.
func UnpackBackup(r io.Reader, dir string) (BackupManifest, error) {
	var man BackupManifest
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadBackup, fmt.Sprintf(format, args...))
	}
	readErr := func(err error) error {
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			return bad("the archive ends early: the file is truncated")
		case errors.Is(err, gzip.ErrChecksum):
			return bad("gzip checksum mismatch: the file is damaged")
		case errors.Is(err, gzip.ErrHeader), errors.Is(err, tar.ErrHeader):
			return bad("the archive is damaged (%v)", err)
		}
		var ce flate.CorruptInputError
		if errors.As(err, &ce) {
			return bad("the compressed data is damaged (%v)", err)
		}
		return fmt.Errorf("read backup: %w", err)
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		if errors.Is(err, gzip.ErrHeader) {
			return man, bad("not a gzip file")
		}
		return man, readErr(err)
	}
	stateDir := filepath.Join(dir, BackupStateDir)
	if err := os.Mkdir(stateDir, 0o750); err != nil {
		return man, fmt.Errorf("unpack backup: %w", err)
	}
	tr := tar.NewReader(gz)
	seen := map[string]bool{}
	haveManifest := false
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return man, readErr(err)
		}
		name := h.Name
		if seen[name] {
			return man, bad("%q appears twice", name)
		}
		seen[name] = true
		switch {
		case n == 0 && name != BackupManifestName:
			return man, bad("the archive does not start with %s (it starts with %q)", BackupManifestName, name)
		case name == BackupManifestName:
			if h.Typeflag != tar.TypeReg || h.Size > maxManifest {
				return man, bad("%s is not a regular file of at most %d bytes", name, maxManifest)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return man, readErr(err)
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&man); err != nil {
				return man, bad("%s: %v", name, err)
			}
			if man.Format != BackupFormat {
				return man, bad("format %q, this version reads %q", man.Format, BackupFormat)
			}
			if man.StateSchema != state.Schema {
				return man, bad("the state has schema %q, this version reads %q", man.StateSchema, state.Schema)
			}
			haveManifest = true
		case h.Typeflag == tar.TypeDir && name == BackupStateDir+"/":
		default:
			base, ok := strings.CutPrefix(name, BackupStateDir+"/")
			if !ok || base == "" || base != path.Base(base) || base == "." || base == ".." || strings.ContainsAny(base, `/\`) {
				return man, bad("unexpected entry %q", name)
			}
			if h.Typeflag != tar.TypeReg {
				return man, bad("%q is not a regular file", name)
			}
			if err := unpackFile(tr, filepath.Join(stateDir, base), h.Size); err != nil {
				if errors.Is(err, errUnpackWrite) {
					return man, err
				}
				return man, readErr(err)
			}
		}
	}
	// Read to the end so that gzip checks its checksum and length.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return man, readErr(err)
	}
	if !haveManifest {
		return man, bad("no %s", BackupManifestName)
	}
	idx, hash, err := state.HashDir(stateDir)
	if err != nil {
		return man, bad("the unpacked state does not open: %v", err)
	}
	if idx != man.AppliedIndex || hash != man.StateHash {
		return man, bad("the unpacked state is at applied index %d with state hash %s, the manifest says index %d, hash %s: the backup is damaged or was altered",
			idx, hash, man.AppliedIndex, man.StateHash)
	}
	return man, nil
}

var errUnpackWrite = errors.New("unpack backup")

func unpackFile(r io.Reader, dst string, size int64) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %v", errUnpackWrite, err)
	}
	if _, err := io.CopyN(f, r, size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("%w: %v", errUnpackWrite, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: %v", errUnpackWrite, err)
	}
	return nil
}
