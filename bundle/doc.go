// Package bundle is ferry's archive format: one tar holding an OCI image
// layout (oci-layout, index.json, blobs/sha256/…) plus docker's
// manifest.json and repositories, which is what `docker save` writes since
// Docker 25, so docker-archive and OCI readers both load it.
//
// The metadata comes first and, when compressed, in its own zstd frame (or
// gzip member), so a loader learns what a bundle holds by decompressing a
// few KB. Blobs are stored byte for byte as the registry served them, once
// each. Output is deterministic: the same images give the same bytes.
package bundle
