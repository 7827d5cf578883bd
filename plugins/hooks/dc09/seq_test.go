package dc09

import "testing"

func TestSequenceWraps(t *testing.T) {
	h := New(Options{})
	if got := h.nextSeq(); got != "0001" {
		t.Fatalf("first sequence %q", got)
	}
	h.seq = 9998
	for _, want := range []string{"9999", "0001", "0002"} {
		if got := h.nextSeq(); got != want {
			t.Fatalf("sequence %q, want %q", got, want)
		}
	}
}

func TestZoneIsStableAndInRange(t *testing.T) {
	if Zone("") != 0 {
		t.Fatal("no zone must be 000")
	}
	a, b := Zone("home"), Zone("work")
	if a != Zone("home") || a < 1 || a > 999 || b < 1 || b > 999 || a == b {
		t.Fatalf("home %d work %d", a, b)
	}
	// FNV-1a 32 of "home" is 0xD2C8C28E, mod 999 is 278: zone 279. Fixed, so a change of the hash (which
	// would renumber every zone at the receiving centre) is noticed.
	if got := Zone("home"); got != 279 || got != int(fnv32a("home")%999)+1 {
		t.Fatalf("Zone(home) = %d, want 279", got)
	}
	if got := Zone("work"); got != 265 {
		t.Fatalf("Zone(work) = %d, want 265", got)
	}
}

func fnv32a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
