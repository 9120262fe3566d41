// Package kerneltest gates tests that need the real kernel or real host
// components. Each Require* helper skips the test with the reason when the
// feature is missing, and fails it instead when the environment variable
// SLUICE_REQUIRE names the feature (CI sets it to declare what the machine
// must have, so a missing feature cannot hide behind a skip).
//
// SLUICE_REQUIRE is a comma-separated list, e.g. "root,cgroupv1,bpf,containerd".
// "all" declares every feature.
package kerneltest
