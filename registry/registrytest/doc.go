// Package registrytest is ferry's sample image set and in-memory registry
// server: the deterministic Windows and Linux images (with foreign layers
// and manifest lists) that tests, `ferry demo` and the benchmarks share,
// and a loopback registry to push them to.
//
// It is for tests and the demo; nothing else in ferry imports it, and it
// does not import registry, so registry's own tests can use it.
package registrytest
