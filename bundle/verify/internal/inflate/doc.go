// Package inflate is verify's parallel layer engine: it hashes each blob as
// the tar reader passes its bytes on, and inflates and hashes compressed
// layers (gzip, zstd) on workers, for their diff_ids.
//
// A tar stream cannot be read out of order, so a layer whose inflater falls
// behind spills to a temp file while a worker slot is idle, within a byte
// budget, rather than hold every later layer up. An archive that can be read
// by offset (a plain tar file, a zstd file with a seek table) is read so
// instead (OpenAt), each layer by its own worker, which hashes, inflates and
// hashes again in one goroutine. Memory is bounded by jobs × a few chunks
// and decoders; no layer is ever held whole in memory.
package inflate
