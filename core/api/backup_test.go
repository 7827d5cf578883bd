package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/core/breach"
	"github.com/skjold-alarm/skjold/core/order"
	"github.com/skjold-alarm/skjold/core/state"
)

// bkNode is a node of one without Raft: each proposal is the next log entry, applied at once to a
// real state machine.
type bkNode struct {
	mu   sync.Mutex
	m    *state.Machine
	next uint64
	now  time.Time
}

func (b *bkNode) Propose(_ context.Context, entry []byte) (any, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	return b.m.Apply([]state.Entry{{Index: b.next, Data: entry}})[0], nil
}

func (b *bkNode) Machine() *state.Machine { return b.m }
func (b *bkNode) Health() Health {
	return Health{Status: "ok", Node: "api-test", Plugins: []PluginHealth{}}
}
func (b *bkNode) Now() time.Time { return b.now }

// bkScratchNode also names where backups put their checkpoint.
type bkScratchNode struct {
	*bkNode
	dir string
}

func (s bkScratchNode) BackupScratchDir() string { return s.dir }

var bkNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newBkNode(t *testing.T) *bkNode {
	t.Helper()
	m, err := state.Open(filepath.Join(t.TempDir(), "state"), breach.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	m.Fatal = func(err error) { panic(err) }
	t.Cleanup(func() { m.Close() })
	return &bkNode{m: m, now: bkNow}
}

func bkServe(t *testing.T, b Backend) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(b, nil, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	return srv
}

const bkOrder = `{
  "id": "ord-1", "reference": "REF-1", "basis": "straffeloven-57", "valid_from": "2020-01-01T00:00:00Z",
  "offender": {"device": "tag-1"}, "protected": [{"device": "unit-1"}],
  "zones": [{"id": "home", "kind": "exclusion", "warning_m": 200,
    "geometry": {"type": "Polygon", "coordinates": [[[10.75,59.91],[10.76,59.91],[10.76,59.92],[10.75,59.91]]]}}]
}`

func bkCall(t *testing.T, srv *httptest.Server, method, path, body string, out any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp
}

// bkPopulate creates an order and walks its offender into the zone: there are alarms.
func bkPopulate(t *testing.T, srv *httptest.Server) {
	t.Helper()
	bkCall(t, srv, "POST", "/v1/orders", bkOrder, nil)
	for i := 0; i < 4; i++ {
		at := bkNow.Add(time.Duration(i) * 5 * time.Second).Format(time.RFC3339)
		bkCall(t, srv, "POST", "/v1/observations", fmt.Sprintf(`[{"device": "tag-1", "time": %q, "lat": 59.9105, "lon": 10.758, "accuracy_m": 5}]`, at), nil)
	}
	var alarms struct{ Alarms []json.RawMessage }
	bkCall(t, srv, "GET", "/v1/alarms", "", &alarms)
	if len(alarms.Alarms) == 0 {
		t.Fatal("no alarm raised")
	}
}

func bkGetBackup(t *testing.T, srv *httptest.Server) ([]byte, *http.Response) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + "/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/backup: %s: %s", resp.Status, data)
	}
	return data, resp
}

func TestBackupRoute(t *testing.T) {
	b := newBkNode(t)
	scratch := filepath.Join(t.TempDir(), "scratch")
	srv := bkServe(t, bkScratchNode{b, scratch})
	bkPopulate(t, srv)
	idx, h, _ := b.m.StateHash()

	data, resp := bkGetBackup(t, srv)
	if ct := resp.Header.Get("Content-Type"); ct != "application/gzip" {
		t.Fatalf("content type %q", ct)
	}
	if resp.Header.Get("X-Skjold-Applied-Index") != fmt.Sprint(idx) || resp.Header.Get("X-Skjold-State-Hash") != h {
		t.Fatalf("headers %v", resp.Header)
	}
	if ents, err := os.ReadDir(scratch); err != nil || len(ents) != 0 {
		t.Fatalf("the temporary checkpoint was not removed: %v %v", ents, err)
	}

	dir := t.TempDir()
	man, err := UnpackBackup(bytes.NewReader(data), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := BackupManifest{Format: BackupFormat, Node: "api-test", AppliedIndex: idx, StateHash: h, StateSchema: state.Schema, Created: bkNow, Version: man.Version}
	if man != want {
		t.Fatalf("manifest %+v, want %+v", man, want)
	}
	// The unpacked state is the node's state: a machine opens on it with the same orders and alarms.
	m, err := state.Open(filepath.Join(dir, BackupStateDir), breach.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if i, hh, _ := m.StateHash(); i != idx || hh != h {
		t.Fatalf("restored machine %d %s", i, hh)
	}
	var live, restored []order.Order
	var liveAlarms, restoredAlarms int
	b.m.View(func(ev *breach.Evaluator) { live, liveAlarms = ev.Orders(), len(ev.Alarms(false, "")) })
	m.View(func(ev *breach.Evaluator) { restored, restoredAlarms = ev.Orders(), len(ev.Alarms(false, "")) })
	lj, _ := json.Marshal(live)
	rj, _ := json.Marshal(restored)
	if !bytes.Equal(lj, rj) || liveAlarms != restoredAlarms || liveAlarms == 0 {
		t.Fatalf("orders %s vs %s; alarms %d vs %d", lj, rj, liveAlarms, restoredAlarms)
	}
}

// A backup taken while entries are applied is the state at one index, whatever that index is.
func TestBackupWhileWriting(t *testing.T) {
	b := newBkNode(t)
	srv := bkServe(t, b)
	bkPopulate(t, srv)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			entry, _ := state.Tick(breach.Tick{At: bkNow.Add(time.Minute + time.Duration(i)*time.Second)})
			b.Propose(context.Background(), entry)
		}
	}()
	defer func() { close(stop); <-done }()
	for i := 0; i < 5; i++ {
		data, _ := bkGetBackup(t, srv)
		if _, err := UnpackBackup(bytes.NewReader(data), t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
}

// bkRewrite rebuilds an archive with edit applied to each entry's header and content.
func bkRewrite(t *testing.T, data []byte, edit func(h *tar.Header, body []byte) []byte) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	gw := gzip.NewWriter(&out)
	tw := tar.NewWriter(gw)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		body = edit(h, body)
		if body == nil {
			continue
		}
		h.Size = int64(len(body))
		tw.WriteHeader(h)
		tw.Write(body)
	}
	tw.Close()
	gw.Close()
	return out.Bytes()
}

func TestUnpackBackupRefusesBadArchives(t *testing.T) {
	b := newBkNode(t)
	srv := bkServe(t, b)
	bkPopulate(t, srv)
	good, _ := bkGetBackup(t, srv)

	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	cases := map[string]struct {
		data []byte
		want string
	}{
		"flipped byte":   {flipped, "damaged"},
		"truncated half": {good[:len(good)/2], "truncated"},
		"truncated tail": {good[:len(good)-4], "truncated"},
		"not gzip":       {[]byte("hello, this is not a backup"), "not a gzip file"},
		"empty":          {nil, "truncated"},
		"altered hash": {bkRewrite(t, good, func(h *tar.Header, body []byte) []byte {
			if h.Name == BackupManifestName {
				return bytes.Replace(body, []byte(`"state_hash": "`), []byte(`"state_hash": "00`), 1)
			}
			return body
		}), "damaged or was altered"},
		"altered index": {bkRewrite(t, good, func(h *tar.Header, body []byte) []byte {
			if h.Name == BackupManifestName {
				var m BackupManifest
				json.Unmarshal(body, &m)
				m.AppliedIndex++
				body, _ = json.Marshal(m)
			}
			return body
		}), "damaged or was altered"},
		"altered state file": {bkRewrite(t, good, func(h *tar.Header, body []byte) []byte {
			if strings.HasSuffix(h.Name, ".sst") {
				body[len(body)/3] ^= 0x01
			}
			return body
		}), ""},
		"state file missing": {bkRewrite(t, good, func(h *tar.Header, body []byte) []byte {
			if strings.HasSuffix(h.Name, ".sst") {
				return nil
			}
			return body
		}), "does not open"},
		"escaping path": {bkRewrite(t, good, func(h *tar.Header, body []byte) []byte {
			if strings.HasPrefix(h.Name, BackupStateDir+"/OPTIONS") {
				h.Name = BackupStateDir + "/../../evil"
			}
			return body
		}), "unexpected entry"},
		"no manifest": {bkRewrite(t, good, func(h *tar.Header, body []byte) []byte {
			if h.Name == BackupManifestName {
				return nil
			}
			return body
		}), "does not start with MANIFEST.json"},
		"other format": {bkRewrite(t, good, func(h *tar.Header, body []byte) []byte {
			if h.Name == BackupManifestName {
				return bytes.Replace(body, []byte(BackupFormat), []byte("skjold-backup 9"), 1)
			}
			return body
		}), `format "skjold-backup 9"`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := UnpackBackup(bytes.NewReader(c.data), dir)
			if !errors.Is(err, ErrBadBackup) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("UnpackBackup: %v; want ErrBadBackup saying %q", err, c.want)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "evil")); err == nil {
				t.Fatal("a file was written outside the directory")
			}
		})
	}
	// The good one passes.
	if _, err := UnpackBackup(bytes.NewReader(good), t.TempDir()); err != nil {
		t.Fatal(err)
	}
}
