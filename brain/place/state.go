package place

import "errors"

// errNotYet marks the parts of the API whose implementation has not landed.
var errNotYet = errors.New("placement core: not implemented yet")

type state struct{}

func newCluster(Snapshot, Profile) (*Cluster, error)     { return nil, errNotYet }
func (c *Cluster) decide(Request, bool) (Decision, error) { return Decision{}, errNotYet }
func (c *Cluster) remove(string) (Placement, error)       { return Placement{}, errNotYet }
func (c *Cluster) add(Placement) error                    { return errNotYet }
func (c *Cluster) snapshot() Snapshot                     { return Snapshot{} }
func (c *Cluster) usage() Usage                           { return Usage{} }
