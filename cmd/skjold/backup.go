package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skjold-alarm/skjold/cluster"
	"github.com/skjold-alarm/skjold/core/api"
	"github.com/skjold-alarm/skjold/core/breach"
	"github.com/skjold-alarm/skjold/core/state"
)

// ---- backup ----

func backupCmd(c *client) *cobra.Command {
	var apiURL string
	cmd := &cobra.Command{
		Use:   "backup FILE [--api URL]",
		Short: "Save a verified backup of a running node's state into FILE (.tar.gz)",
		Long: `Backup asks a running node for a checkpoint of its state (GET /v1/backup) and writes it to FILE.
Before FILE appears, the download is unpacked and checked against the state hash in its manifest, so
a FILE that exists is complete and verified. FILE is replaced atomically if it exists. See docs/backup.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			base := c.base
			if apiURL != "" {
				base = apiURL
			}
			man, size, err := downloadBackup(cmd.Context(), base, c.user, args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "backup written to %s (%d bytes), verified\n", args[0], size)
			fmt.Fprintf(w, "node:          %s\n", man.Node)
			fmt.Fprintf(w, "applied index: %d\n", man.AppliedIndex)
			fmt.Fprintf(w, "state hash:    %s\n", man.StateHash)
			fmt.Fprintf(w, "created:       %s\n", man.Created.Format("2006-01-02 15:04:05Z07:00"))
			return nil
		},
	}
	cmd.Flags().StringVar(&apiURL, "api", "", "API address of the node to back up (default: --addr)")
	return cmd
}

// downloadBackup fetches a backup into a temporary file next to file, verifies it and renames it to file.
func downloadBackup(ctx context.Context, base, user, file string) (api.BackupManifest, int64, error) {
	var man api.BackupManifest
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/backup", nil)
	if err != nil {
		return man, 0, err
	}
	if user != "" {
		req.Header.Set("X-Skjold-User", user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return man, 0, fmt.Errorf("cannot reach the node at %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		var e struct {
			Error api.Error `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			return man, 0, fmt.Errorf("backup: %w", &apiError{Status: resp.StatusCode, Err: e.Error})
		}
		return man, 0, fmt.Errorf("backup: GET /v1/backup: %s", resp.Status)
	}

	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return man, 0, fmt.Errorf("backup: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	size, err := io.Copy(tmp, resp.Body)
	if err != nil {
		return man, 0, fmt.Errorf("backup: the download from %s broke off after %d bytes: %w", base, size, err)
	}
	if err := tmp.Sync(); err != nil {
		return man, 0, fmt.Errorf("backup: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return man, 0, fmt.Errorf("backup: %w", err)
	}
	check, err := os.MkdirTemp("", "skjold-backup-check-")
	if err != nil {
		return man, 0, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(check)
	man, err = api.UnpackBackup(bufio.NewReaderSize(tmp, 1<<16), check)
	if err != nil {
		return man, 0, fmt.Errorf("backup: the download does not verify: %w", err)
	}
	if idx := resp.Header.Get("X-Skjold-Applied-Index"); idx != "" && idx != strconv.FormatUint(man.AppliedIndex, 10) ||
		resp.Header.Get("X-Skjold-State-Hash") != "" && resp.Header.Get("X-Skjold-State-Hash") != man.StateHash {
		return man, 0, fmt.Errorf("backup: the node announced index %s, hash %s, the archive holds index %d, hash %s",
			idx, resp.Header.Get("X-Skjold-State-Hash"), man.AppliedIndex, man.StateHash)
	}
	if err := tmp.Close(); err != nil {
		return man, 0, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		os.Remove(tmp.Name())
		return man, 0, fmt.Errorf("backup: %w", err)
	}
	done = true
	return man, size, backupSyncDir(dir)
}

// ---- restore ----

func restoreCmd() *cobra.Command {
	var dataDir, nodeID, raftAddr string
	cmd := &cobra.Command{
		Use:   "restore FILE --data-dir DIR --node-id ID --raft-addr ADDR",
		Short: "Restore a backup into a new data directory, as a cluster of one (offline)",
		Long: `Restore unpacks a backup made by "skjold backup" into DIR, which must not hold data, and verifies it
against the state hash in its manifest: a damaged, truncated or altered backup is refused and leaves
nothing behind. DIR is prepared so that a node started on it (node_id = ID, data_dir = DIR, its raft
port at ADDR) comes up as the only voter of a new cluster holding the restored state; other nodes then
join it with empty data directories. Run it while no node uses DIR. See docs/backup.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			man, err := restoreBackup(args[0], dataDir, nodeID, raftAddr)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "restored %s into %s, verified\n", args[0], dataDir)
			fmt.Fprintf(w, "backup of:     node %s, %s\n", man.Node, man.Created.Format("2006-01-02 15:04:05Z07:00"))
			fmt.Fprintf(w, "applied index: %d\n", man.AppliedIndex)
			fmt.Fprintf(w, "state hash:    %s\n", man.StateHash)
			fmt.Fprintf(w, "cluster:       %s at %s, the only voter\n", nodeID, raftAddr)
			fmt.Fprintf(w, "Start the node with node_id = %q, data_dir = %q and its raft port at %s.\n", nodeID, dataDir, raftAddr)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the new data directory (must not exist, or be empty)")
	cmd.Flags().StringVar(&nodeID, "node-id", "", "node_id of the node that will run on it")
	cmd.Flags().StringVar(&raftAddr, "raft-addr", "", "host:port the other nodes reach its raft port at")
	for _, f := range []string{"data-dir", "node-id", "raft-addr"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

// restoreBackup unpacks and verifies file in DIR.tmp-…, seeds the cluster directory and renames the
// result to dataDir. On failure nothing is left behind.
func restoreBackup(file, dataDir, nodeID, raftAddr string) (man api.BackupManifest, err error) {
	if strings.TrimSpace(nodeID) == "" {
		return man, errors.New("restore: --node-id is empty")
	}
	host, port, err := net.SplitHostPort(raftAddr)
	if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p <= 0 || p > 65535 {
		return man, fmt.Errorf("restore: --raft-addr %q is not host:port with a port (the address the other nodes reach this node's raft port at)", raftAddr)
	}
	dataDir = filepath.Clean(dataDir)
	existed := false
	switch fi, err := os.Stat(dataDir); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return man, fmt.Errorf("restore: %w", err)
	case !fi.IsDir():
		return man, fmt.Errorf("restore: %s exists and is not a directory: refusing to restore over it", dataDir)
	default:
		ents, err := os.ReadDir(dataDir)
		if err != nil {
			return man, fmt.Errorf("restore: %w", err)
		}
		if len(ents) > 0 {
			var names []string
			for _, e := range ents[:min(len(ents), 3)] {
				names = append(names, e.Name())
			}
			return man, fmt.Errorf("restore: %s already holds data (%s): refusing to restore over it; restore into a new directory, or move this one away first",
				dataDir, strings.Join(names, ", "))
		}
		existed = true
	}
	f, err := os.Open(file)
	if err != nil {
		return man, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()

	parent := filepath.Dir(dataDir)
	if err := os.MkdirAll(parent, 0o750); err != nil {
		return man, fmt.Errorf("restore: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(dataDir)+".tmp-")
	if err != nil {
		return man, fmt.Errorf("restore: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o750); err != nil {
		return man, fmt.Errorf("restore: %w", err)
	}

	man, err = api.UnpackBackup(bufio.NewReaderSize(f, 1<<16), tmp)
	if err != nil {
		return man, fmt.Errorf("restore: refusing backup %s: %w", file, err)
	}
	if man.AppliedIndex == 0 {
		return man, fmt.Errorf("restore: backup %s holds an empty state (applied index 0): there is nothing to restore; start a new node instead", file)
	}
	stateDir := filepath.Join(tmp, api.BackupStateDir)
	if err := seedRaft(stateDir, filepath.Join(tmp, "raft"), nodeID, raftAddr); err != nil {
		return man, fmt.Errorf("restore: %w", err)
	}
	// Opening the state to seed the cluster must not have changed it.
	if idx, hash, err := state.HashDir(stateDir); err != nil || idx != man.AppliedIndex || hash != man.StateHash {
		return man, fmt.Errorf("restore: the restored state no longer matches the backup (index %d, hash %s, %v)", idx, hash, err)
	}
	for _, d := range []string{stateDir, tmp} {
		if err := backupSyncDir(d); err != nil {
			return man, fmt.Errorf("restore: %w", err)
		}
	}
	if existed {
		if err := os.Remove(dataDir); err != nil {
			return man, fmt.Errorf("restore: %w", err)
		}
	}
	if err := os.Rename(tmp, dataDir); err != nil {
		return man, fmt.Errorf("restore: %w", err)
	}
	return man, backupSyncDir(parent)
}

// seedRaft opens the restored state and seeds a single-voter cluster directory from it.
func seedRaft(stateDir, raftDir, nodeID, raftAddr string) error {
	m, err := state.Open(stateDir, breach.DefaultConfig())
	if err != nil {
		return err
	}
	m.Fatal = func(err error) { panic(err) } // nothing is applied here
	err = cluster.Seed(raftDir, nodeID, raftAddr, restoredMachine{m})
	if cerr := m.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// restoredMachine is the state machine as the cluster package sees it.
type restoredMachine struct{ m *state.Machine }

func (a restoredMachine) ApplyEntries(entries []cluster.Entry) []any {
	in := make([]state.Entry, len(entries))
	for i, e := range entries {
		in[i] = state.Entry{Index: e.Index, Data: e.Data}
	}
	return a.m.Apply(in)
}

func (a restoredMachine) AppliedIndex() uint64      { return a.m.AppliedIndex() }
func (a restoredMachine) Restore(r io.Reader) error { return a.m.Restore(r) }

func (a restoredMachine) Snapshot() (cluster.StateSnapshot, error) {
	s, err := a.m.Snapshot()
	if err != nil {
		return nil, err
	}
	return s, nil
}

func backupSyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
