// Package reorder rewrites a tar stream so that chosen entries come first,
// without changing a single byte of any entry.
//
// Container image tarballs (docker save, crane, skopeo, OCI archives) often
// store their index and manifests last, so a loader must read or decompress
// the whole file to learn what is in it. Reorder moves those entries to the
// front and, when the destination is a compressor that can end a frame early
// (see FrameEnder), puts them in a frame of their own: a reader then decodes
// a few kilobytes instead of gigabytes.
//
// Which entries are "metadata" and in which order they go is not this
// package's business: callers pass a RankFunc (ferry wires in
// bundle.HeaderRank). Entries ranked Bulk or higher keep their original
// order after the metadata.
//
// Entries are copied verbatim, header blocks (including PAX and GNU long-name
// records) and padding alike, so names, modes, owners, times, PAX records and
// the tar format all survive, and reordering an already reordered stream
// yields identical bytes. Only the end-of-archive marker is normalised to the
// two zero blocks that every tar writer emits.
//
// The input is read through package tarscan, under the rules and limits
// every ferry reader applies (safe names, no devices or global PAX headers,
// no duplicates, an end-of-archive marker, bounded entries, headers and
// metadata), and all of it is checked before the first byte is written.
//
// Memory stays bounded whatever the input size: layers are never held in
// memory. A seekable input is indexed in one pass over its headers and then
// copied by offset; a stream is either read twice (WithReopen) or spilled to
// a temporary file (WithSpillDir).
//
// File does the whole job for a file: it detects the input's compression,
// picks the cheapest of those strategies, keeps the compression when
// reordering in place and replaces the output atomically. Compression is
// behind the Codec interface, which bundle.ReorderCodec implements, so
// that this package stays independent of the bundle format.
package reorder
