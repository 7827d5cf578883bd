package modem

import (
	"strings"
	"time"
)

// assembler joins the parts of concatenated messages, keyed by sender and reference. It holds at most max
// messages; a message not complete within timeout is dropped.
type assembler struct {
	max     int
	timeout time.Duration
	msgs    map[concatKey]*partial
}

type concatKey struct {
	sender string
	ref    uint16
	total  int
}

type partial struct {
	sender  string
	total   int
	parts   map[int]string
	indices []int
	first   time.Time // SCTS of the earliest part
	since   time.Time // when the first part arrived here
}

type whole struct {
	text    string
	indices []int
	first   time.Time
}

func newAssembler(max int, timeout time.Duration) *assembler {
	return &assembler{max: max, timeout: timeout, msgs: map[concatKey]*partial{}}
}

// add stores one part. It returns the whole message once every part is there, and the message it dropped
// to make room when the buffer was full.
func (a *assembler) add(sender string, m *Message, idx int, now time.Time) (*whole, *partial) {
	k := concatKey{sender, m.Concat.Ref, m.Concat.Total}
	p, ok := a.msgs[k]
	var dropped *partial
	if !ok {
		if len(a.msgs) >= a.max {
			var oldest concatKey
			for kk, pp := range a.msgs {
				if dropped == nil || pp.since.Before(dropped.since) {
					oldest, dropped = kk, pp
				}
			}
			delete(a.msgs, oldest)
		}
		p = &partial{sender: sender, total: m.Concat.Total, parts: map[int]string{}, first: m.Time, since: now}
		a.msgs[k] = p
	}
	if _, dup := p.parts[m.Concat.Seq]; !dup {
		p.parts[m.Concat.Seq] = m.Text
	}
	p.indices = append(p.indices, idx)
	if m.Time.Before(p.first) {
		p.first = m.Time
	}
	if len(p.parts) < p.total {
		return nil, dropped
	}
	delete(a.msgs, k)
	var sb strings.Builder
	for i := 1; i <= p.total; i++ {
		sb.WriteString(p.parts[i])
	}
	return &whole{text: sb.String(), indices: p.indices, first: p.first}, dropped
}

// expire removes and returns the messages older than the timeout.
func (a *assembler) expire(now time.Time) []*partial {
	var out []*partial
	for k, p := range a.msgs {
		if now.Sub(p.since) >= a.timeout {
			out = append(out, p)
			delete(a.msgs, k)
		}
	}
	return out
}
