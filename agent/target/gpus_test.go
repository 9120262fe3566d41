package target

import (
	"strings"
	"testing"
)

func TestDetectGPUs(t *testing.T) {
	n, model, err := DetectGPUs("testdata/proc-2gpus")
	if err != nil || n != 2 || model != "NVIDIA A100-SXM4-40GB" {
		t.Errorf("two A100s: %d %q %v", n, model, err)
	}
	if n, model, err := DetectGPUs("testdata/no-such-proc"); err != nil || n != 0 || model != "" {
		t.Errorf("no driver: %d %q %v, want no GPU and no error", n, model, err)
	}
	if _, _, err := DetectGPUs("testdata/proc-nomodel"); err == nil || !strings.Contains(err.Error(), "no Model line") {
		t.Errorf("unreadable model: %v", err)
	}
}

func TestParseExtended(t *testing.T) {
	got, err := ParseExtended(" fpga=2, example.com/nic=4")
	if err != nil || len(got) != 2 || got["fpga"] != 2 || got["example.com/nic"] != 4 {
		t.Errorf("got %v %v", got, err)
	}
	if got, err := ParseExtended(""); err != nil || got != nil {
		t.Errorf("empty: %v %v", got, err)
	}
	_, err = ParseExtended("cpu=4,fpga=-1,fpga,x=1,x=2")
	for _, want := range []string{`"cpu=4": cpu is measured`, `"fpga=-1": amount`, `"fpga" is not name=amount`, `"x=2": x given twice`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %s", err, want)
		}
	}
}
