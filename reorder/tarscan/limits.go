package tarscan

// Limits bound what a hostile archive can make a reader do. The defaults fit
// real image archives with a wide margin: rke2's largest bundles have a few
// hundred entries and a few MB of JSON.
type Limits struct {
	// Entries is the most entries an archive may have.
	Entries int
	// NameLen is the longest entry or link name, in bytes.
	NameLen int
	// HeaderBytes is the most header bytes (PAX and GNU long-name blocks
	// included) one entry may have.
	HeaderBytes int64
	// Buffered is the most metadata bytes (see Charge) over the whole
	// archive: what a reader holds in memory.
	Buffered int64
	// MetadataEntry is the largest single metadata entry.
	MetadataEntry int64
}

// DefaultMetadataEntry is the default Limits.MetadataEntry: configs and
// manifests are kilobytes, so anything bigger is a layer or data file.
const DefaultMetadataEntry = 4 << 20

// DefaultLimits are the limits every ferry reader applies.
var DefaultLimits = Limits{
	Entries:       1 << 17,
	NameLen:       1024,
	HeaderBytes:   1 << 20,
	Buffered:      32 << 20,
	MetadataEntry: DefaultMetadataEntry,
}

// orDefault fills zero fields from DefaultLimits.
func (l Limits) orDefault() Limits {
	d := DefaultLimits
	if l.Entries > 0 {
		d.Entries = l.Entries
	}
	if l.NameLen > 0 {
		d.NameLen = l.NameLen
	}
	if l.HeaderBytes > 0 {
		d.HeaderBytes = l.HeaderBytes
	}
	if l.Buffered > 0 {
		d.Buffered = l.Buffered
	}
	if l.MetadataEntry > 0 {
		d.MetadataEntry = l.MetadataEntry
	}
	return d
}
