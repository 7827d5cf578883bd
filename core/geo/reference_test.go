package geo

import (
	"encoding/json"
	"os"
	"sync"
	"testing"
)

// reference is testdata/geodesic.json, written by testdata/gen_geodesic.py.
type reference struct {
	Ellipsoid struct{ A, F float64 }
	Distances []struct {
		Lat1, Lon1, Lat2, Lon2, S12 float64
		Note                        string
	}
	Meridian []struct{ OLat, OLon, Lat, Y float64 }
	TM       []struct{ OLat, OLon, Lat, Lon, X, Y float64 }
}

var loadReference = sync.OnceValues(func() (*reference, error) {
	b, err := os.ReadFile("testdata/geodesic.json")
	if err != nil {
		return nil, err
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
})

func mustReference(t testing.TB) *reference {
	t.Helper()
	r, err := loadReference()
	if err != nil {
		t.Fatalf("reading reference values: %v", err)
	}
	return r
}
