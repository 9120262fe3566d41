package trace

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDecodeJobsExample(t *testing.T) {
	f, err := os.Open("../examples/jobs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	jobs, err := DecodeJobs(f, "jobs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].Name != "web" || jobs[1].Name != "crunch-nightly" {
		t.Fatalf("jobs: %+v", jobs)
	}
	web, crunch := jobs[0], jobs[1]
	if web.App.Class.Or() != ClassOnline || crunch.App.Class != ClassOffline || crunch.App.Restart != RestartOnFailure {
		t.Fatalf("classes or restart decoded wrong: %+v %+v", web.App, crunch.App)
	}
	if web.Count != 2 || web.Priority != 100 || web.App.Env["GREETING"] != "hello" || web.App.Command[0] != "httpd" {
		t.Fatalf("web decoded wrong: %+v", web)
	}
	r := web.Request(1)
	if r.ID != "web-1" || r.Demand["cpu"] != 500 || r.Demand["memory"] != 256<<20 || r.Priority != 100 {
		t.Fatalf("request: %+v", r)
	}
	aas, _ := web.App.Rules(web.DomainLabel)
	if len(aas) != 1 || aas[0].App != "web" || aas[0].Other != "web" || aas[0].MaxOther != 0 {
		t.Fatalf("max_per_host 1 became %+v", aas)
	}
	// The same file is a valid simulation trace.
	f2, _ := os.Open("../examples/jobs.yaml")
	defer f2.Close()
	if _, err := DecodeGeneric(f2, "jobs.yaml"); err != nil {
		t.Fatalf("job file is not a valid trace: %v", err)
	}
}

func TestDecodeJobsBadInput(t *testing.T) {
	base := "version: 1\napps:\n  - {name: a, cpu: 1, memory: 1Gi, image: busybox}\nrequests:\n  - {app: a, count: 1}\n"
	cases := []struct{ in, want string }{
		{strings.Replace(base, "image: busybox", "class: gold", 1), `f.yaml:3: apps[0].class: "gold": want system, online or offline`},
		{strings.Replace(base, ", image: busybox", "", 1), `f.yaml:5: requests[0].app: app "a" has no image`},
		{strings.Replace(base, "image: busybox", "image: b, restart: sometimes", 1), `apps[0].restart: "sometimes"`},
		{strings.Replace(base, "{app: a,", "{name: Bad_Name, app: a,", 1), `f.yaml:5: requests[0].name: "Bad_Name"`},
		{base + "  - {app: a, count: 2}\n", `requests[1]: job "a" requested twice`},
		{strings.Replace(base, "image: busybox", "image: b, env: {\"A=B\": x}", 1), `apps[0].env: name "A=B"`},
		{"version: 1\napps: []\n", "requests: no requests"},
		{base + strings.Repeat("#", MaxJobFileBytes), "larger than 1048576 bytes"},
		{strings.Replace(base, "image: busybox", "image: busybox, memory: -1", 1), "mapping key \"memory\" already defined"},
		{strings.Replace(base, "count: 1}", "count: 1, update: {max_unavailable: -1}}", 1), "f.yaml:5: requests[0].update.max_unavailable: negative"},
		{strings.Replace(base, "count: 1}", "count: 1, update: {timeout: soon}}", 1), `duration "soon"`},
		{strings.Replace(base, "count: 1}", "count: 1, update: {surge: 2}}", 1), "field surge not found"},
	}
	for _, c := range cases {
		_, err := DecodeJobs(strings.NewReader(c.in), "f.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			in := c.in
			if len(in) > 200 {
				in = in[:200] + "..."
			}
			t.Errorf("input:\n%s\n got %v\nwant containing %q", in, err, c.want)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%v does not wrap ErrInvalid", err)
		}
	}
}

func TestJobValidate(t *testing.T) {
	j := Job{Name: "x", Count: 1, App: GenericApp{Name: "x", CPU: 1, Memory: 1, Image: "busybox"}}
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	j.Name, j.App.Image, j.App.Class, j.Count = "", "", "bronze", -1
	err := j.Validate()
	for _, want := range []string{"name: empty", "count: negative", "app.image: empty", `app.class: "bronze"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: missing %q", err, want)
		}
	}
}

func FuzzDecodeJobs(f *testing.F) {
	data, err := os.ReadFile("../examples/jobs.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(data))
	f.Add("version: 1\napps:\n  - {name: a, cpu: 1, memory: 1Gi, image: b}\nrequests:\n  - {app: a, count: 1}\n")
	f.Fuzz(func(t *testing.T, in string) {
		jobs, err := DecodeJobs(strings.NewReader(in), "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !strings.Contains(err.Error(), "read ") {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		for _, j := range jobs {
			if err := j.Validate(); err != nil {
				t.Fatalf("decoded job fails its own validation: %v", err)
			}
			if j.Count < 1 || j.App.Image == "" {
				t.Fatalf("accepted job %+v", j)
			}
		}
	})
}

func TestDecodeJobsRefusesExistingPlacements(t *testing.T) {
	in := "version: 1\nhosts:\n  - {name: h, cpu: 8, memory: 16Gi}\napps:\n  - {name: a, cpu: 1, memory: 1Gi, image: busybox}\nrequests:\n  - {app: a, count: 1, on: [h]}\n"
	_, err := DecodeJobs(strings.NewReader(in), "jobs.yaml")
	if err == nil || !strings.Contains(err.Error(), "jobs.yaml:7: requests[0].on: existing placements are for simulation only") {
		t.Fatalf("got %v", err)
	}
}

func TestDecodeJobsUpdatePolicy(t *testing.T) {
	in := "version: 1\napps:\n  - {name: a, cpu: 1, memory: 1Gi, image: b}\nrequests:\n  - {app: a, count: 4, update: {max_unavailable: 2, timeout: 90s}}\n  - {name: b, app: a, count: 1}\n"
	jobs, err := DecodeJobs(strings.NewReader(in), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if u := jobs[0].Update; u.MaxUnavailableOr() != 2 || u.TimeoutOr() != 90*time.Second {
		t.Errorf("update policy %+v", u)
	}
	if u := jobs[1].Update; u.MaxUnavailableOr() != DefaultMaxUnavailable || u.TimeoutOr() != DefaultUpdateTimeout {
		t.Errorf("defaults: %+v", u)
	}
}
