package qos

import "fmt"

// Class is the QoS class of a workload.
type Class string

const (
	// ClassSystem is host daemons and the control plane. Never squeezed or killed.
	ClassSystem Class = "system"
	// ClassOnline is latency-sensitive services. Never squeezed or killed.
	ClassOnline Class = "online"
	// ClassOffline is batch and best-effort work: it borrows what online
	// work leaves idle and gives it back first.
	ClassOffline Class = "offline"
)

// Classes lists every class in a fixed order (system, online, offline).
var Classes = [...]Class{ClassSystem, ClassOnline, ClassOffline}

// ParseClass accepts the label and policy spelling of a class.
func ParseClass(s string) (Class, error) {
	switch c := Class(s); c {
	case ClassSystem, ClassOnline, ClassOffline:
		return c, nil
	}
	return "", fmt.Errorf("unknown class %q (want system, online or offline)", s)
}
