// Package bundle is ferry's archive format: one tar holding an OCI image
// layout (oci-layout, index.json, blobs/sha256/…) plus docker's
// manifest.json and repositories, which is what `docker save` writes since
// Docker 25, so docker-archive and OCI readers both load it.
//
// The metadata comes first and, when compressed, in its own zstd frame (or
// gzip member), so a loader learns what a bundle holds by decompressing a
// few KB. Blobs are stored byte for byte as the registry served them, once
// each. Output is deterministic: the same images give the same bytes. A zstd
// bundle ends with a seek table (the zstd seekable format). At the default
// level zstd compresses by content: data that does not compress (gzip and
// zstd layers) as 2 MiB frames at level 1, each layer's header with its
// first bytes, and the rest of its data, starting frames of their own; data that does (uncompressed layers) at the
// strongest level, with a MaxZstdWindow window, in frames of up to 128 MiB
// that span entries, so that matches across layers are found, two
// frames at a time (see WithSpillDir). A level given with WithCompression
// or NewCompressor applies to all content.
//
// Write and WriteImages write bundles; Open reads any image archive back
// (ferry bundles, docker save, crane, skopeo, podman, OCI layout archives)
// as go-containerregistry types, by random access: through the seek table,
// by offset in a plain tar, or by one forward pass for gzip; OpenDir (and
// OpenPath given a directory) reads an OCI layout directory in place as if
// it were a plain tar. ReadContents
// lists an archive from a stream. Every reader walks tar through
// reorder/tarscan, so all of them accept and refuse the same archives.
package bundle
