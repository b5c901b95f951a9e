// Package faultproxy is ferry's own hostile network, for tests and the
// fault suite (scripts/e2e-faults.sh): a Proxy that injects faults (429,
// 500, 503, resets, truncated and stalled bodies, latency) into the
// requests it forwards to a real registry, at a rate and from a seed, so
// a run replays; and a Hostile registry that stalls, declares huge
// configs, streams endless manifests and points layers at loopback.
//
// Both are meant for loopback only.
package faultproxy
