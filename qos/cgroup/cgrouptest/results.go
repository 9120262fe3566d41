package cgrouptest

import (
	"strings"

	"github.com/sluicehq/sluice/qos"
)

// Results formats an enforcer's results for exact-text checks: one
// "<label>=<status>" word per result, with "(<error>)" after a failure's,
// in order. label names each result (its intent, or its target where one
// intent has many).
func Results(rs []qos.IntentResult, label func(qos.IntentResult) string) string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		s := label(r) + "=" + string(r.Status)
		if r.Err != "" {
			s += "(" + r.Err + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}
