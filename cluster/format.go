package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// formatFile is the marker file at the root of Config.Dir.
const formatFile = "FORMAT"

// formatName and formatVersion make up the marker's content:
// "skjold-cluster 1\n". Bump formatVersion for any incompatible change of
// the directory layout, the log encoding or the snapshot header.
const (
	formatName    = "skjold-cluster"
	formatVersion = 1
)

// ErrFormat is wrapped by errors about a missing, unreadable or unknown
// format marker.
var ErrFormat = errors.New("unusable cluster directory")

// prepareDir makes sure dir exists and carries a marker this code
// understands. An empty (or missing) dir gets a fresh marker; a dir with
// other files but no marker, or with a marker of another format or version,
// is refused.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cluster: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, formatFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		return checkFormat(path, b)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("cluster: read %s: %w", path, err)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cluster: read %s: %w", dir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), formatFile+".tmp") {
			continue // left over from an interrupted marker write
		}
		return fmt.Errorf("cluster: %s: %w: it holds %q but no %s marker; refusing to use it", dir, ErrFormat, e.Name(), formatFile)
	}
	return writeFormat(dir, path)
}

func checkFormat(path string, b []byte) error {
	s := strings.TrimSpace(string(b))
	name, ver, ok := strings.Cut(s, " ")
	if !ok || name != formatName {
		return fmt.Errorf("cluster: %s: %w: marker is %q, want %q", path, ErrFormat, truncate(s, 64), fmt.Sprintf("%s %d", formatName, formatVersion))
	}
	v, err := strconv.Atoi(ver)
	if err != nil {
		return fmt.Errorf("cluster: %s: %w: bad version %q", path, ErrFormat, truncate(ver, 32))
	}
	if v != formatVersion {
		return fmt.Errorf("cluster: %s: %w: format version %d, this build supports %d", path, ErrFormat, v, formatVersion)
	}
	return nil
}

// writeFormat writes the marker atomically (temp file, fsync, rename, fsync
// of the directory).
func writeFormat(dir, path string) error {
	tmp, err := os.CreateTemp(dir, formatFile+".tmp")
	if err != nil {
		return fmt.Errorf("cluster: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := fmt.Fprintf(tmp, "%s %d\n", formatName, formatVersion); err != nil {
		tmp.Close()
		return fmt.Errorf("cluster: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("cluster: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cluster: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cluster: write %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cluster: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cluster: sync %s: %w", dir, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
