package breach

import "github.com/skjold-alarm/skjold/core/device"

// track is the fixes kept for one device, in fix-time order, as a ring: a fix that arrives in order is
// added at the end and ticks drop the oldest from the front, both without moving the others or
// allocating once the ring is as large as the window needs.
type track struct {
	buf  []device.Fix // len(buf) is 0 or a power of two
	head int          // index in buf of the oldest fix
	n    int
	used bool // a fix was ever kept: reads return an empty track rather than none
}

const minTrackCap = 16

func (t *track) len() int { return t.n }

// at returns the i-th oldest fix.
func (t *track) at(i int) *device.Fix { return &t.buf[(t.head+i)&(len(t.buf)-1)] }

// grow makes room for one more fix.
func (t *track) grow() {
	if t.n < len(t.buf) {
		return
	}
	buf := make([]device.Fix, max(minTrackCap, 2*len(t.buf)))
	t.copyTo(buf)
	t.buf, t.head = buf, 0
}

// push adds f after the newest fix.
func (t *track) push(f device.Fix) {
	t.grow()
	t.used = true
	*t.at(t.n) = f
	t.n++
}

// insert puts f at position i (0 is before the oldest), moving the later fixes up by one.
func (t *track) insert(i int, f device.Fix) {
	t.grow()
	t.used = true
	t.n++
	for j := t.n - 1; j > i; j-- {
		*t.at(j) = *t.at(j - 1)
	}
	*t.at(i) = f
}

// dropFront removes the k oldest fixes.
func (t *track) dropFront(k int) {
	for i := 0; i < k; i++ {
		*t.at(i) = device.Fix{} // let go of the time's location
	}
	t.head = (t.head + k) & max(len(t.buf)-1, 0)
	t.n -= k
}

// firstAfter returns the index of the first fix taken after at (t.n if none).
func (t *track) firstAfter(at *device.Fix) int {
	lo, hi := 0, t.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.at(m).Time.After(at.Time) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// copyTo copies the fixes, oldest first, to dst, which must be long enough.
func (t *track) copyTo(dst []device.Fix) {
	if t.n == 0 {
		return
	}
	k := copy(dst[:t.n], t.buf[t.head:min(t.head+t.n, len(t.buf))])
	copy(dst[k:t.n], t.buf[:t.n-k])
}

// slice returns a copy of the fixes, oldest first: nil when none was ever kept.
func (t *track) slice() []device.Fix {
	if !t.used {
		return nil
	}
	out := make([]device.Fix, t.n)
	t.copyTo(out)
	return out
}
