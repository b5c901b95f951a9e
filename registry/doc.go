// Package registry is everything in ferry that talks to a registry: one
// Client setup (credentials, TLS, retries) shared by every command,
// selecting images from manifest lists for a platform or Windows version,
// resolving and fetching images into a content-addressed cache, and
// creating and verifying manifest lists.
//
// The platform rules themselves (targets, Windows builds, matching) live in
// registry/platform, shared with bundle/verify; the sample image set and an
// in-memory registry for tests and the demo live in registry/registrytest.
package registry
