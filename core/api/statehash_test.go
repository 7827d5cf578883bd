package api

import "testing"

func TestStateHashRoute(t *testing.T) {
	b := newBkNode(t)
	srv := bkServe(t, b)
	bkPopulate(t, srv)
	var got StateHash
	bkCall(t, srv, "GET", "/v1/state/hash", "", &got)
	idx, h, err := b.m.StateHash()
	if err != nil {
		t.Fatal(err)
	}
	if got.Node != "api-test" || got.AppliedIndex != idx || got.StateHash != h || idx != b.next {
		t.Fatalf("GET /v1/state/hash = %+v; machine %d %s, %d entries", got, idx, h, b.next)
	}
	// One more entry, another hash.
	bkCall(t, srv, "POST", "/v1/orders/ord-1/end", `{"by": "officer"}`, nil)
	var after StateHash
	bkCall(t, srv, "GET", "/v1/state/hash", "", &after)
	if after.AppliedIndex != idx+1 || after.StateHash == h {
		t.Fatalf("after another entry: %+v", after)
	}
}
