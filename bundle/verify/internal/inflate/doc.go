// Package inflate is verify's parallel layer engine: it hashes each blob as
// the tar reader passes its bytes on, and inflates and hashes compressed
// layers (gzip, zstd) on workers, for their diff_ids.
//
// A tar stream cannot be read out of order, so a layer whose inflater falls
// behind spills to a temp file while a worker slot is idle, within a byte
// budget, rather than hold every later layer up. A plain tar file is read
// by offset instead (OpenAt), each layer by its own worker. Memory is
// bounded by jobs × a few chunks; no layer is ever held whole in memory.
package inflate
