// Package tarscan walks a tar stream under the one set of rules every ferry
// reader applies: list, verify, reorder and bundle.Open all see an archive
// through it, so they accept and refuse the same archives for the same
// reasons.
//
// The rules:
//   - Entry names are canonical and safe to extract on Linux and Windows
//     alike: no absolute paths, no drive letters, no ".." element, with "/"
//     and "\" both taken as separators; no NUL; at most Limits.NameLen bytes.
//   - Entries are regular files, directories, symlinks and hard links; no
//     devices, FIFOs, sparse files or PAX global headers (which rename later
//     entries differently in different tools).
//   - Links stay inside the archive; a hard link names an earlier file.
//   - No two entries share a name.
//   - A stream that stops without the end-of-archive marker is truncated.
//   - Entry count, header size and the bytes callers buffer with ReadAll are
//     bounded, so hostile input costs bounded memory.
//
// Scanner reports each entry's byte range, so a caller holding an
// io.ReaderAt can read any entry later without another pass.
package tarscan
