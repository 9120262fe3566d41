package classify

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	sebpf "github.com/sluicehq/sluice/ebpf"
	"github.com/sluicehq/sluice/netqos"
)

// ErrNotSupported marks a program type or attach point the kernel lacks.
var ErrNotSupported = ebpf.ErrNotSupported

// DefaultMarkMask is the skb mark bits Sluice uses to carry a container's
// tier from its host-side veth to the uplink. It avoids the bits
// kube-proxy (0x4000, 0x8000) and Cilium (0x0f00, 0xf000...) use; set
// Config.MarkMask where another agent claims these.
const DefaultMarkMask uint32 = 0x0e000000

// dscpKeep tells the uplink program to leave a tier's DSCP alone.
const dscpKeep = 0xff

// Config sets up a Classifier.
type Config struct {
	// MarkMask is the skb mark bits used for the tier (at least two
	// contiguous bits); 0 means DefaultMarkMask.
	MarkMask uint32
	// PinDir is a directory on a bpf file system (e.g.
	// /sys/fs/bpf/sluice/netqos) where the maps and attachments are
	// pinned, so that classification goes on while the agent restarts and
	// the next agent adopts them: its programs replace the old ones in the
	// same attachments, and the tier map and ingress budget carry over.
	// Empty: nothing is pinned and Close detaches everything.
	PinDir string
}

// Classifier holds the loaded programs, their maps and their attachments.
// Methods are safe for concurrent use.
type Classifier struct {
	objs     netclassObjects
	pinDir   string
	mu       sync.Mutex
	links    map[string]attachment // by attach point
	settings netclassSettings
}

// Load loads the programs and maps (nothing is attached yet).
func Load(cfg Config) (*Classifier, error) {
	mask := cfg.MarkMask
	if mask == 0 {
		mask = DefaultMarkMask
	}
	shift := bits.TrailingZeros32(mask)
	if mask>>shift&(mask>>shift+1) != 0 || bits.OnesCount32(mask) < 2 {
		return nil, fmt.Errorf("netqos/classify: mark mask %#x: want at least two contiguous bits", mask)
	}
	c := &Classifier{links: map[string]attachment{}, pinDir: cfg.PinDir}
	spec, err := loadNetclass()
	if err != nil {
		return nil, fmt.Errorf("netqos/classify: %w", err)
	}
	var opts *ebpf.CollectionOptions
	if cfg.PinDir != "" {
		if err := os.MkdirAll(cfg.PinDir, 0o700); err != nil {
			return nil, fmt.Errorf("netqos/classify: pin directory: %w", err)
		}
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinByName
		}
		opts = &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: cfg.PinDir}}
	}
	if err := spec.LoadAndAssign(&c.objs, opts); err != nil {
		return nil, fmt.Errorf("netqos/classify: load programs: %w", err)
	}
	c.settings.MarkMask = mask
	for _, t := range netqos.Tiers {
		c.settings.Classid[t] = netqos.ClassID(t)
		c.settings.Mark[t] = (uint32(t) + 1) << shift
		c.settings.Dscp[t] = dscpKeep
	}
	// An adopted settings map keeps its DSCP until the next plan says.
	var old netclassSettings
	if err := c.objs.TierSettings.Lookup(uint32(0), &old); err == nil && old.MarkMask == mask {
		c.settings.Dscp = old.Dscp
	}
	if err := c.writeSettings(); err != nil {
		c.objs.Close()
		return nil, err
	}
	return c, nil
}

func (c *Classifier) writeSettings() error {
	if err := c.objs.TierSettings.Update(uint32(0), &c.settings, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("netqos/classify: write settings: %w", err)
	}
	return nil
}

// Close releases the classifier. Without a PinDir that detaches every
// program; with one, pinned attachments and maps stay in the kernel (and
// classification goes on) for the next agent to adopt.
func (c *Classifier) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, l := range c.links {
		errs = append(errs, l.Close())
	}
	clear(c.links)
	errs = append(errs, c.objs.Close())
	return errors.Join(errs...)
}

// Remove detaches everything and removes the pins: network classification
// off until the next Load.
func (c *Classifier) Remove() error {
	c.mu.Lock()
	var errs []error
	for _, l := range c.links {
		if c.pinDir != "" {
			errs = append(errs, l.Unpin())
		}
	}
	if c.pinDir != "" {
		for _, m := range []*ebpf.Map{c.objs.CgroupTiers, c.objs.IngressPolice, c.objs.RxCounters, c.objs.TierSettings} {
			errs = append(errs, m.Unpin())
		}
	}
	c.mu.Unlock()
	errs = append(errs, c.Close())
	return errors.Join(errs...)
}

func (c *Classifier) pinPath(point string) string {
	return filepath.Join(c.pinDir, "link-"+strings.NewReplacer("/", "_", " ", "-").Replace(point))
}

// attachment is a program's attachment: a bpf link (cgroup, TCX) or a
// clsact filter on kernels without TCX.
type attachment interface {
	Update(*ebpf.Program) error
	Pin(string) error
	Unpin() error
	Close() error
}

// attach attaches once per point: a second call for the same point is a
// no-op, so callers can be level-triggered.
func (c *Classifier) attach(point string, prog *ebpf.Program, f func() (attachment, error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.links[point]; ok {
		return nil
	}
	if c.pinDir != "" {
		// Adopt an attachment a previous agent pinned: swap in this
		// agent's program, with no moment without one.
		if l, err := link.LoadPinnedLink(c.pinPath(point), nil); err == nil {
			if err := l.Update(prog); err == nil {
				c.links[point] = l
				return nil
			}
			_ = l.Unpin()
			_ = l.Close()
		}
	}
	l, err := f()
	if err != nil {
		return fmt.Errorf("netqos/classify: attach %s: %w", point, err)
	}
	if c.pinDir != "" {
		if err := l.Pin(c.pinPath(point)); err != nil {
			_ = l.Close()
			return fmt.Errorf("netqos/classify: pin %s: %w", point, err)
		}
	}
	c.links[point] = l
	return nil
}

// detach closes the attachment at point, if any.
func (c *Classifier) detach(point string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.links[point]
	if !ok {
		return nil
	}
	delete(c.links, point)
	if c.pinDir != "" {
		_ = l.Unpin()
	}
	if err := l.Close(); err != nil {
		return fmt.Errorf("netqos/classify: detach %s: %w", point, err)
	}
	return nil
}

// AttachSockets attaches the socket program to the v2 cgroup directory
// dir: every socket created below it gets its tier's priority. dir is
// normally the v2 root (/sys/fs/cgroup/unified on hybrid hosts,
// /sys/fs/cgroup on v2 hosts).
func (c *Classifier) AttachSockets(dir string) error {
	return c.attach("cgroup/sock_create "+dir, c.objs.SockCreate, func() (attachment, error) {
		return link.AttachCgroup(link.CgroupOptions{Path: dir, Attach: ebpf.AttachCGroupInetSockCreate, Program: c.objs.SockCreate})
	})
}

// AttachIngress attaches the ingress counter and bronze policer to the v2
// cgroup directory dir.
func (c *Classifier) AttachIngress(dir string) error {
	return c.attach("cgroup_skb/ingress "+dir, c.objs.PoliceIngress, func() (attachment, error) {
		return link.AttachCgroup(link.CgroupOptions{Path: dir, Attach: ebpf.AttachCGroupInetIngress, Program: c.objs.PoliceIngress})
	})
}

// AttachVeth attaches the mark stamping program to the tc ingress of a
// container's host-side veth (TCX, or a clsact filter before 6.6), ifindex
// in the caller's network namespace.
func (c *Classifier) AttachVeth(ifindex int) error {
	return c.attach(fmt.Sprintf("tc ingress %d", ifindex), c.objs.StampVeth, func() (attachment, error) {
		return attachTC(ifindex, c.objs.StampVeth, hookIngress)
	})
}

// DetachVeth forgets the attachment of a veth that is gone (the kernel
// detached it with the device; this frees the link).
func (c *Classifier) DetachVeth(ifindex int) error {
	return c.detach(fmt.Sprintf("tc ingress %d", ifindex))
}

// AttachUplink attaches the mark-to-class and DSCP program to the tc
// egress of a shaped device (TCX, or a clsact filter before 6.6), ifindex
// in the caller's namespace.
func (c *Classifier) AttachUplink(ifindex int) error {
	return c.attach(fmt.Sprintf("tc egress %d", ifindex), c.objs.StampUplink, func() (attachment, error) {
		return attachTC(ifindex, c.objs.StampUplink, hookEgress)
	})
}

// SetTier puts the v2 cgroup directory dir (and every cgroup below it that
// has no tier of its own) into tier t. Sockets created afterwards follow.
func (c *Classifier) SetTier(dir string, t netqos.Tier) error {
	if t >= netqos.NumTiers {
		return fmt.Errorf("netqos/classify: cgroup %s: unknown %s", dir, t)
	}
	id, err := sebpf.CgroupID(dir)
	if err != nil {
		return fmt.Errorf("netqos/classify: %w", err)
	}
	if err := c.objs.CgroupTiers.Update(id, uint32(t), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("netqos/classify: cgroup %s: set tier %s: %w", dir, t, err)
	}
	return nil
}

// ForgetID removes a cgroup (by its v2 id) from the tier map, for a
// cgroup that is gone.
func (c *Classifier) ForgetID(id uint64) error {
	if err := c.objs.CgroupTiers.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("netqos/classify: forget cgroup %d: %w", id, err)
	}
	return nil
}

// SetDSCP sets the DSCP the uplink program stamps per tier; tiers absent
// from m keep what the sender set.
func (c *Classifier) SetDSCP(m map[netqos.Tier]uint8) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range netqos.Tiers {
		c.settings.Dscp[t] = dscpKeep
		if v, ok := m[t]; ok {
			if v > netqos.MaxDSCP {
				return fmt.Errorf("netqos/classify: dscp %d for %s is above %d", v, t, netqos.MaxDSCP)
			}
			c.settings.Dscp[t] = v
		}
	}
	return c.writeSettings()
}

// SetIngressBudget sets bronze's ingress budget (0 stops policing). The
// bucket holds 100 ms of the budget, at least 64 KiB, so TCP windows are
// not cut short.
func (c *Classifier) SetIngressBudget(bitsPerSec uint64) error {
	var p netclassPolice
	if err := c.objs.IngressPolice.LookupWithFlags(uint32(0), &p, ebpf.LookupLock); err != nil {
		return fmt.Errorf("netqos/classify: read ingress budget: %w", err)
	}
	rate := bitsPerSec / 8
	if p.RateBytesPerSec == rate {
		return nil
	}
	p.RateBytesPerSec = rate
	p.BurstBytes = max(rate/10, 64<<10)
	p.Tokens = min(p.Tokens, p.BurstBytes)
	if err := c.objs.IngressPolice.Update(uint32(0), &p, ebpf.UpdateLock); err != nil {
		return fmt.Errorf("netqos/classify: write ingress budget: %w", err)
	}
	return nil
}

// IngressBudget returns bronze's ingress budget the kernel holds (0: none).
func (c *Classifier) IngressBudget() (uint64, error) {
	var p netclassPolice
	if err := c.objs.IngressPolice.LookupWithFlags(uint32(0), &p, ebpf.LookupLock); err != nil {
		return 0, fmt.Errorf("netqos/classify: read ingress budget: %w", err)
	}
	return p.RateBytesPerSec * 8, nil
}

// RxCounter is what one tier's sockets received (bytes, packets) and
// what the policer dropped.
type RxCounter struct {
	Bytes, Packets, Drops uint64
}

// Rx sums the per-CPU receive counters per tier.
func (c *Classifier) Rx() ([netqos.NumTiers]RxCounter, error) {
	var out [netqos.NumTiers]RxCounter
	for _, t := range netqos.Tiers {
		var per []netclassTierCounter
		if err := c.objs.RxCounters.Lookup(uint32(t), &per); err != nil {
			return out, fmt.Errorf("netqos/classify: read rx counters: %w", err)
		}
		for _, v := range per {
			out[t].Bytes += v.Bytes
			out[t].Packets += v.Packets
			out[t].Drops += v.Drops
		}
	}
	return out, nil
}
