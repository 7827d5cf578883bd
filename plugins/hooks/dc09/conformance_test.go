package dc09_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/skjold-alarm/skjold/plugins/hooks/dc09"
	"github.com/skjold-alarm/skjold/plugins/plugintest"
)

// The real binary through the conformance kit, against the receiver emulator (encrypted, over TCP).
func TestConformanceKit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the plugin binary")
	}
	bin := filepath.Join(t.TempDir(), "skjold-hook-dc09")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/skjold-alarm/skjold/plugins/hooks/dc09/cmd/skjold-hook-dc09").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	key := "000102030405060708090A0B0C0D0E0F"
	r := startReceiver(t, mustHexKey(t, key))
	cfg, _ := json.Marshal(map[string]any{"address": r.TCPAddr(), "account": "1234", "key": key, "receiver": "12", "supervision_s": 30})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep := plugintest.Run(ctx, plugintest.Options{Path: bin, Config: cfg})
	if rep.Failed() {
		t.Fatalf("conformance:\n%s", rep)
	}
	// The kit's deliveries reached the receiver: its raised breach, once (the duplicate is not sent again).
	var breaches int
	for _, g := range r.All() {
		if g.Err != nil {
			t.Fatalf("unreadable frame %q: %v", g.Raw, g.Err)
		}
		if g.Frame.ID == dc09.IDSIA {
			breaches++
			if !g.Frame.Encrypted || g.Frame.Data != "#1234|Nri1/BA"+zone("home")+"|Aalm-plugintest" {
				t.Fatalf("frame %+v", g.Frame)
			}
		}
	}
	if breaches != 1 {
		t.Fatalf("%d breach frames at the receiver, want 1", breaches)
	}
}

func mustHexKey(t *testing.T, s string) []byte {
	t.Helper()
	f, errs := dc09.ParseConfig([]byte(`{"address":"x:1","account":"123","key":"` + s + `"}`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return f.Key
}
