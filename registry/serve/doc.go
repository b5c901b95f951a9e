// Package serve answers the read-only OCI distribution API from a
// catalog of opened bundles, so a node pulls straight from bundle files
// without anyone running (or filling) a registry.
//
// New returns an http.Handler for /v2/: manifests by tag and digest, blobs
// by digest with Range requests, tags/list and _catalog with n/last
// pagination. Every write answers 405 UNSUPPORTED. Programs that embed a
// registry mirror, as k3s does, mount the handler on their own server.
//
// Blobs are read in place: by offset from a plain tar, through the seek
// table's frames from a ferry zstd bundle. Each blob is checked against its
// digest once, on the first request that reads it, and remembered as good:
//
//   - a full GET streams the blob while hashing it and holds back its last
//     bytes until the hash matches, so a client never receives a complete
//     body of a damaged blob (the connection is cut instead);
//   - full GETs that arrive while that first one runs stream the blob
//     without hashing it again and hold back their last bytes until its
//     outcome is known: many pulls starting together hash each blob once;
//   - a Range GET of a blob not yet checked reads it whole first (once, however
//     many clients ask at the same time), then serves the range;
//   - a blob found damaged answers 500 from then on.
//
// HEAD reports a blob's size without reading it. Manifests are held in
// memory and hashed on every response.
package serve
