package order

import (
	"testing"
)

// FuzzDecodeOrder feeds arbitrary bytes to the order decoder and validator: they must answer with an
// error naming a field, or accept, and never panic.
func FuzzDecodeOrder(f *testing.F) {
	f.Add([]byte(validOrder))
	f.Add([]byte(`{"zones": [{"geometry": {"type": "Polygon", "coordinates": [[[1,2],[3,4]]]}}]}`))
	f.Add([]byte(`{"id": 5}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, fe := Decode(data)
		if fe != nil {
			if fe.Message == "" {
				t.Fatalf("error without a message for %q", data)
			}
			return
		}
		if fe := o.Validate(); fe != nil && fe.Message == "" {
			t.Fatalf("validation error without a message for %q", data)
		}
	})
}
