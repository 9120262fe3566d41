package bootspec

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func validSpec() Spec {
	return Spec{
		Version:     Version,
		Token:       "0123456789abcdef",
		Program:     "/sluice/bin/cgroup.test",
		Args:        []string{"-test.run=V2|VM", "-test.v", "a b 'c'"},
		Dir:         "/sluice/pkg",
		Env:         []string{"SLUICE_IN_VM=1", "EMPTY="},
		Modules:     []string{"/lib/modules/configfs.ko", "/lib/modules/null_blk.ko"},
		Controllers: []string{"cpu", "memory"},
	}
}

func TestSpecRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	want := validSpec()
	if err := Encode(&buf, want); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip: got %+v, want %+v", got, want)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name, json, wantErr string
	}{
		{"unknown field", `{"version":1,"token":"0123456789abcdef","program":"/p","dir":"/","bogus":1}`, `unknown field "bogus"`},
		{"trailing data", `{"version":1,"token":"0123456789abcdef","program":"/p","dir":"/"} {}`, "trailing data"},
		{"wrong version", `{"version":2,"token":"0123456789abcdef","program":"/p","dir":"/"}`, "version: got 2, want 1"},
		{"short token", `{"version":1,"token":"abc","program":"/p","dir":"/"}`, "token:"},
		{"upper-case token", `{"version":1,"token":"ABCDEFGHIJ","program":"/p","dir":"/"}`, "lower-case"},
		{"relative program", `{"version":1,"token":"0123456789abcdef","program":"p","dir":"/"}`, `program: "p" is not an absolute path`},
		{"bad env", `{"version":1,"token":"0123456789abcdef","program":"/p","dir":"/","env":["NOEQUALS"]}`, `env[0]: "NOEQUALS" is not KEY=VALUE`},
		{"bad controller", `{"version":1,"token":"0123456789abcdef","program":"/p","dir":"/","controllers":["+cpu"]}`, `controllers[0]`},
		{"not json", `version: 1`, "invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Decode: got error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	s := validSpec()
	s.Version = 0
	s.Program = "rel"
	s.Modules = []string{"x.ko"}
	err := s.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken spec")
	}
	for _, want := range []string{"version:", "program:", "modules[0]:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	if err := Encode(&buf, validSpec()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			return
		}
		// Whatever Decode accepts must survive a round trip unchanged.
		var out bytes.Buffer
		if err := Encode(&out, s); err != nil {
			t.Fatalf("Encode of a decoded spec: %v", err)
		}
		again, err := Decode(out.Bytes())
		if err != nil {
			t.Fatalf("Decode of re-encoded spec: %v", err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(s)) {
			t.Fatalf("round trip changed the spec: %+v != %+v", again, s)
		}
	})
}

// normalize makes nil and empty slices compare equal: JSON cannot tell them apart.
func normalize(s Spec) Spec {
	for _, p := range []*[]string{&s.Args, &s.Env, &s.Modules, &s.Controllers} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	return s
}
