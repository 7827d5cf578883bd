package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Member is one server of the cluster as GET /v1/cluster/members lists it.
type Member struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`
	Voter  bool   `json:"voter"`
	Leader bool   `json:"leader"`
}

// ClusterBackend is what the cluster endpoints need; a backend without it answers them 501.
type ClusterBackend interface {
	Members() ([]Member, error)
	// Join adds a server (on the leader, wherever it is).
	Join(ctx context.Context, id, addr string) error
	Remove(ctx context.Context, id string) error
	// TransferLeadership hands leadership to the server named, or to any if to is empty.
	TransferLeadership(ctx context.Context, to string) error
}

// ReadBarrier lets a read wait until the local state holds every write acknowledged before it.
type ReadBarrier interface {
	ReadBarrier(ctx context.Context) error
}

// ErrInvalid marks a cluster request the caller got wrong (an unknown member, a conflicting address).
var ErrInvalid = errors.New("invalid request")

const clusterTimeout = 30 * time.Second

func (s *Server) routeCluster(m *http.ServeMux) {
	m.HandleFunc("GET /v1/cluster/members", s.listMembers)
	m.HandleFunc("POST /v1/cluster/members", s.joinMember)
	m.HandleFunc("DELETE /v1/cluster/members/{id}", s.removeMember)
	m.HandleFunc("POST /v1/cluster/leadership", s.transferLeadership)
}

func (s *Server) clusterBackend(w http.ResponseWriter) (ClusterBackend, bool) {
	cb, ok := s.b.(ClusterBackend)
	if !ok {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this node has no cluster membership", "")
	}
	return cb, ok
}

func (s *Server) clusterError(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, ErrInvalid) {
		writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("%s: %v", what, err), "")
		return
	}
	writeError(w, http.StatusServiceUnavailable, "unavailable", fmt.Sprintf("%s: %v", what, err), "")
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) {
	cb, ok := s.clusterBackend(w)
	if !ok {
		return
	}
	ms, err := cb.Members()
	if err != nil {
		s.clusterError(w, "members", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]Member{"members": nonNil(ms)})
}

// JoinRequest is the body of POST /v1/cluster/members.
type JoinRequest struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// clusterRequest decodes a cluster request's body into req (an empty body leaves it zero when
// emptyOK); on failure it has answered the request.
func (s *Server) clusterRequest(w http.ResponseWriter, r *http.Request, req any, emptyOK bool) (ClusterBackend, bool) {
	cb, ok := s.clusterBackend(w)
	if !ok {
		return nil, false
	}
	data, ok := readBody(w, r)
	if !ok {
		return nil, false
	}
	if len(data) == 0 && emptyOK {
		return cb, true
	}
	return cb, decodeStrict(w, data, req)
}

func (s *Server) joinMember(w http.ResponseWriter, r *http.Request) {
	var req JoinRequest
	cb, ok := s.clusterRequest(w, r, &req, false)
	if !ok {
		return
	}
	if req.ID == "" {
		writeError(w, http.StatusBadRequest, "invalid", "id: required", "id")
		return
	}
	if _, _, err := net.SplitHostPort(req.Addr); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("addr: %q is not host:port", req.Addr), "addr")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), clusterTimeout)
	defer cancel()
	if err := cb.Join(ctx, req.ID, req.Addr); err != nil {
		s.clusterError(w, "join "+req.ID, err)
		return
	}
	s.log.Info("cluster member added", "id", req.ID, "addr", req.Addr, "by", principal(r, ""))
	s.listMembers(w, r)
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) {
	cb, ok := s.clusterBackend(w)
	if !ok {
		return
	}
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), clusterTimeout)
	defer cancel()
	if err := cb.Remove(ctx, id); err != nil {
		s.clusterError(w, "remove "+id, err)
		return
	}
	s.log.Info("cluster member removed", "id", id, "by", principal(r, ""))
	s.listMembers(w, r)
}

// LeadershipRequest is the body of POST /v1/cluster/leadership; an empty To lets the cluster choose.
type LeadershipRequest struct {
	To string `json:"to,omitempty"`
}

func (s *Server) transferLeadership(w http.ResponseWriter, r *http.Request) {
	var req LeadershipRequest
	cb, ok := s.clusterRequest(w, r, &req, true)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), clusterTimeout)
	defer cancel()
	if err := cb.TransferLeadership(ctx, req.To); err != nil {
		s.clusterError(w, "transfer leadership", err)
		return
	}
	s.log.Info("leadership transferred", "to", req.To, "by", principal(r, ""))
	s.listMembers(w, r)
}

// consistentRead runs the read barrier before a GET asking ?consistency=linearizable; on failure it has
// answered the request.
func (s *Server) consistentRead(w http.ResponseWriter, r *http.Request) bool {
	c := r.URL.Query().Get("consistency")
	if r.Method != http.MethodGet || c == "" || c == "local" {
		return true
	}
	if c != "linearizable" {
		writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("consistency: %q is not one of local, linearizable", c), "consistency")
		return false
	}
	rb, ok := s.b.(ReadBarrier)
	if !ok {
		return true // a backend without a cluster is its own leader
	}
	ctx, cancel := context.WithTimeout(r.Context(), proposeTimeout)
	defer cancel()
	if err := rb.ReadBarrier(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "linearizable read: "+err.Error(), "")
		return false
	}
	return true
}
