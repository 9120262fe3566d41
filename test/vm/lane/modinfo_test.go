package lane

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseModinfo(t *testing.T) {
	data := []byte("license=GPL\x00\x00\x00depends=configfs,foo-bar\x00retpoline=Y\x00intree=Y\x00name=null_blk\x00vermagic=6.1.0-56-amd64 SMP\x00")
	m, err := ParseModinfo(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Module{Name: "null_blk", Depends: []string{"configfs", "foo_bar"}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v, want %+v", m, want)
	}
	for _, tc := range []struct{ data, wantErr string }{
		{"license=GPL\x00", "no name"},
		{"name=a\x00name=b\x00", "name given twice"},
		{"name=a\x00depends=\x00depends=b\x00", "depends given twice"},
		{"name=a\x00garbage\x00", "not key=value"},
		{"name=a\x00depends=b,a\x00", "depends on itself"},
		{"name=../x\x00", "bad name"},
	} {
		if _, err := ParseModinfo([]byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseModinfo(%q): got %v, want error containing %q", tc.data, err, tc.wantErr)
		}
	}
}

func TestLoadOrder(t *testing.T) {
	known := map[string]Module{
		"null_blk":  {Name: "null_blk", Depends: []string{"configfs"}},
		"configfs":  {Name: "configfs"},
		"act_bpf":   {Name: "act_bpf"},
		"sch_netem": {Name: "sch_netem", Depends: []string{"builtin_a"}},
		"a":         {Name: "a", Depends: []string{"b"}},
		"b":         {Name: "b", Depends: []string{"a"}},
		"needy":     {Name: "needy", Depends: []string{"ghost"}},
	}
	builtin := map[string]bool{"builtin_a": true, "sch_htb": true}
	got, err := LoadOrder([]string{"null-blk", "sch_htb", "act_bpf", "configfs", "sch_netem"}, known, builtin)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"configfs", "null_blk", "act_bpf", "sch_netem"}; !slices.Equal(got, want) {
		t.Fatalf("LoadOrder = %v, want %v (dependencies first, each once, built-ins skipped)", got, want)
	}
	for _, tc := range []struct {
		wanted  string
		wantErr string
	}{
		{"a", "dependency cycle"},
		{"needy", "module ghost (needed by needy): not in the kernel package"},
		{"nothere", "module nothere: not in the kernel package"},
	} {
		if _, err := LoadOrder([]string{tc.wanted}, known, builtin); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("LoadOrder(%s): got %v, want error containing %q", tc.wanted, err, tc.wantErr)
		}
	}
}

func TestParseModulesBuiltin(t *testing.T) {
	got := ParseModulesBuiltin([]byte("kernel/fs/ext4/ext4.ko\n\nkernel/drivers/foo-bar.ko\n"))
	if !got["ext4"] || !got["foo_bar"] || len(got) != 2 {
		t.Fatalf("got %v", got)
	}
}

func FuzzParseModinfo(f *testing.F) {
	f.Add([]byte("name=null_blk\x00depends=configfs\x00"))
	f.Add([]byte("depends=,,\x00name=x\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseModinfo(data)
		if err != nil {
			return
		}
		if m.Name == "" || strings.Contains(m.Name, "-") {
			t.Fatalf("bad name %q", m.Name)
		}
		for _, d := range m.Depends {
			if d == "" || d == m.Name || strings.ContainsAny(d, "-,/ ") {
				t.Fatalf("bad dependency %q of %q", d, m.Name)
			}
		}
	})
}
