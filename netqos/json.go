package netqos

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// The decision core's state and plan are plain data shown on the agent's
// /state; these give the netqos parts the same JSON shape.

// dirStateJSON is dirState's JSON shape.
type dirStateJSON struct {
	At             time.Time        `json:"at,omitzero"`
	Bytes          [NumTiers]uint64 `json:"bytes"`
	CeilBitsPerSec uint64           `json:"ceilBitsPerSec"`
}

type stateJSON struct {
	Devices map[string]dirStateJSON `json:"devices,omitempty"`
	Ingress *dirStateJSON           `json:"ingress,omitempty"`
}

func (d dirState) toJSON() dirStateJSON {
	return dirStateJSON{At: d.at, Bytes: d.bytes, CeilBitsPerSec: d.ceil}
}

func (d dirStateJSON) state() dirState {
	return dirState{at: d.At, bytes: d.Bytes, ceil: d.CeilBitsPerSec}
}

// IsZero reports the state before the first decision (or with shaping off).
func (s State) IsZero() bool { return len(s.devices) == 0 && s.ingress.at.IsZero() }

// MarshalJSON shows, per device and for ingress, the counters and bronze
// ceiling the next decision starts from.
func (s State) MarshalJSON() ([]byte, error) {
	var j stateJSON
	if len(s.devices) > 0 {
		j.Devices = make(map[string]dirStateJSON, len(s.devices))
		for d, st := range s.devices {
			j.Devices[d] = st.toJSON()
		}
	}
	if !s.ingress.at.IsZero() {
		in := s.ingress.toJSON()
		j.Ingress = &in
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *State) UnmarshalJSON(b []byte) error {
	var j stateJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("netqos state: %w", err)
	}
	*s = State{}
	if len(j.Devices) > 0 {
		s.devices = make(map[string]dirState, len(j.Devices))
		for d, st := range j.Devices {
			s.devices[d] = st.state()
		}
	}
	if j.Ingress != nil {
		s.ingress = j.Ingress.state()
	}
	return nil
}

var reasonKinds = [...]string{"start", "adopt", "hold", "cut", "ramp", "no-link-rate", "bad-policy"}

// MarshalText spells the kind by name.
func (k ReasonKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind name.
func (k *ReasonKind) UnmarshalText(b []byte) error {
	i := slices.Index(reasonKinds[:], string(b))
	if i < 0 {
		return fmt.Errorf("unknown reason kind %q", b)
	}
	*k = ReasonKind(i)
	return nil
}
