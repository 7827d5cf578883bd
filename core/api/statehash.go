package api

import (
	"net/http"
)

// StateHash is the body of GET /v1/state/hash: the node's applied index and the SHA-256 of its whole
// replicated state at that index. Nodes that applied the same log to the same index report the same
// hash; compare them at equal indexes.
type StateHash struct {
	Node         string `json:"node"`
	AppliedIndex uint64 `json:"applied_index"`
	StateHash    string `json:"state_hash"`
}

// stateHash hashes the whole state on request (it reads every record, so it is not part of health).
func (s *Server) stateHash(w http.ResponseWriter, r *http.Request) {
	idx, h, err := s.b.Machine().StateHash()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "state hash: "+err.Error(), "")
		return
	}
	writeJSON(w, http.StatusOK, StateHash{Node: s.b.Health().Node, AppliedIndex: idx, StateHash: h})
}
