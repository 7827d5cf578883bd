package scenario

import (
	"path/filepath"
	"testing"
)

// TestLibrary runs every scenario in docs/scenarios: the evaluator's executable specification.
func TestLibrary(t *testing.T) {
	files, err := filepath.Glob("../../docs/scenarios/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("the library has %d scenarios, want at least 25", len(files))
	}
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(s.Name, func(t *testing.T) {
			res := Run(s)
			if !res.Pass {
				for _, p := range res.Problems {
					t.Error(p)
				}
				for _, tr := range res.Transitions {
					t.Log(tr)
				}
			}
		})
	}
}

// A scenario whose expectation is wrong must fail: the runner is not allowed to pass everything.
func TestRunnerFailsOnWrongExpectations(t *testing.T) {
	files, _ := filepath.Glob("../../docs/scenarios/*.json")
	if len(files) == 0 {
		t.Skip("no scenarios")
	}
	s, err := Load(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Expect) == 0 {
		t.Fatal("first scenario expects nothing")
	}
	s.Expect[0].Kind = "no_such_kind"
	if Run(s).Pass {
		t.Fatal("a wrong expectation passed")
	}
	s.Expect = s.Expect[:0]
	if Run(s).Pass {
		t.Fatal("missing expectations passed")
	}
}
