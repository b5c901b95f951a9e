// Package verify checks an image archive in one pass: its tar structure,
// every blob's digest and size, every layer's diff_id, that index.json,
// manifest.json and repositories agree, and any expectations given (the
// images it must hold, the platform they must be for).
//
// WithMode(ModeDigests) checks all of that but the diff_ids of compressed
// layers, which it does not decompress: one hash of the archive's bytes,
// what `crane validate --fast` checks.
//
// It reads ferry bundles, OCI layouts, docker save archives (old and new)
// and crane tarballs, compressed with zstd, gzip or not at all, and reports
// problems as Checks in a Report rather than as errors. Layers are inflated
// and hashed in parallel by an engine of its own (internal/inflate). A
// plain tar file, or a zstd file with a seek table (a ferry bundle), is read
// by offset (bundle.OpenOffsetTar), each layer by a worker of its own that
// decodes its frames, except the layers of long-window frames, which the
// pass reads as it decodes those frames for their tar headers, so that
// every byte is decompressed once; otherwise layers that fall behind the
// one stream are spilled to temp files, within a budget.
//
// The tar structure is judged by reorder/tarscan, as every ferry reader
// judges it: an archive the scanner refuses fails the check its sentinel
// names ("path", "link", "type", "duplicate", "limit", or "archive" for a
// truncated or malformed stream), and nothing past that entry is read.
//
// Platform rules come from registry/platform, the same rules ferry bundle
// selects images with.
package verify
