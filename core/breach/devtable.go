package breach

// devTable maps device ids to bound devices. Every report looks its device up, and at national scale the
// devices are far apart in memory, so the lookup is a few cache misses more than its arithmetic: a Go map
// of strings reads a control word, a slot, and then the stored key's bytes (a third line, elsewhere) to
// compare them. Here a slot is the id's hash and the device, four to a cache line, and the id is compared
// through the device's sort key (its first 16 bytes, already in the device's first line) and length; only
// an id longer than 16 bytes is compared in full.
//
// Open addressing with linear probing; a removal shifts the run after it back, so there are no
// tombstones. The hash has no random seed: lookups do not depend on it for their result, but a table laid
// out the same way in every run is one less thing that differs between replicas when one is debugged.
type devTable struct {
	slots []devSlot // len is 0 or a power of two; at most half full
	n     int
}

type devSlot struct {
	h  uint64
	ds *devState // nil: empty
}

// devHash mixes the id's sort key, length and bytes beyond the first 16.
func devHash(k [2]uint64, id string) uint64 {
	h := mix(k[0] ^ mix(k[1]^uint64(len(id))))
	for i := 16; i < len(id); i += 8 {
		var w uint64
		for j := i; j < min(i+8, len(id)); j++ {
			w = w<<8 | uint64(id[j])
		}
		h = mix(h ^ w)
	}
	return h
}

// mix is the finaliser of SplitMix64: every input bit affects every output bit.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// is reports whether ds is the device id, whose sort key is k.
func (ds *devState) is(k [2]uint64, id string) bool {
	return ds.key == k && len(ds.st.Device) == len(id) && (len(id) <= 16 || ds.st.Device == id)
}

func (t *devTable) len() int { return t.n }

// get returns the device bound as id, nil when none is.
func (t *devTable) get(id string) *devState {
	k := sortKey(id)
	return t.find(k, devHash(k, id), id)
}

// home returns the first word of the slot where a search for hash h starts. A batch reads every home
// first, loads with no branch between them that the processor overlaps, before any find compares keys:
// a search whose first comparison waits for memory and then goes the unexpected way would otherwise
// discard the searches behind it that the processor had already started.
func (t *devTable) home(h uint64) uint64 {
	if t.n == 0 {
		return 0
	}
	return t.slots[h&uint64(len(t.slots)-1)].h
}

// find is get for an id whose sort key and hash are known.
func (t *devTable) find(k [2]uint64, h uint64, id string) *devState {
	if t.n == 0 {
		return nil
	}
	if i, found := t.probe(k, h, id); found {
		return t.slots[i].ds
	}
	return nil
}

// probe returns the slot of the id (found) or the empty slot where its search ended. The table must
// have slots.
func (t *devTable) probe(k [2]uint64, h uint64, id string) (i uint64, found bool) {
	mask := uint64(len(t.slots) - 1)
	for i = h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.ds == nil {
			return i, false
		}
		if s.h == h && s.ds.is(k, id) {
			return i, true
		}
	}
}

// put indexes ds under its id (ds.key must be set), replacing a device bound under the same id.
func (t *devTable) put(ds *devState) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	h := devHash(ds.key, ds.st.Device)
	i, found := t.probe(ds.key, h, ds.st.Device)
	if !found {
		t.n++
	}
	t.slots[i] = devSlot{h, ds}
}

// remove drops the device bound as id, if any.
func (t *devTable) remove(id string) {
	if t.n == 0 {
		return
	}
	k := sortKey(id)
	i, found := t.probe(k, devHash(k, id), id)
	if !found {
		return
	}
	// Backward shift: move a later entry of the run into the hole when its home slot is not in the
	// part of the run between the hole and it (wrapping around), so every entry stays reachable from home.
	mask := uint64(len(t.slots) - 1)
	for j := (i + 1) & mask; t.slots[j].ds != nil; j = (j + 1) & mask {
		home := t.slots[j].h & mask
		if (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = devSlot{}
	t.n--
}

// grow doubles the table (16 slots at first) and reinserts every entry.
func (t *devTable) grow() {
	old := t.slots
	t.slots = make([]devSlot, max(16, 2*len(old)))
	mask := uint64(len(t.slots) - 1)
	for _, s := range old {
		if s.ds == nil {
			continue
		}
		i := s.h & mask
		for t.slots[i].ds != nil {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}
