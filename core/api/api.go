// Package api serves Skjold's HTTP JSON API under /v1: orders, observations, devices, alarms with their
// event stream, and health. Writes become log entries through the Backend; reads come from the local state.
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/breach"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/order"
	"github.com/skjold-alarm/skjold/core/state"
)

// Backend is what the API needs of the node.
type Backend interface {
	// Propose commits an entry to the replicated log and returns the state machine's result for it.
	Propose(ctx context.Context, entry []byte) (any, error)
	// Machine is the local state.
	Machine() *state.Machine
	// Health describes the node.
	Health() Health
	// Now is the node's clock, used to stamp entries.
	Now() time.Time
}

// Health is the body of GET /v1/health.
type Health struct {
	Status             string         `json:"status"` // "ok" or "degraded"
	Node               string         `json:"node"`
	Leader             string         `json:"leader"`
	RaftState          string         `json:"raft_state"`
	AppliedIndex       uint64         `json:"applied_index"`
	LogTime            time.Time      `json:"log_time,omitzero"`
	ActivePoliceAlarms int            `json:"active_police_alarms"`
	Plugins            []PluginHealth `json:"plugins"`
	Problems           []string       `json:"problems,omitempty"`
}

// PluginHealth is one plugin's state on this node.
type PluginHealth struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Up        bool   `json:"up"`
	PID       int    `json:"pid,omitempty"`
	Restarts  int    `json:"restarts"`
	LastError string `json:"last_error,omitempty"`
}

// Limits on request bodies.
const (
	MaxBody         = 8 << 20
	MaxObservations = 10000
	proposeTimeout  = 10 * time.Second
)

// Server is the HTTP handler.
type Server struct {
	b   Backend
	hub *Hub
	mux *http.ServeMux
	log *slog.Logger
}

// New builds the API. metrics, when given, is served at /metrics.
func New(b Backend, metrics http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{b: b, hub: NewHub(), mux: http.NewServeMux(), log: log}
	b.Machine().OnChanges(s.hub.Publish)
	m := s.mux
	m.HandleFunc("POST /v1/orders", s.createOrder)
	m.HandleFunc("GET /v1/orders", s.listOrders)
	m.HandleFunc("GET /v1/orders/{id}", s.getOrder)
	m.HandleFunc("PUT /v1/orders/{id}", s.replaceOrder)
	m.HandleFunc("POST /v1/orders/{id}/end", s.endOrder)
	m.HandleFunc("POST /v1/observations", s.postObservations)
	m.HandleFunc("GET /v1/devices", s.listDevices)
	m.HandleFunc("GET /v1/devices/{id}", s.getDevice)
	m.HandleFunc("GET /v1/devices/{id}/track", s.getTrack)
	m.HandleFunc("GET /v1/alarms", s.listAlarms)
	m.HandleFunc("GET /v1/alarms/events", s.alarmEvents)
	m.HandleFunc("GET /v1/alarms/{id}", s.getAlarm)
	m.HandleFunc("POST /v1/alarms/{id}/ack", s.ackAlarm)
	m.HandleFunc("POST /v1/alarms/{id}/resolve", s.resolveAlarm)
	m.HandleFunc("GET /v1/health", s.health)
	m.HandleFunc("GET /v1/state/hash", s.stateHash)
	m.HandleFunc("GET /v1/backup", s.backup)
	s.routeCluster(m)
	if metrics != nil {
		m.Handle("GET /metrics", metrics)
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path), "")
	})
	return s
}

// Hub returns the alarm event hub (for the node's own terminal output and tests).
func (s *Server) Hub() *Hub { return s.hub }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.consistentRead(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// ---- errors ----

// Error is the API's error body.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, msg, field string) {
	writeJSON(w, status, map[string]Error{"error": {Code: code, Message: msg, Field: field}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// readBody reads a bounded body; on failure it has answered the request.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body is larger than %d bytes", MaxBody), "")
		return nil, false
	}
	return data, true
}

// decodeStrict decodes JSON rejecting unknown fields; on failure it has answered the request.
func decodeStrict(w http.ResponseWriter, data []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON value")
	}
	if err != nil {
		fe := order.JSONErrorIn(data, err)
		writeError(w, http.StatusBadRequest, "invalid_json", fe.Error(), fe.Field)
		return false
	}
	return true
}

// propose commits an entry and maps the result; on failure it has answered the request.
func (s *Server) propose(w http.ResponseWriter, r *http.Request, entry []byte, err error) (any, bool) {
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error(), "")
		return nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), proposeTimeout)
	defer cancel()
	res, err := s.b.Propose(ctx, entry)
	if err != nil {
		s.log.Warn("proposal failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "not committed: "+err.Error(), "")
		return nil, false
	}
	var rej *breach.Rejection
	if e, ok := res.(error); ok && errors.As(e, &rej) {
		status := map[string]int{"not_found": http.StatusNotFound, "conflict": http.StatusConflict}[rej.Code]
		if status == 0 {
			status = http.StatusBadRequest
		}
		writeError(w, status, rej.Code, rej.Message, rej.Field)
		return nil, false
	}
	if e, ok := res.(error); ok {
		writeError(w, http.StatusInternalServerError, "internal", e.Error(), "")
		return nil, false
	}
	return res, true
}

// ---- orders ----

func (s *Server) createOrder(w http.ResponseWriter, r *http.Request) {
	s.putOrder(w, r, "", true)
}

func (s *Server) replaceOrder(w http.ResponseWriter, r *http.Request) {
	s.putOrder(w, r, r.PathValue("id"), false)
}

func (s *Server) putOrder(w http.ResponseWriter, r *http.Request, pathID string, create bool) {
	data, ok := readBody(w, r)
	if !ok {
		return
	}
	o, fe := order.Decode(data)
	if fe != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", fe.Error(), fe.Field)
		return
	}
	switch {
	case pathID != "" && o.ID == "":
		o.ID = pathID
	case pathID != "" && o.ID != pathID:
		writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("id: %q differs from the id in the path %q", o.ID, pathID), "id")
		return
	case o.ID == "":
		o.ID = newID("ord-")
	}
	if fe := o.Validate(); fe != nil {
		writeError(w, http.StatusBadRequest, "invalid", fe.Error(), fe.Field)
		return
	}
	entry, err := state.PutOrder(breach.PutOrder{At: s.b.Now(), By: principal(r, ""), Create: create, Order: *o})
	res, ok := s.propose(w, r, entry, err)
	if !ok {
		return
	}
	status := http.StatusOK
	if create {
		status = http.StatusCreated
	}
	writeJSON(w, status, res)
}

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) {
	var out []order.Order
	s.b.Machine().View(func(ev *breach.Evaluator) { out = ev.Orders() })
	writeJSON(w, http.StatusOK, map[string]any{"orders": nonNil(out)})
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) {
	var o order.Order
	var ok bool
	s.b.Machine().View(func(ev *breach.Evaluator) { o, ok = ev.Order(r.PathValue("id")) })
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("order %q does not exist", r.PathValue("id")), "")
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// ByReason is the body of end, ack and resolve requests.
type ByReason struct {
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
	Note   string `json:"note,omitempty"`
}

func (s *Server) byReason(w http.ResponseWriter, r *http.Request) (ByReason, bool) {
	var in ByReason
	data, ok := readBody(w, r)
	if !ok {
		return in, false
	}
	if len(bytes.TrimSpace(data)) > 0 && !decodeStrict(w, data, &in) {
		return in, false
	}
	if strings.TrimSpace(in.By) == "" {
		writeError(w, http.StatusBadRequest, "invalid", "by: is required (who is acting)", "by")
		return in, false
	}
	if len(in.By) > 128 || len(in.Reason) > 4096 || len(in.Note) > 4096 {
		writeError(w, http.StatusBadRequest, "invalid", "by, reason or note is too long", "")
		return in, false
	}
	return in, true
}

func (s *Server) endOrder(w http.ResponseWriter, r *http.Request) {
	s.byReasonEntry(w, r, func(at time.Time, by, text string) ([]byte, error) {
		return state.EndOrder(breach.EndOrder{At: at, By: by, ID: r.PathValue("id"), Reason: text})
	})
}

// ---- observations ----

func (s *Server) postObservations(w http.ResponseWriter, r *http.Request) {
	data, ok := readBody(w, r)
	if !ok {
		return
	}
	// Elements are decoded one by one so that an error names its index ("[3].speed").
	var raw []json.RawMessage
	if !decodeStrict(w, data, &raw) {
		return
	}
	obs := make([]device.Observation, len(raw))
	for i, r := range raw {
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&obs[i]); err != nil {
			fe := order.JSONErrorIn(r, err)
			f := fmt.Sprintf("[%d]", i)
			if fe.Field != "" {
				f += "." + fe.Field
			}
			writeError(w, http.StatusBadRequest, "invalid_json", f+": "+fe.Message, f)
			return
		}
	}
	if len(obs) == 0 {
		writeError(w, http.StatusBadRequest, "invalid", "the batch is empty", "")
		return
	}
	if len(obs) > MaxObservations {
		writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("the batch has %d observations, at most %d are allowed", len(obs), MaxObservations), "")
		return
	}
	for i := range obs {
		if fe := obs[i].Validate(); fe != nil {
			f := fmt.Sprintf("[%d].%s", i, fe.Field)
			writeError(w, http.StatusBadRequest, "invalid", f+": "+fe.Message, f)
			return
		}
		obs[i].Driver, obs[i].Node = "api", ""
	}
	entry, err := state.Observations(breach.Observations{At: s.b.Now(), By: principal(r, "api"), Obs: obs})
	if res, ok := s.propose(w, r, entry, err); ok {
		writeJSON(w, http.StatusOK, res)
	}
}

// ---- devices ----

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	var out []device.State
	s.b.Machine().View(func(ev *breach.Evaluator) { out = ev.Devices() })
	writeJSON(w, http.StatusOK, map[string]any{"devices": nonNil(out)})
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request) {
	var st device.State
	var ok bool
	s.b.Machine().View(func(ev *breach.Evaluator) { st, ok = ev.Device(r.PathValue("id")) })
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("device %q is not bound to any active order", r.PathValue("id")), "")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// getTrack returns the fixes kept for a device: the rolling window the evaluator needs, no more.
func (s *Server) getTrack(w http.ResponseWriter, r *http.Request) {
	var fixes []device.Fix
	var ok bool
	id := r.PathValue("id")
	s.b.Machine().View(func(ev *breach.Evaluator) {
		_, ok = ev.Device(id)
		fixes = ev.Track(id)
	})
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("device %q is not bound to any active order", id), "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"device": id, "fixes": nonNil(fixes)})
}

// ---- alarms ----

func (s *Server) listAlarms(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	openOnly := true
	switch q.Get("state") {
	case "", "open":
	case "all":
		openOnly = false
	default:
		writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("state: %q is not open or all", q.Get("state")), "state")
		return
	}
	var out []alarm.Alarm
	s.b.Machine().View(func(ev *breach.Evaluator) { out = ev.Alarms(openOnly, q.Get("order")) })
	writeJSON(w, http.StatusOK, map[string]any{"alarms": nonNil(out)})
}

func (s *Server) getAlarm(w http.ResponseWriter, r *http.Request) {
	var a alarm.Alarm
	var ok bool
	s.b.Machine().View(func(ev *breach.Evaluator) { a, ok = ev.Alarm(r.PathValue("id")) })
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("alarm %q does not exist", r.PathValue("id")), "")
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) ackAlarm(w http.ResponseWriter, r *http.Request) {
	s.byReasonEntry(w, r, func(at time.Time, by, text string) ([]byte, error) {
		return state.AckAlarm(breach.AckAlarm{At: at, By: by, ID: r.PathValue("id"), Note: text})
	})
}

func (s *Server) resolveAlarm(w http.ResponseWriter, r *http.Request) {
	s.byReasonEntry(w, r, func(at time.Time, by, text string) ([]byte, error) {
		return state.ResolveAlarm(breach.ResolveAlarm{At: at, By: by, ID: r.PathValue("id"), Reason: text})
	})
}

// byReasonEntry serves a request with a ByReason body that becomes one entry; the note or reason,
// whichever is given, is the entry's text.
func (s *Server) byReasonEntry(w http.ResponseWriter, r *http.Request, entry func(at time.Time, by, text string) ([]byte, error)) {
	in, ok := s.byReason(w, r)
	if !ok {
		return
	}
	text := in.Note
	if text == "" {
		text = in.Reason
	}
	e, err := entry(s.b.Now(), principal(r, in.By), text)
	if res, ok := s.propose(w, r, e, err); ok {
		writeJSON(w, http.StatusOK, res)
	}
}

// ---- health ----

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	h := s.b.Health()
	status := http.StatusOK
	if h.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}

// principal names who made a change. Until tokens are configured it is what the request says.
func principal(r *http.Request, by string) string {
	if by == "" {
		by = r.Header.Get("X-Skjold-User")
	}
	if by == "" {
		by = "api"
	}
	return by
}

func newID(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
