package cluster

import (
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

const (
	transportMaxPool = 3
	transportTimeout = 10 * time.Second
)

// newTransport builds the Raft network transport. It is the only place that
// knows the wire: a TLS raft.StreamLayer can replace the plain TCP one here
// (raft.NewNetworkTransportWithConfig) without touching anything else.
func newTransport(cfg Config, logger hclog.Logger) (*raft.NetworkTransport, error) {
	var advertise net.Addr
	if cfg.Advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("cluster: advertise address %q: %w", cfg.Advertise, err)
		}
		advertise = a
	}
	t, err := raft.NewTCPTransportWithLogger(cfg.BindAddr, advertise, transportMaxPool, transportTimeout, logger)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft transport on %s: %w", cfg.BindAddr, err)
	}
	return t, nil
}
