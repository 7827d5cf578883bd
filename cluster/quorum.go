package cluster

import (
	"time"

	"github.com/hashicorp/raft"
)

// QuorumLost reports whether this node is cut off from a working cluster:
// it is not the leader and has no contact with one. since is when it last
// had contact: raft's LastContact (the last message from a leader, or the
// moment this node stepped down as leader), or when the node was opened if
// it has had none since.
//
// A leader is never "lost": raft makes a leader that cannot reach a quorum
// step down after LeaderLeaseTimeout, and it is then lost since it stepped
// down. A follower loses its leader after HeartbeatTimeout without contact.
// An ordinary election (after a leader stops) also shows as a short loss,
// typically under an ElectionTimeout; callers that act on it (a siren)
// should wait until since is older than their tolerance. A node that is
// not (yet) a member of any cluster is lost since it was opened.
func (n *Node) QuorumLost() (since time.Time, lost bool) {
	if n.isShutdown.Load() {
		return n.shutdownAt(), true
	}
	if n.raft.State() == raft.Leader {
		return time.Time{}, false
	}
	last := n.raft.LastContact()
	id, _ := n.Leader()
	if id == n.cfg.NodeID {
		// Stepping down right now: raft clears the leader and records the
		// step-down as the last contact in a moment.
		return time.Time{}, false
	}
	if id != "" && time.Since(last) <= 3*n.heartbeatTimeout {
		return time.Time{}, false
	}
	if last.Before(n.openedAt) {
		last = n.openedAt
	}
	return last, true
}

func (n *Node) shutdownAt() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stoppedAt
}
