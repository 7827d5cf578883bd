package breach

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/skjold-alarm/skjold/core/device"
)

// TestSortDevKeysOrdersByID checks the radix sort of a batch's changed devices against sorting the ids,
// for batch sizes on both sides of the insertion-sort cut-off, ids shorter and longer than the 16-byte key,
// ids sharing their first 16 bytes and ids differing in any byte.
func TestSortDevKeysOrdersByID(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var keys, tmp []devKey
	for round := 0; round < 400; round++ {
		n := rng.IntN(300)
		seen := map[string]bool{}
		var ids []string
		for len(ids) < n {
			var id string
			switch rng.IntN(5) {
			case 0:
				id = fmt.Sprintf("tag-%06d", rng.IntN(50000))
			case 1:
				id = fmt.Sprintf("a-very-long-prefix-%d", rng.IntN(1000)) // equal 16-byte keys
			case 2:
				b := make([]byte, rng.IntN(20))
				for i := range b {
					b[i] = byte(rng.IntN(256))
				}
				id = string(b)
			case 3:
				id = fmt.Sprintf("%c", 'a'+rng.IntN(26))
			default:
				id = fmt.Sprintf("unit-%d-%d", rng.IntN(100), rng.IntN(100))
			}
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		keys = keys[:0]
		for _, id := range ids {
			keys = append(keys, devKey{sortKey(id), &devState{st: device.State{Device: id}}})
		}
		sorted, spare := sortDevKeys(keys, tmp)
		if len(sorted) != n {
			t.Fatalf("round %d: %d keys, want %d", round, len(sorted), n)
		}
		want := slices.Sorted(slices.Values(ids))
		for i := range sorted {
			if sorted[i].ds.st.Device != want[i] {
				t.Fatalf("round %d: position %d is %q, want %q", round, i, sorted[i].ds.st.Device, want[i])
			}
		}
		if n > 0 && cap(spare) > 0 && &spare[:1][0] == &sorted[0] {
			t.Fatalf("round %d: the spare storage is the result's", round)
		}
		keys, tmp = sorted[:0], spare[:0]
	}
}
