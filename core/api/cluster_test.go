package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// clusterNode is a backend with a cluster whose behaviour each test sets.
type clusterNode struct {
	*bkNode
	members  func() ([]Member, error)
	join     func(id, addr string) error
	remove   func(id string) error
	transfer func(to string) error
	barrier  func() error
}

func (c *clusterNode) Members() ([]Member, error) { return c.members() }
func (c *clusterNode) Join(_ context.Context, id, addr string) error {
	return c.join(id, addr)
}
func (c *clusterNode) Remove(_ context.Context, id string) error { return c.remove(id) }
func (c *clusterNode) TransferLeadership(_ context.Context, to string) error {
	return c.transfer(to)
}
func (c *clusterNode) ReadBarrier(context.Context) error { return c.barrier() }

func rawCall(t *testing.T, url, method, body string) (int, Error) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct{ Error Error }
	json.Unmarshal(data, &e)
	return resp.StatusCode, e.Error
}

func TestClusterRoutes(t *testing.T) {
	plain := bkServe(t, newBkNode(t))
	if code, e := rawCall(t, plain.URL+"/v1/cluster/members", "GET", ""); code != 501 || e.Code != "not_implemented" {
		t.Fatalf("members without a cluster: %d %+v", code, e)
	}

	var joined, removed, transferred []string
	node := &clusterNode{
		bkNode: newBkNode(t),
		members: func() ([]Member, error) {
			return []Member{{ID: "n1", Addr: "127.0.0.1:8471", Voter: true, Leader: true}}, nil
		},
		join: func(id, addr string) error {
			joined = append(joined, id+"@"+addr)
			return nil
		},
		remove: func(id string) error {
			if id == "nobody" {
				return fmt.Errorf("%w: no such member", ErrInvalid)
			}
			if id == "far" {
				return errors.New("no leader")
			}
			removed = append(removed, id)
			return nil
		},
		transfer: func(to string) error {
			transferred = append(transferred, to)
			return nil
		},
		barrier: func() error { return nil },
	}
	srv := bkServe(t, node)
	var ms struct{ Members []Member }
	bkCall(t, srv, "GET", "/v1/cluster/members", "", &ms)
	if len(ms.Members) != 1 || !ms.Members[0].Leader {
		t.Fatalf("members: %+v", ms)
	}

	for _, c := range []struct{ body, field string }{
		{`{"addr": "127.0.0.1:1"}`, "id"},
		{`{"id": "n2", "addr": "nowhere"}`, "addr"},
		{`{"id": "n2", "addr": "127.0.0.1:1", "voter": true}`, "voter"},
	} {
		code, e := rawCall(t, srv.URL+"/v1/cluster/members", "POST", c.body)
		if code != 400 || !strings.Contains(e.Field+e.Message, c.field) {
			t.Errorf("join %s: %d %+v, want 400 naming %s", c.body, code, e, c.field)
		}
	}
	bkCall(t, srv, "POST", "/v1/cluster/members", `{"id": "n2", "addr": "10.0.0.2:8471"}`, &ms)
	if len(joined) != 1 || joined[0] != "n2@10.0.0.2:8471" {
		t.Fatalf("joined: %v", joined)
	}

	if code, e := rawCall(t, srv.URL+"/v1/cluster/members/nobody", "DELETE", ""); code != 400 || e.Code != "invalid" {
		t.Fatalf("remove an unknown member: %d %+v", code, e)
	}
	if code, e := rawCall(t, srv.URL+"/v1/cluster/members/far", "DELETE", ""); code != 503 || e.Code != "unavailable" {
		t.Fatalf("remove without a leader: %d %+v", code, e)
	}
	bkCall(t, srv, "DELETE", "/v1/cluster/members/n2", "", nil)
	if len(removed) != 1 || removed[0] != "n2" {
		t.Fatalf("removed: %v", removed)
	}

	bkCall(t, srv, "POST", "/v1/cluster/leadership", "", nil)
	bkCall(t, srv, "POST", "/v1/cluster/leadership", `{"to": "n3"}`, nil)
	if len(transferred) != 2 || transferred[0] != "" || transferred[1] != "n3" {
		t.Fatalf("transferred: %q", transferred)
	}
}

func TestLinearizableReads(t *testing.T) {
	barriers := 0
	var fail error
	node := &clusterNode{bkNode: newBkNode(t), barrier: func() error { barriers++; return fail }}
	srv := bkServe(t, node)
	bkCall(t, srv, "GET", "/v1/orders", "", nil)
	bkCall(t, srv, "GET", "/v1/orders?consistency=local", "", nil)
	if barriers != 0 {
		t.Fatalf("a local read ran %d barriers", barriers)
	}
	bkCall(t, srv, "GET", "/v1/orders?consistency=linearizable", "", nil)
	if barriers != 1 {
		t.Fatalf("a linearizable read ran %d barriers", barriers)
	}
	fail = errors.New("no leader")
	if code, e := rawCall(t, srv.URL+"/v1/orders?consistency=linearizable", "GET", ""); code != 503 || !strings.Contains(e.Message, "no leader") {
		t.Fatalf("a read whose barrier fails: %d %+v", code, e)
	}
	if code, e := rawCall(t, srv.URL+"/v1/orders?consistency=eventual", "GET", ""); code != 400 || e.Field != "consistency" {
		t.Fatalf("an unknown consistency: %d %+v", code, e)
	}
}
