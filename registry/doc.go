// Package registry is everything in ferry that talks to a registry: one
// Client setup (credentials, TLS, retries) shared by every command,
// platform and Windows-version selection over manifest lists, resolving and
// fetching images into a content-addressed cache, creating and verifying
// manifest lists, and serving registries for the demo and tests.
//
// Windows images are matched by build number (10.0.17763), taking the
// highest revision, because exact os.version matching breaks with every
// monthly patch.
package registry
