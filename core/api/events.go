package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/state"
)

// Hub fans alarm transitions out to event-stream subscribers. A subscriber that cannot keep up is
// disconnected rather than allowed to slow the state machine; it reconnects with Last-Event-ID and
// catches up from the outbox, so it loses nothing.
type Hub struct {
	mu   sync.Mutex
	subs map[chan state.OutboxItem]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[chan state.OutboxItem]struct{}{}} }

const subscriberBuffer = 4096

// Subscribe returns a channel of transitions; cancel ends the subscription. The channel is closed when
// the subscriber falls too far behind.
func (h *Hub) Subscribe() (<-chan state.OutboxItem, func()) {
	ch := make(chan state.OutboxItem, subscriberBuffer)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
		h.mu.Unlock()
	}
}

// Publish delivers items to every subscriber.
func (h *Hub) Publish(items []state.OutboxItem) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		for _, it := range items {
			select {
			case ch <- it:
			default:
				delete(h.subs, ch)
				close(ch)
			}
			if _, ok := h.subs[ch]; !ok {
				break
			}
		}
	}
}

// alarmEvents serves GET /v1/alarms/events as Server-Sent Events: one "alarm" event per transition, with
// the outbox sequence as the event id. Last-Event-ID (or ?since=N) replays what was missed.
func (s *Server) alarmEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "streaming is not supported by this connection", "")
		return
	}
	since := uint64(0)
	replay := false
	for _, v := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("since")} {
		if v == "" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("since: %q is not an event id", v), "since")
			return
		}
		since, replay = n, true
	}
	ch, cancel := s.hub.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": skjold alarm events\n\n")
	fl.Flush()
	last := since
	if replay {
		for {
			items, err := s.b.Machine().OutboxAfter(last, 512)
			if err != nil {
				return
			}
			for _, it := range items {
				if it.Command == nil {
					writeEvent(w, it)
				}
				last = it.Seq
			}
			fl.Flush()
			if len(items) < 512 {
				break
			}
		}
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			fl.Flush()
		case it, ok := <-ch:
			if !ok {
				return
			}
			if (replay && it.Seq <= last) || it.Command != nil {
				continue
			}
			writeEvent(w, it)
			fl.Flush()
		}
	}
}

// Event is the data of one SSE event.
type Event struct {
	Seq                uint64 `json:"seq"`
	IdempotencyKey     string `json:"idempotency_key"`
	ActivePoliceAlarms int    `json:"active_police_alarms"`
	SirenAlarms        int    `json:"siren_alarms"`
	Alarm              any    `json:"alarm"`
	Transition         any    `json:"transition"`
}

func writeEvent(w http.ResponseWriter, it state.OutboxItem) {
	data, _ := json.Marshal(Event{
		Seq:                it.Seq,
		IdempotencyKey:     idemKey(it),
		ActivePoliceAlarms: it.Change.ActivePolice,
		SirenAlarms:        it.Change.SirenAlarms,
		Alarm:              it.Change.Alarm,
		Transition:         it.Change.Transition,
	})
	fmt.Fprintf(w, "id: %d\nevent: alarm\ndata: %s\n\n", it.Seq, data)
}

func idemKey(it state.OutboxItem) string {
	return alarm.IdempotencyKey(it.Change.Alarm.ID, it.Change.Transition.Seq)
}
