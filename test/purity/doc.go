// Package purity checks that a pure core stays pure: the decision core
// (qos) and the placement core (brain/place) take time, randomness seeds
// and hardware facts as parameters and do no I/O. A test in each core
// parses the package's own sources with CheckDir; the rules live here once.
package purity
