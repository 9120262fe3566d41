package qos

import (
	"reflect"
	"strings"
	"testing"
	"unicode"
)

// TestJSONNamesAreCamelCase keeps the agent's /state document in one
// naming style: every exported field reachable from the observation, the
// plan, the decision state and the intent summaries carries a json tag
// whose name starts lower-case (Go's default would be the field name).
func TestJSONNamesAreCamelCase(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, at string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ.PkgPath() != reflect.TypeFor[Plan]().PkgPath() || seen[typ] {
			return
		}
		seen[typ] = true
		for f := range typ.Fields() {
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "":
				t.Errorf("%s.%s (in %s) has no json name", typ.Name(), f.Name, at)
			case name != "-" && !unicode.IsLower(rune(name[0])):
				t.Errorf("%s.%s (in %s) is %q in JSON, want a lower-case start", typ.Name(), f.Name, at, name)
			}
			walk(f.Type, at+"."+f.Name)
		}
	}
	for _, root := range []reflect.Type{reflect.TypeFor[Observation](), reflect.TypeFor[Plan](), reflect.TypeFor[State](), reflect.TypeFor[IntentSummary]()} {
		walk(root, root.Name())
	}
	if len(seen) < 10 {
		t.Fatalf("walked only %d types: the walk is broken", len(seen))
	}
}
