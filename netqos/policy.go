package netqos

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultRoute is the device keyword that selects the devices carrying
// the host's default routes (IPv4 and IPv6).
const DefaultRoute = "default-route"

// Policy is the network section of the agent's policy. The zero value
// shapes nothing: shaping starts when Devices names at least one device.
type Policy struct {
	// Devices lists the egress devices to shape, by name or DefaultRoute.
	Devices []string
	// LinkRateBitsPerSec is the rate to share out on every device; 0 uses
	// each device's reported speed, and a device without one is not shaped.
	LinkRateBitsPerSec uint64
	// GoldRateBitsPerSec and SilverRateBitsPerSec are the guaranteed rates
	// of system and online traffic; both may borrow up to the link rate.
	GoldRateBitsPerSec   uint64
	SilverRateBitsPerSec uint64
	// HeadroomBitsPerSec is kept free of bronze when gold and silver are
	// busy, so that their growth finds room before the next tick.
	HeadroomBitsPerSec uint64
	// RampBitsPerSecPerSec is how fast bronze's ceiling may grow back each
	// second once gold and silver use less; 0 grows it back at once. A cut
	// is always immediate.
	RampBitsPerSecPerSec uint64
	// Ingress polices incoming bronze traffic by cgroup, with a budget that
	// follows the same rule as the egress ceiling.
	Ingress bool
	// DSCP marks each tier's outgoing IP packets with a DSCP code point
	// (0..63), so the fabric can honour the classes; a tier absent from
	// the map keeps what the sender set.
	DSCP map[Tier]uint8
	// ReplaceForeignRoot lets Sluice replace a root qdisc it does not own;
	// without it such a device is reported and left alone.
	ReplaceForeignRoot bool
}

// Enabled reports whether the policy shapes anything.
func (p Policy) Enabled() bool { return len(p.Devices) > 0 }

// Guaranteed is gold + silver + headroom, and whether the sum overflowed.
func (p Policy) Guaranteed() (uint64, bool) {
	var sum uint64
	for _, v := range []uint64{p.GoldRateBitsPerSec, p.SilverRateBitsPerSec, p.HeadroomBitsPerSec} {
		if sum+v < sum {
			return 0, true
		}
		sum += v
	}
	return sum, false
}

// Fits checks that the gold and silver guarantees plus headroom leave the
// bronze class some of a link of linkBitsPerSec.
func (p Policy) Fits(linkBitsPerSec uint64) error {
	sum, over := p.Guaranteed()
	if over || sum >= linkBitsPerSec {
		return fmt.Errorf("goldRate %s + silverRate %s + headroom %s = %s leaves nothing of link rate %s",
			FormatRate(p.GoldRateBitsPerSec), FormatRate(p.SilverRateBitsPerSec), FormatRate(p.HeadroomBitsPerSec),
			FormatRate(sum), FormatRate(linkBitsPerSec))
	}
	return nil
}

// MaxDSCP is the largest DSCP code point (six bits).
const MaxDSCP = 63

// Validate reports every problem of an enabled policy at once, each
// naming its field. A disabled policy is valid whatever else it says.
func (p Policy) Validate() error {
	if !p.Enabled() {
		return nil
	}
	var errs []error
	seen := map[string]bool{}
	for i, d := range p.Devices {
		if err := CheckDeviceName(d); err != nil {
			errs = append(errs, fmt.Errorf("devices[%d]: %w", i, err))
		} else if seen[d] {
			errs = append(errs, fmt.Errorf("devices[%d]: %q listed twice", i, d))
		}
		seen[d] = true
	}
	for _, r := range []struct {
		name string
		v    uint64
	}{{"goldRate", p.GoldRateBitsPerSec}, {"silverRate", p.SilverRateBitsPerSec}} {
		if r.v == 0 {
			errs = append(errs, fmt.Errorf("%s: must be above zero when devices are set", r.name))
		}
	}
	if _, over := p.Guaranteed(); over {
		errs = append(errs, errors.New("goldRate + silverRate + headroom overflows"))
	} else if p.LinkRateBitsPerSec > 0 {
		if err := p.Fits(p.LinkRateBitsPerSec); err != nil {
			errs = append(errs, err)
		}
	}
	for _, t := range Tiers {
		if v, ok := p.DSCP[t]; ok && v > MaxDSCP {
			errs = append(errs, fmt.Errorf("dscp.%s: %d is above %d", t, v, MaxDSCP))
		}
	}
	for t := range p.DSCP {
		if t >= NumTiers {
			errs = append(errs, fmt.Errorf("dscp: unknown %s", t))
		}
	}
	return errors.Join(errs...)
}

// CheckDeviceName accepts a network device name or the DefaultRoute keyword.
func CheckDeviceName(s string) error {
	switch {
	case s == "" || s == "." || s == "..":
		return fmt.Errorf("%q is not a valid device name", s)
	case s == DefaultRoute:
		return nil
	case len(s) > 15:
		return fmt.Errorf("device name %q is longer than 15 bytes (IFNAMSIZ)", s)
	case strings.ContainsAny(s, "/: \t\n\r\v\f"):
		return fmt.Errorf("device name %q contains '/', ':' or white space", s)
	}
	return nil
}

// FormatRate writes a bit rate the way the policy file does: the largest
// unit that divides it exactly.
func FormatRate(bits uint64) string {
	for _, u := range []struct {
		mult uint64
		name string
	}{{1e12, "Tbit"}, {1e9, "Gbit"}, {1e6, "Mbit"}, {1e3, "kbit"}} {
		if bits >= u.mult && bits%u.mult == 0 {
			return strconv.FormatUint(bits/u.mult, 10) + u.name
		}
	}
	return strconv.FormatUint(bits, 10) + "bit"
}
