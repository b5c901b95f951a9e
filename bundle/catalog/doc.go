// Package catalog names the images of one or more opened archives the way
// a registry serves them: repositories (the archive's names without their
// registry host), tags and digests, manifests byte for byte as stored, and
// blobs by digest.
//
// A release ships one bundle per Windows version, each holding the child
// its version needs of lists such as rke2-runtime:v1.31.2. A catalog over
// several of them answers for the tag with one list holding every child
// present: the upstream list's own bytes when every child it lists is
// present (so the tag's digest equals upstream's), otherwise a list merged
// from the children. `ferry push` and `ferry serve` both work from a
// catalog, so a pushed registry and a served one answer alike.
package catalog
