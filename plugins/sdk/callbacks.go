package sdk

import (
	"context"
	"errors"
	"fmt"
	"sync"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginpb "github.com/skjold-alarm/skjold/plugins/proto"
)

// Host is a hook's handle on the node that runs it: the dispatch side (a CAD, an alarm receiving centre)
// acts on an alarm through it. The node records the hook's name with every call, as
// "hook:<hook name>/<by>".
//
// Errors are gRPC status errors from the node: codes.NotFound (no such alarm), codes.FailedPrecondition
// (Acknowledge of an alarm that is not raised: already acknowledged or resolved), codes.InvalidArgument,
// codes.Unavailable (the node cannot commit now: call again later). ErrNoHost (wrapped) means the node
// offers no callbacks (the hook is not configured yet, or the node is older than the SDK).
type Host interface {
	// Acknowledge acknowledges a raised alarm: someone on the far side has taken it.
	Acknowledge(ctx context.Context, alarmID, by, note string) error
	// Annotate adds a note to an alarm without changing its state.
	Annotate(ctx context.Context, alarmID, by, note string) error
}

// HostUser is implemented by a Hook that calls back into the node. ServeHook calls SetHost once, before
// the first Configure; the handle works once the node has configured the hook.
type HostUser interface {
	SetHost(Host)
}

// ErrNoHost is returned (wrapped) by Host calls when the node offers no callbacks.
var ErrNoHost = errors.New("the node offers no callbacks")

// callbacks is the SDK's Host: a client of the node's HostCallbacks service, dialled through the
// go-plugin broker at each Configure that names a new broker id.
type callbacks struct {
	log hclog.Logger

	mu     sync.Mutex
	broker *plugin.GRPCBroker
	id     uint32
	conn   *grpc.ClientConn
	client pluginpb.HostCallbacksClient
	why    string // why there is no client, when there is none
}

func newCallbacks(log hclog.Logger) *callbacks {
	return &callbacks{log: log, why: "not configured yet"}
}

// setBroker is called by go-plugin's GRPCServer, before anything is served.
func (c *callbacks) setBroker(b *plugin.GRPCBroker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broker = b
}

// connect dials the host's callback service on broker id (0: the host offers none). The host sends the
// connection information when it configures the plugin and drops it after 5 s, so this runs at Configure.
func (c *callbacks) connect(id uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == c.id && (id == 0 || c.client != nil) {
		return
	}
	if c.conn != nil {
		_ = c.conn.Close()
	}
	c.id, c.conn, c.client = id, nil, nil
	switch {
	case id == 0:
		c.why = "the node offers no callbacks"
		return
	case c.broker == nil:
		c.why = "no go-plugin broker (not served by ServeHook)"
		return
	}
	conn, err := c.broker.Dial(id)
	if err != nil {
		c.why = fmt.Sprintf("dialling the node's callbacks (broker id %d): %v", id, err)
		c.log.Error("callbacks to the node are not available", "error", err, "broker_id", id)
		return
	}
	c.conn, c.client, c.why = conn, pluginpb.NewHostCallbacksClient(conn), ""
}

func (c *callbacks) current() (pluginpb.HostCallbacksClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoHost, c.why)
	}
	return c.client, nil
}

func (c *callbacks) Acknowledge(ctx context.Context, alarmID, by, note string) error {
	cl, err := c.current()
	if err != nil {
		return err
	}
	_, err = cl.Acknowledge(ctx, &pluginpb.AckRequest{AlarmId: alarmID, By: by, Note: note})
	return err
}

func (c *callbacks) Annotate(ctx context.Context, alarmID, by, note string) error {
	cl, err := c.current()
	if err != nil {
		return err
	}
	_, err = cl.Annotate(ctx, &pluginpb.AnnotateRequest{AlarmId: alarmID, By: by, Note: note})
	return err
}

var _ Host = (*callbacks)(nil)
